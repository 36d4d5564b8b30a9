package crosswalk_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/crosswalk"
)

func load(t *testing.T) *crosswalk.Table {
	t.Helper()
	f, err := os.Open("testdata/coa.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := crosswalk.Parse(f, "")
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestLookup(t *testing.T) {
	tab := load(t)
	if len(tab.Version) != 12 || len(tab.SegmentNames) != 5 || len(tab.Rules()) != 7 {
		t.Fatalf("version %q segments %v rules %d", tab.Version, tab.SegmentNames, len(tab.Rules()))
	}
	jan := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	aug := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		sa, cc, acct, fc string
		date             time.Time
		want             string
	}{
		{"10", "6010", "40100", "COM", jan, "101.6010.40100.300.000"},
		{"10", "6010", "40200", "COM", jan, "101.6010.40200.300.000"},
		{"10", "6010", "40200", "MCR", jan, "101.6010.40210.300.000"}, // exact fin class beats the wildcard
		{"20", "6020", "40100", "COM", jan, "102.6020.40100.300.000"},
		{"20", "6020", "40100", "COM", aug, "102.6021.40100.300.000"}, // effective dating
		{"10", "6010", "49999", "COM", jan, ""},
		{"10", "6010", "40100", "COM", time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC), ""},
	}
	var buf []byte
	for _, tc := range tests {
		segs, _, err := tab.Lookup(crosswalk.Key{ServiceArea: []byte(tc.sa), CostCenter: []byte(tc.cc), GLAccount: []byte(tc.acct),
			FinClass: []byte(tc.fc), Payor: []byte("BCBS"), Date: tc.date}, buf)
		got := strings.Join(segs, ".")
		if tc.want == "" {
			if !errors.Is(err, crosswalk.ErrUnmapped) {
				t.Errorf("%v: %q, %v; want unmapped", tc, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v: %q, %v; want %q", tc, got, err, tc.want)
		}
	}
}

func TestParseProblems(t *testing.T) {
	head := "service_area,cost_center,gl_account,fin_class,payor,effective_from,effective_to,segment1,segment2\n"
	tests := map[string]string{
		"overlap":       head + "10,1,2,*,*,2026-01-01,,a,b\n10,1,2,*,*,2026-06-01,,a,c\n",
		"bad date":      head + "10,1,2,*,*,2026/01/01,,a,b\n",
		"empty segment": head + "10,1,2,*,*,,,a,\n",
		"columns":       head + "10,1,2,*,*,,,a\n",
		"wildcard key":  head + "*,1,2,*,*,,,a,b\n",
		"header":        "sa,cc,acct\n",
	}
	for name, in := range tests {
		if _, err := crosswalk.Parse(strings.NewReader(in), ""); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestChart(t *testing.T) {
	c, err := crosswalk.ParseChart(strings.NewReader("# valid combinations\nsegment1,segment2,segment3\n101,6010,40100\n101,1000,11010\n"))
	if err != nil || c.Len() != 2 {
		t.Fatalf("%v %d", err, c.Len())
	}
	if !c.Valid([]string{"101", "6010", "40100"}, nil) || c.Valid([]string{"101", "6010", "40999"}, nil) || c.Valid([]string{"101", "6010"}, nil) {
		t.Error("Valid wrong")
	}
}
