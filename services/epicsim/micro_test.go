package epicsim_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/resolute"
	"github.com/sinewhq/sinew/services/epicsim"
)

// Micro-batches are small, balanced and valid, as Resolute files and as
// Clarity CSV extracts; their batch ids carry the cadence.
func TestMicroBatchesAreValid(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 15, 13, 5, 9, 0, time.UTC)
	o := epicsim.DefaultConfig().Micro
	for _, clarity := range []bool{false, true} {
		name, err := epicsim.WriteMicroBatch(dir, now, o, clarity)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var rep *resolute.Report
		if clarity {
			if !strings.HasSuffix(name, ".csv") {
				t.Fatalf("clarity micro-batch named %s", name)
			}
			rows, err := resolute.ReadClarityCSV(f, resolute.Clarity{})
			if err != nil {
				t.Fatal(err)
			}
			pipe := filepath.Join(dir, "converted.txt")
			out, _ := os.Create(pipe)
			conv, err := resolute.ConvertClarity(out, rows, resolute.Clarity{}, resolute.DefaultLayout())
			out.Close()
			if err != nil || !conv.OK() {
				t.Fatalf("%v %+v", err, conv)
			}
			in, _ := os.Open(pipe)
			defer in.Close()
			rep, err = resolute.DefaultLayout().Read(in, nil)
			if err != nil {
				t.Fatal(err)
			}
		} else {
			if rep, err = resolute.DefaultLayout().Read(f, nil); err != nil {
				t.Fatal(err)
			}
		}
		if !rep.OK() || rep.Header.BatchID != "HB-20260115-M130509" || rep.Lines != int64(o.Journals*o.LinesPerJournal) || rep.Debit != rep.Credit {
			t.Errorf("%s: %+v", name, rep)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.part")); len(left) != 0 {
		t.Errorf(".part files left: %v", left)
	}
}
