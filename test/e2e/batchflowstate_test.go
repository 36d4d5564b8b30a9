package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestStagedBatchFlowKeepsManifestsUntilActivated: a staged resolute-gl
// keeps a dropped Resolute file's manifest in BATCH_IN on its own consumer
// (transform-batch-resolute-gl) and posts nothing to Fusion; activating it
// maps, posts and reconciles the batch exactly once.
func TestStagedBatchFlowKeepsManifestsUntilActivated(t *testing.T) {
	const flow = "resolute-gl"
	fusion := startFusion(t, "-step", "50ms", "-read-lag", "300ms")
	dir := t.TempDir()
	s := upGL(t, dir, newAddrs(t), fusion)

	if out, err := s.flows(t, "stage", flow, "--reason", "cutover rehearsal"); err != nil {
		t.Fatalf("flows stage: %v\n%s", err, out)
	}
	drop(t, dir, "hb_20260115.txt", genDay(t, "HB-20260115-STAGED", 3))
	waitDone(t, dir, 1)
	waitFor(t, "the manifest kept for the flow", 30*time.Second, func() (bool, string) {
		r := s.flowRow(t, flow)
		return r.State == "staged" && r.Held && r.Backlog == 1, fmt.Sprintf("%+v", r)
	})
	time.Sleep(2 * time.Second) // time enough for a wrong upload to show
	if up := fusion.uploads(t); len(up) != 0 {
		t.Fatalf("staged batch flow uploaded %d files to Fusion: %+v", len(up), up)
	}
	if gs := fusion.imports(t); len(gs) != 0 {
		t.Fatalf("staged batch flow imported %d groups: %+v", len(gs), gs)
	}

	if out, err := s.flows(t, "activate", flow, "--reason", "cutover"); err != nil {
		t.Fatalf("flows activate: %v\n%s", err, out)
	}
	out := waitRecon(t, s, "HB-20260115-STAGED", "pass", false)
	t.Logf("recon report:\n%s", out)
	exactlyOnce(t, fusion, 2)
	if r := s.flowRow(t, flow); r.State != "active" || r.Backlog != 0 {
		t.Errorf("after activation: %+v, want active with nothing waiting", r)
	}
	s.stop(t)
}
