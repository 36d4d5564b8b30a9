// Package all lists every flow package: the one place a new flow's code is
// added (registry.Entry from its flows/<id>/ package).
package all

import (
	beakerinventory "github.com/sinewhq/sinew/services/transform/flows/beaker-inventory"
	optimematerials "github.com/sinewhq/sinew/services/transform/flows/optime-materials"
	resolutegl "github.com/sinewhq/sinew/services/transform/flows/resolute-gl"
	willowinventory "github.com/sinewhq/sinew/services/transform/flows/willow-inventory"
	workersync "github.com/sinewhq/sinew/services/transform/flows/worker-sync"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// Entries are the flow packages' registrations.
func Entries() []registry.Entry {
	return []registry.Entry{
		resolutegl.Entry(),
		willowinventory.Entry(),
		optimematerials.Entry(),
		beakerinventory.Entry(),
		workersync.Entry(),
	}
}

// Registry returns a registry of every flow package.
func Registry() (*registry.Registry, error) { return registry.New(Entries()...) }
