package fbdi_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/fbdi"
)

// TestColumnsGolden: the 149 columns, position for position, against
// testdata/golden/columns.txt (go test -update rewrites it), with the
// positions the checks and the simulator key on spelled out. TestColumns
// compares the same list with the conformance corpus when it is there.
func TestColumnsGolden(t *testing.T) {
	cols := fbdi.Columns()
	if len(cols) != fbdi.NumColumns || fbdi.NumColumns != 149 || fbdi.EndMarker != "END" {
		t.Fatalf("%d columns (NumColumns %d), end marker %q", len(cols), fbdi.NumColumns, fbdi.EndMarker)
	}
	for pos, want := range map[int]string{
		1: "STATUS", 2: "LEDGER_ID", 3: "ACCOUNTING_DATE", 4: "USER_JE_SOURCE_NAME", 5: "USER_JE_CATEGORY_NAME",
		6: "CURRENCY_CODE", 7: "DATE_CREATED", 8: "ACTUAL_FLAG", 9: "SEGMENT1", 38: "SEGMENT30",
		39: "ENTERED_DR", 40: "ENTERED_CR", 43: "REFERENCE1", 46: "REFERENCE4", 52: "REFERENCE10",
		53: "REFERENCE21", 67: "GROUP_ID", 92: "LEDGER_NAME",
	} {
		if cols[pos-1] != want {
			t.Errorf("column %d = %q, want %q", pos, cols[pos-1], want)
		}
	}
	var b strings.Builder
	for i, c := range cols {
		fmt.Fprintf(&b, "%d,%s\n", i+1, c)
	}
	path := filepath.Join("testdata", "golden", "columns.txt")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("columns differ from %s:\n%s", path, b.String())
	}
	cols[0] = "changed"
	if fbdi.Columns()[0] != "STATUS" {
		t.Error("Columns shares its storage")
	}
}
