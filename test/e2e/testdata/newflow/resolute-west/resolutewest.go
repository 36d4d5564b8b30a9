// Package resolutewest is a test-only second Resolute GL interface
// (TestNewBatchFlowByFlowsYAMLAndFolderRunsEndToEnd copies it into
// services/transform/flows/resolute-west/ of a copy of the repository):
// the Resolute journal shape under its own flow id, with its own drop
// folder and flows.yaml settings.
package resolutewest

import (
	resolutegl "github.com/sinewhq/sinew/services/transform/flows/resolute-gl"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// Flow is the flow id.
const Flow = "resolute-west"

// Entry registers the flow: Resolute files mapped to FBDI, posted by
// Journal Import with the flow's own gl settings.
func Entry() registry.Entry { return resolutegl.EntryFor(Flow) }
