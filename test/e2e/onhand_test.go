package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
)

// reagentResult is a final Beaker result consuming one CBC pack and 0.25 L
// of glucose reagent in the core lab, its order ids unique per test run.
func reagentResult(id string, at time.Time) []byte {
	ts := at.UTC().Format("20060102150405")
	segs := []string{
		"MSH|^~\\&|BEAKER|STMARYS|SINEW|STMARYS|" + ts + "||ORU^R01^ORU_R01|" + id + "|P|2.5.1",
		"PID|1||E1234567^^^STMARYS^MR||TESTPATIENT^ALPHA||19700101|F",
		"PV1|1|O|LAB^^^STMARYS",
		"ORC|RE|ORD" + id + "|ACC" + id + "||CM",
		"OBR|1|ORD" + id + "|ACC" + id + "|CBC^Complete blood count^L|||" + ts + "|||||||||||||||" + ts + "|||F",
		"OBX|1|NM|718-7^Hemoglobin^LN||13.2|g/dL|12-16|N|||F",
		"ZRG|CBC-PK|1|PK|LOT-CBC-01|CORELAB",
		"ZRG|GLU-R1|0.25|L|LOT-G-9|CORELAB",
	}
	return []byte(strings.Join(segs, "\r") + "\r")
}

// dropCount writes a Beaker stock count into the beaker-onhand drop
// folder: under a .part name, settled, then renamed.
func dropCount(t *testing.T, dataDir, name, body string) {
	t.Helper()
	dir := filepath.Join(dataDir, "drop", "beaker-onhand")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(dir, name+".part")
	if err := os.WriteFile(part, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	_ = os.Chtimes(part, old, old)
	if err := os.Rename(part, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// TestOnhandCountReconciledAgainstFusion: Beaker reagent consumption over
// MLLP reaches fusionsim (on-hand 1000 of every item), then Beaker's stock
// count is dropped: a count matching Fusion passes, a recount off by more
// than the flow's 0.5 % for one item is a variance naming it.
func TestOnhandCountReconciledAgainstFusion(t *testing.T) {
	fusion := startFusion(t)
	dir := t.TempDir()
	a := newAddrs(t)
	env := append([]string{"SINEW_RECONCILER_ONHAND_EVERY=1s", "SINEW_RECONCILER_INVENTORY_EVERY=0s"}, glEnv...)
	s, _ := upWith(t, dir, a, []string{"--fusion-url", fusion.url}, env)

	ctx := context.Background()
	c, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: a.mllp, Match: hl7.AckMatches, AckTimeout: 5 * time.Second, Retries: 10, RetryDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	run := time.Now().UTC().Format("150405.000")
	for i := range 3 {
		ack, err := c.Send(ctx, reagentResult(fmt.Sprintf("OH%s%d", strings.ReplaceAll(run, ".", ""), i), time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		if m, err := hl7.Parse(ack); err != nil || m.Get("MSA-1") != "AA" {
			t.Fatalf("answered %q", ack)
		}
	}
	waitFor(t, "reagent transactions in Fusion", 60*time.Second, func() (bool, string) {
		n := fusionRows(t, fusion)
		return n >= 6, fmt.Sprint(n, " rows")
	})

	// Counted a second after the last message: 1000 − 3 packs, and
	// 1000 mL − 3 × 250 mL = 0.25 L in Beaker's unit.
	at := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	for time.Now().Before(at) {
		time.Sleep(50 * time.Millisecond)
	}
	day, moment := at.Format(time.DateOnly), at.Format(time.RFC3339)
	scope := day + "/onhand"
	report := func() (string, error) {
		return s.cli(t, "recon", "report", "--flow", "beaker-inventory", "--batch", scope)
	}
	dropCount(t, dir, "count-1.csv", "count_date,department,reagent_code,quantity,unit\n"+
		moment+",CORELAB,CBC-PK,997,PK\n"+moment+",CORELAB,GLU-R1,0.25,L\n")
	waitFor(t, "count passes", 60*time.Second, func() (bool, string) {
		out, err := report()
		return err == nil && strings.Contains(out, "batch "+scope+": PASS"), out
	})
	out, _ := report()
	for _, want := range []string{"onhand|MAIN|LAB-CORE|LAB-4001", "onhand|MAIN|LAB-CORE|LAB-4002", "2 rows counted, 2 mapped"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "RX-1001") {
		t.Errorf("an item Beaker does not count was compared:\n%s", out)
	}
	t.Logf("matching count:\n%s", out)

	// A recount with 0.27 L of glucose reagent: 270 mL against Fusion's 250,
	// 8 % off. It is a variance once the read lag (10 s) is over.
	dropCount(t, dir, "count-2.csv", "count_date,department,reagent_code,quantity,unit\n"+
		moment+",CORELAB,CBC-PK,997,PK\n"+moment+",CORELAB,GLU-R1,0.27,L\n")
	waitFor(t, "recount is a variance", 60*time.Second, func() (bool, string) {
		out, err := report()
		return err != nil && strings.Contains(out, "batch "+scope+": VARIANCE"), out
	})
	out, err = report()
	if err == nil || !strings.Contains(out, "LAB-4002") || !strings.Contains(out, "beyond tolerance") {
		t.Errorf("recount report (err %v) does not name LAB-4002 beyond tolerance:\n%s", err, out)
	}
	t.Logf("recount:\n%s", out)

	// The count manifests were acknowledged by transform, not dead-lettered.
	if dl, err := s.cli(t, "dlq", "list"); err != nil || strings.Contains(dl, "beaker-inventory") {
		t.Errorf("dead letters (err %v):\n%s", err, dl)
	}
	s.stop(t)
}
