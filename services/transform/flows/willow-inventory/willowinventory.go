// Package willowinventory maps the willow-inventory flow's HL7 v2 messages (Willow dispenses, pharmacy charges and formulary MFNs) to Fusion
// commands. The message shapes and site fields are the flow's hl7 entry in
// flows.yaml; the mapping is hl7flow's (docs/flows/inventory.md).
package willowinventory

import (
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// Flow is the flow id.
const Flow = "willow-inventory"

// New returns the flow's mapper from its flows.yaml entry.
func New(f *flows.Flow) (*hl7flow.Mapper, error) { return hl7flow.New(f) }

// Entry registers the flow (registry/all): its HL7 mapper is New.
func Entry() registry.Entry { return registry.Entry{ID: Flow, NewHL7: New} }
