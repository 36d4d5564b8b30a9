package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// drillResult is the part of `sinew drill --json` the tests read.
type drillResult struct {
	Verdict   string `json:"verdict"`
	Sent      int    `json:"messages_sent"`
	FaultHits []int  `json:"fusion_fault_hits"`
	Restarts  int    `json:"restarts"`
	Flows     []struct {
		Flow       string            `json:"flow"`
		Kind       string            `json:"source_kind"`
		Checked    bool              `json:"checked"`
		Tiers      map[string]string `json:"reconciliation_tiers"`
		Sent       int               `json:"source_count"`
		SentQty    string            `json:"source_quantity"`
		Loaded     int               `json:"loaded"`
		LoadedQty  string            `json:"loaded_quantity"`
		Lost       int               `json:"lost"`
		Duplicated int               `json:"duplicated"`
		Verdict    string            `json:"verdict"`
		EpicSent   int               `json:"epic_changes"`
		EpicLoaded int               `json:"epic_changes_loaded"`
		Note       string            `json:"note"`
	} `json:"flows"`
}

// runDrill runs the built binary's drill from the repository root (where
// flows.yaml and deploy/demo are) and returns its result and exit code.
func runDrill(t *testing.T, args ...string) (drillResult, int) {
	t.Helper()
	cmd := exec.Command(sinewBin, append([]string{"drill", "--json"}, args...)...)
	cmd.Dir = repoRoot(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	var r drillResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("sinew drill --json (exit %d): %v\nstdout:\n%s\nstderr:\n%s", code, err, stdout.String(), stderr.String())
	}
	t.Logf("sinew drill %v: exit %d\n%s", args, code, stderr.String())
	return r, code
}

// checkDrill asserts a passing drill: exit 0, verdict pass, and every
// flow compared with Fusion found whole and once (with the same quantity
// where the drill knows it).
func checkDrill(t *testing.T, r drillResult, code int) {
	t.Helper()
	if code != 0 || r.Verdict != "pass" {
		t.Fatalf("drill: exit %d, verdict %q: %+v", code, r.Verdict, r)
	}
	checked := 0
	for _, f := range r.Flows {
		if !f.Checked {
			continue
		}
		checked++
		if f.Sent == 0 || f.Loaded != f.Sent || (f.SentQty != "" && f.SentQty != f.LoadedQty) || f.Lost != 0 || f.Duplicated != 0 || f.Verdict != "pass" {
			t.Errorf("%s: %+v", f.Flow, f)
		}
	}
	if checked == 0 {
		t.Fatalf("no flow compared with Fusion: %+v", r.Flows)
	}
}

// drilledFlows are the demo inventory's flows the synthetic day covers:
// each must be checked, with a reconciliation verdict per tier.
var drilledFlows = []string{"resolute-gl", "willow-inventory", "optime-materials", "beaker-inventory",
	"worker-sync", "supplier-sync", "ap-payment-status", "formulary-check", "optime-encounters", "beaker-expected-use"}

func checkEveryFlow(t *testing.T, r drillResult) {
	t.Helper()
	for _, id := range drilledFlows {
		found := false
		for _, f := range r.Flows {
			if f.Flow != id {
				continue
			}
			found = true
			if !f.Checked || f.Kind == "" || f.Sent == 0 {
				t.Errorf("%s: not drilled: %+v", id, f)
			}
			if f.Flow == "worker-sync" && (f.EpicSent == 0 || f.EpicLoaded != f.EpicSent) {
				t.Errorf("%s: Epic-side changes %d sent, %d in Fusion", id, f.EpicSent, f.EpicLoaded)
			}
			if len(f.Tiers) == 0 {
				t.Errorf("%s: no reconciliation verdict: %+v", id, f)
			}
			for tier, v := range f.Tiers {
				if v != "pass" {
					t.Errorf("%s: reconciliation tier %s %s", id, tier, v)
				}
			}
		}
		if !found {
			t.Errorf("%s: not in the drill's result", id)
		}
	}
}

// TestDrillSeedOnePasses is the cutover drill as an operator runs it:
// the built binary, seed 1, the small volume.
func TestDrillSeedOnePasses(t *testing.T) {
	r, code := runDrill(t, "--seed", "1", "--volume", "small")
	checkDrill(t, r, code)
	checkEveryFlow(t, r)
	if r.Sent == 0 {
		t.Fatalf("drill sent nothing: %+v", r)
	}
	checkScheduledRuns(t, r)
}

// scheduledFlows are the demo inventory's scheduled batch flows: the drill
// runs each by hand for the drill day after quiescence, and a clean day
// leaves nothing missing for it to catch up.
var scheduledFlows = []string{"nightly-catchup"}

func checkScheduledRuns(t *testing.T, r drillResult) {
	t.Helper()
	for _, id := range scheduledFlows {
		found := false
		for _, f := range r.Flows {
			if f.Flow != id {
				continue
			}
			found = true
			if !f.Checked || f.Kind == "" || f.Verdict != "pass" || f.Sent == 0 || f.Loaded != f.Sent || f.Lost != 0 {
				t.Errorf("%s: run for the drill day: %+v", id, f)
			}
		}
		if !found {
			t.Errorf("%s: not in the drill's result", id)
		}
	}
}

// TestDrillWithFusionFaultsAndAKillStillPasses makes fusionsim fail a
// tenth of its requests with 503, a burst of 429s, and kills sinew up
// mid-drain: nothing is lost or doubled.
func TestDrillWithFusionFaultsAndAKillStillPasses(t *testing.T) {
	r, code := runDrill(t, "--seed", "1", "--volume", "small", "--faults", "fusion.5xx=0.1,fusion.429=burst,kill=sinew:3s")
	checkDrill(t, r, code)
	checkEveryFlow(t, r)
	if len(r.FaultHits) != 2 || r.FaultHits[0]+r.FaultHits[1] == 0 {
		t.Fatalf("fusionsim injected no fault: %v", r.FaultHits)
	}
	if r.Restarts != 1 {
		t.Fatalf("restarts %d, want 1", r.Restarts)
	}
}

// TestDrillDetectsASeededLossAndDuplicate withholds two dispenses the
// drill counts as sent and posts one of Fusion's rows again outside
// Sinew: the drill names both and exits 1.
func TestDrillDetectsASeededLossAndDuplicate(t *testing.T) {
	r, code := runDrill(t, "--seed", "1", "--volume", "small", "--faults", "drill.lose=2,drill.duplicate=1")
	if code != 1 || r.Verdict != "fail" {
		t.Fatalf("drill: exit %d, verdict %q, want 1 and fail", code, r.Verdict)
	}
	lost, dup := 0, 0
	for _, f := range r.Flows {
		lost += f.Lost
		dup += f.Duplicated
		if (f.Lost > 0 || f.Duplicated > 0) && f.Verdict != "fail" {
			t.Errorf("%s: lost %d, duplicated %d, verdict %s", f.Flow, f.Lost, f.Duplicated, f.Verdict)
		}
	}
	if lost != 2 || dup != 1 {
		t.Fatalf("lost %d, duplicated %d; want 2 and 1: %+v", lost, dup, r.Flows)
	}
}

// TestDrillDetectsAFormularyDrift has epicsim's FHIR server seed one
// Medication whose strength differs from Willow's formulary: the
// formulary check's verdict is a variance and the drill exits 1.
func TestDrillDetectsAFormularyDrift(t *testing.T) {
	r, code := runDrill(t, "--seed", "1", "--volume", "small", "--faults", "epic.formulary_drift=1")
	if code != 1 || r.Verdict != "fail" {
		t.Fatalf("drill: exit %d, verdict %q, want 1 and fail", code, r.Verdict)
	}
	for _, f := range r.Flows {
		if f.Flow == "formulary-check" && (f.Verdict != "fail" || f.Tiers["3"] != "variance" || f.Sent == 0) {
			t.Errorf("formulary-check: %+v", f)
		}
	}
}

// TestDrillDetectsSeededClinicalVariances has Epic chart the drill's day
// with a case missing its Encounter and an implant Encounter never
// carted, and one analyzer using 20 % more glucose reagent than its tests
// need: optime-encounters and beaker-expected-use report their variances
// (no-encounter, no-cart; reagent|GLU-R1), the drill names them and exits 1,
// and every other flow still passes.
func TestDrillDetectsSeededClinicalVariances(t *testing.T) {
	r, code := runDrill(t, "--seed", "1", "--volume", "small", "--faults", "epic.missing_encounters=1,epic.uncarted_implants=1,epic.over_consume=BEAKER-CHEM-01:20")
	if code != 1 || r.Verdict != "fail" {
		t.Fatalf("drill: exit %d, verdict %q, want 1 and fail", code, r.Verdict)
	}
	want := map[string][]string{"optime-encounters": {"/no-encounter", "/no-cart"}, "beaker-expected-use": {"reagent|GLU-R1"}}
	for _, f := range r.Flows {
		keys, seeded := want[f.Flow]
		switch {
		case !seeded && f.Verdict == "fail":
			t.Errorf("%s failed without a fault of its own: %+v", f.Flow, f)
		case seeded && (f.Verdict != "fail" || !f.Checked || f.Sent == 0 || f.Loaded != f.Sent):
			t.Errorf("%s: %+v", f.Flow, f)
		case seeded:
			for _, k := range keys {
				if !strings.Contains(f.Note, k) {
					t.Errorf("%s: the note does not name %s: %s", f.Flow, k, f.Note)
				}
			}
		}
	}
}
