package all_test

import (
	"testing"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/services/transform/registry/all"
)

// The shipped flows.yaml and the flow packages agree.
func TestRegistryMatchesFlowsYAML(t *testing.T) {
	inv, err := flows.Load("../../../../flows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := all.Registry()
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Check(inv); err != nil {
		t.Fatal(err)
	}
}
