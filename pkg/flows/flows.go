// Package flows reads flows.yaml, Sinew's integration inventory: every
// flow's id, pattern, systems, state and reconciliation tolerances, and
// its site-specific settings.
package flows

import (
	"fmt"
	"io"
	"os"
	"regexp"

	"gopkg.in/yaml.v3"

	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/resolute"
)

// States a flow can be in.
const (
	Staged = "staged" // input accumulates in JetStream, nothing is posted
	Active = "active"
	Paused = "paused"
)

// Inventory is the whole file.
type Inventory struct {
	Flows []Flow `yaml:"flows"`
}

// Flow is one integration.
type Flow struct {
	ID          string     `yaml:"id"`
	Pattern     string     `yaml:"pattern"`
	Source      string     `yaml:"source"`
	Target      string     `yaml:"target"`
	Description string     `yaml:"description"`
	State       string     `yaml:"state"`
	Tolerances  Tolerances `yaml:"tolerances"`
	// Resolute is the journal file layout of a batch GL flow.
	Resolute *resolute.Layout `yaml:"resolute,omitempty"`
	// Clarity names the columns of the flow's Clarity extracts (CSV, Parquet).
	Clarity *resolute.Clarity `yaml:"clarity,omitempty"`
	// GL names the Fusion side of a GL flow.
	GL *GL `yaml:"gl,omitempty"`
}

// Tolerances bound a reconciliation variance: absolute in the flow's unit
// (an exact decimal) and percent of the source value.
type Tolerances struct {
	Absolute string `yaml:"absolute"`
	Percent  string `yaml:"percent"`
}

// GL is where journals go in Fusion.
type GL struct {
	Ledger   string `yaml:"ledger"`
	Source   string `yaml:"source"`   // Journal source name (USER_JE_SOURCE_NAME)
	Category string `yaml:"category"` // Journal category name
	Currency string `yaml:"currency"`
	// LedgerID and DataAccessSetID are the numeric ids Journal Import's
	// parameters take (the file itself names the ledger).
	LedgerID        string `yaml:"ledger_id"`
	DataAccessSetID string `yaml:"data_access_set_id"`
}

var idPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{1,39}$`)

// Parse reads and checks an inventory.
func Parse(r io.Reader) (*Inventory, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var inv Inventory
	if err := dec.Decode(&inv); err != nil {
		return nil, fmt.Errorf("flows: %w", err)
	}
	seen := map[string]bool{}
	for i, f := range inv.Flows {
		where := fmt.Sprintf("flows: flow %d (%s)", i+1, f.ID)
		if !idPattern.MatchString(f.ID) {
			return nil, fmt.Errorf("%s: id must be lower-case letters, digits and dashes (it is a subject token)", where)
		}
		if seen[f.ID] {
			return nil, fmt.Errorf("%s: duplicate id", where)
		}
		seen[f.ID] = true
		switch f.State {
		case Staged, Active, Paused:
		default:
			return nil, fmt.Errorf("%s: state %q is not staged, active or paused", where, f.State)
		}
		if _, err := money.Parse(f.Tolerances.Absolute); err != nil {
			return nil, fmt.Errorf("%s: tolerances.absolute: %w", where, err)
		}
		if _, err := money.Parse(f.Tolerances.Percent); err != nil {
			return nil, fmt.Errorf("%s: tolerances.percent: %w", where, err)
		}
	}
	return &inv, nil
}

// Load reads the inventory at path.
func Load(path string) (*Inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("flows: %w", err)
	}
	defer f.Close()
	return Parse(f)
}

// Get returns the flow with id.
func (inv *Inventory) Get(id string) (*Flow, bool) {
	for i := range inv.Flows {
		if inv.Flows[i].ID == id {
			return &inv.Flows[i], true
		}
	}
	return nil, false
}
