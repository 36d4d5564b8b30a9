package fbdi_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/sinewhq/sinew/pkg/fbdi"
	"github.com/sinewhq/sinew/pkg/money"
)

// TestColumns: the column list is the corpus's, position for position.
func TestColumns(t *testing.T) {
	recs, err := csv.NewReader(bytes.NewReader(corpusFile(t, "gl_interface_columns.csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	cols := fbdi.Columns()
	var n int
	for _, r := range recs[1:] { // header
		pos, err := strconv.Atoi(r[0])
		if err != nil {
			t.Fatalf("position %q: %v", r[0], err)
		}
		if pos > fbdi.NumColumns {
			if r[2] != fbdi.EndMarker {
				t.Errorf("position %d is %q, want the %s marker", pos, r[2], fbdi.EndMarker)
			}
			continue
		}
		n++
		if cols[pos-1] != r[1] {
			t.Errorf("column %d = %q, corpus says %q", pos, cols[pos-1], r[1])
		}
	}
	if n != fbdi.NumColumns {
		t.Errorf("corpus lists %d columns, want %d", n, fbdi.NumColumns)
	}
	cols[0] = "changed"
	if fbdi.Columns()[0] != "STATUS" {
		t.Error("Columns shares its storage")
	}
}

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want fbdi.Amount
		err  bool
	}{
		{"1250", 125000, false},
		{"1250.5", 125050, false},
		{"1250.00", 125000, false},
		{"-3.20", -320, false},
		{"0", 0, false},
		{"-0.00", 0, false},
		{"0.01", 1, false},
		{"007.10", 710, false},
		{"92233720368547758.07", math.MaxInt64, false},
		{"-92233720368547758.07", -math.MaxInt64, false},
		{"92233720368547758.08", 0, true},
		{"99999999999999999999", 0, true},
		{"1250.001", 0, true},
		{"1.000", 0, true},
		{"1e3", 0, true},
		{"1E3", 0, true},
		{"1,250.00", 0, true},
		{"NaN", 0, true},
		{"Inf", 0, true},
		{"+1", 0, true},
		{"", 0, true},
		{"-", 0, true},
		{".5", 0, true},
		{"5.", 0, true},
		{" 5", 0, true},
		{"5 ", 0, true},
		{"--5", 0, true},
		{"0x10", 0, true},
		{"1.2.3", 0, true},
	} {
		got, err := fbdi.ParseAmount(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseAmount(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err != nil && !errors.Is(err, fbdi.ErrAmount) {
			t.Errorf("ParseAmount(%q) error %v does not wrap ErrAmount", tc.in, err)
		}
	}
}

func TestAmountString(t *testing.T) {
	for _, tc := range []struct {
		in   fbdi.Amount
		want string
	}{
		{0, "0.00"}, {1, "0.01"}, {10, "0.10"}, {125000, "1250.00"}, {125050, "1250.50"},
		{-320, "-3.20"}, {-1, "-0.01"},
		{math.MaxInt64, "92233720368547758.07"}, {math.MinInt64, "-92233720368547758.08"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("Amount(%d).String() = %q, want %q", int64(tc.in), got, tc.want)
		}
	}
}

func TestAmountJSON(t *testing.T) {
	type doc struct{ A fbdi.Amount }
	b, err := json.Marshal(doc{A: -12345})
	if err != nil || string(b) != `{"A":"-123.45"}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var d doc
	if err := json.Unmarshal(b, &d); err != nil || d.A != -12345 {
		t.Fatalf("Unmarshal = %v, %v", d.A, err)
	}
	// Amount is money.Amount: its text form refuses a third decimal with money's error.
	if err := json.Unmarshal([]byte(`{"A":"1.234"}`), &d); !errors.Is(err, money.ErrSyntax) {
		t.Fatalf("Unmarshal 3 decimals: %v", err)
	}
}

func TestGroupID(t *testing.T) {
	// Pinned: a change here changes every GROUP_ID Sinew ever sent, and the
	// "does Fusion already have this group?" check would stop matching.
	for key, want := range map[string]int64{
		"resolute:batch-20260115:J0001": 922857510721707,
		"resolute:batch-20260115:J0002": 475414907954541,
		"":                              829232824261652,
	} {
		if got := fbdi.GroupID(key); got != want {
			t.Errorf("GroupID(%q) = %d, want %d", key, got, want)
		}
	}
	seen := make(map[int64]string)
	for i := range 100_000 {
		key := "resolute:batch-20260115:J" + strconv.Itoa(i)
		id := fbdi.GroupID(key)
		if id < 100_000_000_000_000 || id > 999_999_999_999_999 {
			t.Fatalf("GroupID(%q) = %d, outside the 15-digit range", key, id)
		}
		if prev, ok := seen[id]; ok {
			t.Fatalf("GroupID(%q) = GroupID(%q) = %d", key, prev, id)
		}
		seen[id] = key
	}
}
