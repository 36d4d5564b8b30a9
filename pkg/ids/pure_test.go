package ids_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The pure packages mark errors permanent by a Permanent() method and
// derive ids with this package: none of them may depend on the runtime.
func TestPurePackagesDoNotDependOnTheRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	for _, dir := range []string{"../recon", "../batchstate", "../../services/transform/flows/hl7flow"} {
		cmd := exec.Command(goTool, "list", "-deps", ".")
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Skipf("go list in %s: %v (not in the workspace?)", dir, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == "github.com/sinewhq/sinew/pkg/bus" {
				t.Errorf("%s depends on pkg/bus", dir)
			}
		}
	}
}
