package resolutegl_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/crosswalk"
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
		"line 2: journal 2026-01-15|10 is unbalanced for balancing segment 101: debits 0.00, credits 2000.50 (2 lines, lines 2–3)": false,
		"line 4: journal 2026-01-15|10 is unbalanced for balancing segment 109: debits 2000.50, credits 0.00 (1 lines, lines 4–4)": false,
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
