package fbdi_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/fbdi"
)

// TestFileBalanceFindingNamesItsLines is issue 9 item 2: the whole-file
// balance finding named no line; it names the lines of its currency.
func TestFileBalanceFindingNamesItsLines(t *testing.T) {
	raw, err := os.ReadFile("../../services/transform/flows/resolute-gl/testdata/GlInterface.golden.csv")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	// One more cent on the last line: its journal, group and the file are unbalanced.
	f := strings.Split(lines[len(lines)-1], ",")
	side := cDR
	if f[cDR] == "" {
		side = cCR
	}
	if f[side] == "100.00" {
		f[side] = "100.01"
	} else {
		f[side] = "100.00"
	}
	lines[len(lines)-1] = strings.Join(f, ",")
	rep, err := fbdi.CheckCSV(context.Background(), strings.NewReader(strings.Join(lines, "\n")+"\n"), fbdi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("(lines 1–%d)", len(lines))
	found := false
	for _, fe := range rep.Findings {
		var ue *fbdi.UnbalancedError
		if errors.As(fe.Err, &ue) && ue.Scope == fbdi.ScopeFile {
			found = true
			if !strings.Contains(fe.Error(), want) {
				t.Errorf("file finding %q does not name %s", fe.Error(), want)
			}
		}
	}
	if !found {
		t.Fatalf("no file balance finding in %v", rep.Findings)
	}
}
