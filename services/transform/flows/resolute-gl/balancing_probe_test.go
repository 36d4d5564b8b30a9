package resolutegl_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/resolute"
	resolutegl "github.com/sinewhq/sinew/services/transform/flows/resolute-gl"
)

// TestBalancingSegmentFindingNamesItsLines is issue 9 item 2: a journal
// that balances but not per balancing segment was reported at "line 0".
// The finding must stand at the journal's first line on that segment and
// name the span of its lines.
func TestBalancingSegmentFindingNamesItsLines(t *testing.T) {
	src, err := os.ReadFile("testdata/hb_20260115.txt")
	if err != nil {
		t.Fatal(err)
	}
	coa, err := os.ReadFile("../../../../deploy/demo/coa.csv")
	if err != nil {
		t.Fatal(err)
	}
	// Service area 10's AR offset (line 4 of the file, L0003) goes to
	// company 109: journal 2026-01-15|10 balances, but company 101 has
	// only its credits (lines 2 and 3) and 109 only the debit.
	table := strings.Replace(string(coa), "10,1000,11010,*,*,2026-01-01,,101,", "10,1000,11010,*,*,2026-01-01,,109,", 1)
	xw, err := crosswalk.Parse(strings.NewReader(table), "segments-v1")
	if err != nil {
		t.Fatal(err)
	}
	o := options(t)
	o.Crosswalk, o.Chart = xw, nil
	var out bytes.Buffer
	res, err := resolutegl.Build(context.Background(), bytes.NewReader(src), &out, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted {
		t.Fatal("accepted a journal unbalanced per balancing segment")
	}
	want := map[string]bool{
		"lines 2–3: journal 2026-01-15|10 is unbalanced for balancing segment 101: debits 0.00, credits 2000.50 (2 of its lines)": false,
		"line 4: journal 2026-01-15|10 is unbalanced for balancing segment 109: debits 2000.50, credits 0.00 (1 of its lines)":    false,
	}
	var all []string
	for _, f := range res.AllFindings() {
		if f.Line == 0 {
			t.Errorf("finding at line 0: %s", f)
		}
		all = append(all, f.String())
		if _, ok := want[f.String()]; ok {
			want[f.String()] = true
		}
	}
	for w, seen := range want {
		if !seen {
			t.Errorf("no finding %q in:\n%s", w, strings.Join(all, "\n"))
		}
	}
}

// TestBalancingSegmentSpanInAClarityExtract: the span is located in the
// extract's own lines (the CSV header is line 1).
func TestBalancingSegmentSpanInAClarityExtract(t *testing.T) {
	coa, err := os.ReadFile("../../../../deploy/demo/coa.csv")
	if err != nil {
		t.Fatal(err)
	}
	table := strings.Replace(string(coa), "10,1000,11010,*,*,2026-01-01,,101,", "10,1000,11010,*,*,2026-01-01,,109,", 1)
	xw, err := crosswalk.Parse(strings.NewReader(table), "segments-v1")
	if err != nil {
		t.Fatal(err)
	}
	o := options(t)
	o.Crosswalk, o.Chart = xw, nil
	csv := "batch_id,batch_kind,line_id,posting_date,service_area,cost_center,gl_account,fin_class,payor,tx_type,debit,credit,tx_count,description\n" +
		"HB-CSV,HB,L1,2026-01-15,10,6010,40100,COM,BCBS,CHG,,1250.00,3,\"Lab\nsecond line\"\n" +
		"HB-CSV,HB,L2,2026-01-15,10,6010,40200,MCR,MEDICARE,CHG,,750.50,2,Rad\n" +
		"HB-CSV,HB,L3,2026-01-15,10,1000,11010,COM,BCBS,CHG,2000.50,,5,AR\n"
	f, err := os.CreateTemp(t.TempDir(), "x-*.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(csv); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := resolutegl.BuildClarity(context.Background(), resolute.FormatClarityCSV, f, t.TempDir(), &out, o)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, fd := range res.AllFindings() {
		all = append(all, fd.String())
	}
	// L1's quoted description takes CSV lines 2 and 3: L2 is line 4.
	want := "lines 2–4: journal 2026-01-15|10 is unbalanced for balancing segment 101"
	if res.Accepted || !strings.Contains(strings.Join(all, "\n"), want) {
		t.Errorf("accepted=%v, findings lack %q:\n%s", res.Accepted, want, strings.Join(all, "\n"))
	}
}
