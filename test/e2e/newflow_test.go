package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newHL7Flow is a flow on the existing dispense shape, declared only: a
// second Willow interface (its own sending application) with its own
// Fusion source code.
const newHL7Flow = `
  - id: willow-returns
    pattern: realtime-hl7
    source: epic.willow
    target: fusion.inventory
    description: test-only second pharmacy interface on the dispense shape
    state: staged
    tolerances: {absolute: "0", percent: "0"}
    fusion_source: EPIC-WILLOWRET
    reconcile: {kind: inventory}
    hl7:
      sending_applications: [WILLOWRET]
      source_system: epic.willow
      messages:
        RDS^O13:
          shape: dispense
          source: ndc
          fields:
            program_340b: {path: ZRX-1, true: ["Y"], false: ["N"], required: true}
            location: {path: ZRX-2, required: true}
`

// TestNewHL7FlowDeclaredInFlowsYAMLRunsEndToEnd: a flow added by a
// flows.yaml entry alone (sinew up --flows) gets its own subjects,
// consumer and grant, is held while staged, and once activated its
// dispenses reach Fusion under its own source code, apart from
// willow-inventory's.
func TestNewHL7FlowDeclaredInFlowsYAMLRunsEndToEnd(t *testing.T) {
	base, err := os.ReadFile(filepath.Join(repoRoot(t), "flows.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "flows.yaml")
	if err := os.WriteFile(file, append(base, newHL7Flow...), 0o644); err != nil {
		t.Fatal(err)
	}
	fusion := startFusion(t, "-step", "50ms")
	a := newAddrs(t)
	s, _ := upWith(t, filepath.Join(dir, "data"), a, []string{"--fusion-url", fusion.url, "--flows", file},
		append([]string{"SINEW_RECONCILER_INVENTORY_EVERY=0s"}, glEnv...))
	flows := func(args ...string) string {
		t.Helper()
		out, err := s.cli(t, append(append([]string{"flows"}, args...), "--flows", file)...)
		if err != nil {
			t.Fatalf("sinew flows %v: %v\n%s", args, err, out)
		}
		return out
	}
	const n = 20
	sendRet := func(prefix string, app string) {
		for i := range n {
			msg := dispense(fmt.Sprintf("%s%04d", prefix, i))
			msg = bytes.Replace(msg, []byte("MSH|^~\\&|WILLOW|"), []byte("MSH|^~\\&|"+app+"|"), 1)
			sendAA(t, a.mllp, string(msg))
		}
	}
	sendRet("RET", "WILLOWRET")
	sendRet("INV", "WILLOW")
	waitFor(t, "willow-inventory's dispenses in Fusion", 60*time.Second, func() (bool, string) {
		c := fusion.count(t)
		return c >= n, fmt.Sprint(c, " rows")
	})
	time.Sleep(time.Second)
	if c := fusion.count(t); c != n {
		t.Fatalf("%d rows in Fusion while willow-returns is staged, want willow-inventory's %d", c, n)
	}
	if out := flows(); !strings.Contains(out, "willow-returns") || !strings.Contains(out, "staged") {
		t.Fatalf("sinew flows:\n%s", out)
	}
	flows("activate", "willow-returns", "--reason", "new interface live")
	waitFor(t, "willow-returns' dispenses in Fusion", 60*time.Second, func() (bool, string) {
		c := fusion.count(t)
		return c >= 2*n, fmt.Sprint(c, " rows")
	})
	var rows []struct{ SourceCode, TransactionReference string }
	fusion.get(t, "/sim/inventory", &rows)
	by := map[string]int{}
	for _, r := range rows {
		switch {
		case strings.HasPrefix(r.TransactionReference, "RET") && r.SourceCode == "EPIC-WILLOWRET",
			strings.HasPrefix(r.TransactionReference, "INV") && r.SourceCode == "EPIC-WILLOW":
			by[r.SourceCode]++
		default:
			t.Errorf("row %s under source code %s", r.TransactionReference, r.SourceCode)
		}
	}
	if by["EPIC-WILLOWRET"] != n || by["EPIC-WILLOW"] != n {
		t.Fatalf("rows per source code %v, want %d each", by, n)
	}
	s.stop(t)
}
