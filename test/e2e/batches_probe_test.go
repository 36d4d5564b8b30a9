package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/track"
)

// TestRejectedBatchIsListedAndFailsTheReport is issue 9 items 2 and 13
// under `sinew up`: a malformed Resolute file is rejected with
// line-numbered findings, `sinew batches show` finds it, `sinew recon
// report` exits 1 naming it until an operator resolves it, and the CLI's
// reads (audit, dlq, recon, batches) leave no consumer behind.
func TestRejectedBatchIsListedAndFailsTheReport(t *testing.T) {
	dir := t.TempDir()
	s, _ := up(t, dir, newAddrs(t))
	drop(t, dir, "hb_bad_probe.txt", func(f *os.File) {
		f.WriteString("H|HB-BAD-PROBE|2026-01-16T02:00:00Z|HB|2026-01-15\n" +
			"D|B1|2026-01-15|10|6010|40100|COM|BCBS|CHG||10.00|1|x\n" +
			"D|B2|2026-01-15|10|1000|11010|COM|BCBS|CHG|9.00||1|y\n" +
			"T|2|9.00|10.00\n")
	})
	var out string
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, err = s.cli(t, "batches", "show", "HB-BAD-PROBE")
		if err == nil && strings.Contains(out, `"step": "file-rejected"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rejected batch not shown: %v\n%s", err, out)
		}
	}
	if !strings.Contains(out, "line 2: journal 2026-01-15|10 is unbalanced") || strings.Contains(out, "line 0") {
		t.Errorf("findings without their lines:\n%s", out)
	}
	out, err = s.cli(t, "recon", "report")
	if err == nil || !strings.Contains(out, "HB-BAD-PROBE") || !strings.Contains(out, "rejected") {
		t.Fatalf("recon report with a rejected batch: %v\n%s", err, out)
	}
	if out, err := s.cli(t, "batches", "resolve", "HB-BAD-PROBE"); err == nil {
		t.Fatalf("resolve without a reason accepted:\n%s", out)
	}
	if out, err := s.cli(t, "batches", "resolve", "HB-BAD-PROBE", "--reason", "resent corrected as HB-BAD-PROBE-2"); err != nil {
		t.Fatalf("resolve: %v\n%s", err, out)
	}
	if out, _ := s.cli(t, "recon", "report"); strings.Contains(out, "HB-BAD-PROBE: rejected") {
		t.Fatalf("resolved batch still fails the report:\n%s", out)
	}
	if out, err := s.cli(t, "batches"); err != nil || !strings.Contains(out, "resolved") {
		t.Fatalf("batches: %v\n%s", err, out)
	}
	for _, verb := range [][]string{{"audit", "list"}, {"audit", "verify"}, {"dlq", "list"}, {"recon", "report"}, {"batches", "--json"}} {
		_, _ = s.cli(t, verb...)
	}
	// The topology sinew up ensured: with its flows' own consumers.
	inv, err := flows.Load(filepath.Join(repoRoot(t), "flows.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	opts := streams.DefaultOptions()
	opts = inv.Topology(opts)
	durable := map[string]bool{}
	for _, c := range streams.New(opts).Consumers {
		durable[c.Stream+"/"+c.Name] = true
	}
	js := s.js(t)
	ctx := context.Background()
	for _, name := range []string{"AUDIT", "DLQ", "RECON", "BATCH_IN", "FUSION_CMD", "RESULTS"} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		l := st.ListConsumers(ctx)
		for ci := range l.Info() {
			if name == streams.Audit && strings.HasPrefix(ci.Name, track.IndexerConsumerPrefix+"-") {
				continue // the console's tracking index follows AUDIT while it runs
			}
			if !durable[name+"/"+ci.Name] {
				t.Errorf("%s: consumer %s left behind (%d unprocessed)", name, ci.Name, ci.NumPending)
			}
		}
		if err := l.Err(); err != nil {
			t.Fatal(err)
		}
	}
}
