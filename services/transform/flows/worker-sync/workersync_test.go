package workersync

import (
	"testing"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/fusion"
	ws "github.com/sinewhq/sinew/pkg/workersync"
)

// The reconciliation's state digest follows the attributes Fusion owns
// and ignores the clinical ones Epic owns.
func TestHRStateFollowsFusionOwnedAttributes(t *testing.T) {
	rules, err := ws.RulesOf(flows.Flow{ID: Flow, Conflicts: []flows.Conflict{
		{Field: "hr_attributes", Wins: "source"}, {Field: "clinical_attributes", Wins: "target"}}})
	if err != nil {
		t.Fatal(err)
	}
	base := fusion.Worker{PersonNumber: "P1", LastName: "RIVERA", FirstName: "ANA", Status: "ACTIVE", Department: "CARDIOLOGY", Job: "PHYS",
		NPI: "1234567893", Specialty: "Cardiology"}
	cases := []struct {
		name string
		edit func(w *fusion.Worker)
		same bool
	}{
		{"unchanged", func(*fusion.Worker) {}, true},
		{"department (HR)", func(w *fusion.Worker) { w.Department = "ONCOLOGY" }, false},
		{"name (HR)", func(w *fusion.Worker) { w.LastName = "RIVERA-CRUZ" }, false},
		{"specialty (clinical)", func(w *fusion.Worker) { w.Specialty = "Oncology" }, true},
		{"NPI (clinical)", func(w *fusion.Worker) { w.NPI = "1245319599" }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := base
			c.edit(&w)
			if got := hrState(rules, w) == hrState(rules, base); got != c.same {
				t.Fatalf("same digest %v, want %v", got, c.same)
			}
		})
	}
}
