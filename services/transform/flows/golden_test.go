// Package flows_test runs the golden files of every flow's package.
package flows_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow/flowtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestEveryFlowsGoldenFiles is one table over flows.yaml: each HL7 flow's
// home is flows/<id>/ with golden files, mapped on events built by
// ingest's own receipt builder (pkg/hl7receipt); every folder here is a
// flow of flows.yaml or a shared shape (hl7flow, fhircheck).
func TestEveryFlowsGoldenFiles(t *testing.T) {
	inv, err := flows.Load("../../../flows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range inv.HL7IDs() {
		t.Run(id, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(id, "testdata")); err != nil {
				t.Fatalf("flow %s has no flows/%s/testdata: %v", id, id, err)
			}
			t.Chdir(id)
			if all := flowtest.Golden(t, id, *update); len(all) == 0 {
				t.Errorf("flow %s: no golden inputs", id)
			}
		})
	}
	dirs, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == "hl7flow" || d.Name() == "fhircheck" {
			continue
		}
		if _, ok := inv.Get(d.Name()); !ok {
			t.Errorf("flows/%s is no flow of flows.yaml", d.Name())
		}
	}
}
