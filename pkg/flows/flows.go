// Package flows reads flows.yaml, Sinew's integration inventory: every
// flow's id, pattern, systems, state and reconciliation tolerances, and
// its site-specific settings.
package flows

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/resolute"
	"github.com/sinewhq/sinew/pkg/streams"
)

// States a flow can be in.
const (
	Staged = "staged" // nothing is posted; not yet kept back (docs/architecture.md, Flows)
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
	// FusionSource is the SourceCode of the flow's rows in Fusion
	// (EPIC-WILLOW): unique, so each flow's rows are read back and
	// reconciled apart from every other's. Required for flows that post
	// inventory transactions (reconcile.kind inventory).
	FusionSource string `yaml:"fusion_source"`
	// Reconcile says how the flow is reconciled; none when absent.
	Reconcile Reconcile `yaml:"reconcile"`
	// Intake names the drop folders and SFTP directories whose files are
	// the flow's (a batch flow's input).
	Intake Intake `yaml:"intake"`
	// Schedule is when a scheduled flow runs (a cron expression); empty
	// for flows driven by their input.
	Schedule string `yaml:"schedule,omitempty"`
	// Conflicts are a two-way flow's rules: which side wins each field.
	Conflicts []Conflict `yaml:"conflicts,omitempty"`
	// FusionRead is how a flow that reads Fusion HCM itself follows its
	// changes: feeds (the Atom feeds, the default), workers (polling
	// workers by LastUpdateDate) or auto (the feeds, polling workers while
	// they are unavailable).
	FusionRead string `yaml:"fusion_read,omitempty"`
	// Resolute is the journal file layout of a batch GL flow.
	Resolute *resolute.Layout `yaml:"resolute,omitempty"`
	// Clarity names the columns of the flow's Clarity extracts (CSV, Parquet).
	Clarity *resolute.Clarity `yaml:"clarity,omitempty"`
	// GL names the Fusion side of a GL flow.
	GL *GL `yaml:"gl,omitempty"`
	// HL7 routes a real-time flow's HL7 v2 messages and describes its site
	// fields and Z-segments.
	HL7 *HL7 `yaml:"hl7,omitempty"`
	// Delivery is how a Fusion-to-Epic flow's records reach Epic; MLLP
	// to Epic's inbound interface when absent.
	Delivery *Delivery `yaml:"delivery,omitempty"`
	// Refunds is how ap-payment-status knows a patient refund's reference.
	Refunds *Refunds `yaml:"refunds,omitempty"`
	// Encounters is how a flow checking OpTime case carts against Epic's
	// surgical Encounters reads them (fhircheck.go).
	Encounters *EncounterCheck `yaml:"encounters,omitempty"`
	// ExpectedUse is a flow's reagent use per test and instrument, the
	// crosswalk from Epic's lab Observations to expected consumption
	// (fhircheck.go).
	ExpectedUse *ExpectedUse `yaml:"expected_use,omitempty"`
}

// Transports of a Fusion-to-Epic flow (Delivery.Transport).
const (
	TransportMLLP = "mllp" // an HL7 v2 message per record to Epic's inbound interface
	TransportSFTP = "sftp" // the site's file layout, put on Epic's SFTP share
)

// Delivery is the transport of a Fusion-to-Epic flow: mllp (the default)
// or sftp, with the site's file settings.
type Delivery struct {
	Transport string `yaml:"transport"`
	// Dir is the directory on Epic's SFTP share files are put in (sftp).
	Dir string `yaml:"dir"`
	// Delimiter separates a file's fields (one character; "|" when empty).
	Delimiter string `yaml:"delimiter"`
}

// Transport is the flow's transport to Epic (mllp when not declared).
func (f *Flow) Transport() string {
	if f.Delivery == nil || f.Delivery.Transport == "" {
		return TransportMLLP
	}
	return f.Delivery.Transport
}

// Refunds names the refund references among Fusion invoice numbers.
type Refunds struct {
	// Prefix starts a refund's reference, digits follow (DefaultRefundPrefix when empty).
	Prefix string `yaml:"prefix"`
}

// DefaultRefundPrefix starts a refund reference when flows.yaml sets none.
const DefaultRefundPrefix = "RF"

// RefundPrefix is the flow's refund reference prefix, or the default.
func (f *Flow) RefundPrefix() string {
	if f.Refunds == nil || f.Refunds.Prefix == "" {
		return DefaultRefundPrefix
	}
	return f.Refunds.Prefix
}

// HL7 is a real-time HL7 flow's routing and site configuration. A message
// in HL7_IN belongs to the flow whose SendingApplications hold its MSH-3-1;
// its MSH-9 type^event picks the entry of Messages ("MFN^*" matches any
// event) and so the mapper shape. Other types of the flow's applications
// are acknowledged without a command, with an audit detail.
type HL7 struct {
	SendingApplications []string `yaml:"sending_applications"`
	// SourceSystem is the commands' envelope source_system (e.g. epic.willow);
	// the flow's source when empty.
	SourceSystem string `yaml:"source_system"`
	// Fields apply to every message of the flow; a message's own fields
	// override them by name.
	Fields   map[string]Field      `yaml:"fields"`
	Messages map[string]HL7Message `yaml:"messages"`
}

// HL7Message is how one message type of a flow is mapped.
type HL7Message struct {
	// Shape names the mapper: dispense, charge, case, reagent, item-master,
	// supplier-master, or skip (acknowledged, audited, no command).
	Shape string `yaml:"shape"`
	// Source is the item crosswalk's source column for the message's codes
	// (ndc, charge, supply, reagent); the shape's default when empty.
	Source string           `yaml:"source"`
	Fields map[string]Field `yaml:"fields"`
}

// UnmarshalYAML accepts a bare shape name ("skip") for a message.
func (m *HL7Message) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		m.Shape = n.Value
		return nil
	}
	type plain HL7Message
	return n.Decode((*plain)(m))
}

// Field locates a value in a message by a Terser path (RXD-2-1, ZRX-1). A
// path is read, for a line (an RXD, FT1, ZRG, MFE), from the line itself,
// else the segments of its group (up to the next line), else the nearest
// one before it, else the first in the message. True and False make it a
// flag: a value in neither is an error for the message (a flag is never
// guessed). Required makes an empty value an error; Default replaces one.
type Field struct {
	Path     string   `yaml:"path"`
	True     []string `yaml:"true"`
	False    []string `yaml:"false"`
	Required bool     `yaml:"required"`
	Default  string   `yaml:"default"`
}

// UnmarshalYAML accepts a bare path ("ZRX-2") for a field.
func (f *Field) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		f.Path = n.Value
		return nil
	}
	type plain Field
	return n.Decode((*plain)(f))
}

// How a flow reads Fusion HCM's changes (Flow.FusionRead).
const (
	FusionReadFeeds   = "feeds"
	FusionReadWorkers = "workers"
	FusionReadAuto    = "auto"
)

// Reconciliation kinds.
const (
	ReconcileNone      = "none"      // not reconciled (yet)
	ReconcileGLBatch   = "gl-batch"  // batch by batch, against Journal Import's result and balances
	ReconcileInventory = "inventory" // per day, the flow's commands against Fusion's rows of its source code
	// ReconcileEpicAck: a Fusion-to-Epic flow's current Fusion records, each
	// against the latest version of it Epic acknowledged (RESULTS).
	ReconcileEpicAck = "epic-ack"
)

// Reconcile is how a flow is reconciled (docs/architecture.md, Flows).
type Reconcile struct {
	Kind string `yaml:"kind"`
	// Onhand: the flow's stock-count files (its intake) are compared with
	// Fusion's on-hand; their batch manifests carry nothing to post.
	Onhand bool `yaml:"onhand"`
}

// Intake is where a flow's batch files come from: folder names under
// ingest's drop directory and directory names on the SFTP server.
type Intake struct {
	Drops []string `yaml:"drops"`
	SFTP  []string `yaml:"sftp"`
	// FHIR are the FHIR R4 resource types ingest reads from Epic for the
	// flow (each type one flow's), onto fhir.in.<type>.
	FHIR []FHIRIntake `yaml:"fhir,omitempty"`
}

// FHIRIntake is one resource type a flow reads from Epic's FHIR server:
// by paged search over a clinical date parameter (sync: search, with
// fixed params such as category=laboratory) or by Group $export (sync:
// export) for types Epic cannot search by date.
type FHIRIntake struct {
	Type   string `yaml:"type"`
	Sync   string `yaml:"sync"`
	Params string `yaml:"params,omitempty"`
}

// FHIR sync methods.
const (
	FHIRSearch = "search"
	FHIRExport = "export"
)

// FHIRSource is a declared FHIR intake and the flow it feeds.
type FHIRSource struct {
	Flow string
	FHIRIntake
}

// FHIRTypes lists every declared FHIR intake with its flow, in file order.
func (inv *Inventory) FHIRTypes() []FHIRSource {
	var out []FHIRSource
	for _, f := range inv.Flows {
		for _, x := range f.Intake.FHIR {
			out = append(out, FHIRSource{Flow: f.ID, FHIRIntake: x})
		}
	}
	return out
}

// Conflict is one field of a two-way flow and the side that wins it.
type Conflict struct {
	Field string `yaml:"field"`
	Wins  string `yaml:"wins"` // source or target
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

var (
	idPattern    = regexp.MustCompile(`^[a-z][a-z0-9-]{1,39}$`)
	refundPrefix = regexp.MustCompile(`^[A-Z]{1,8}$`)
)

// Parse reads and checks an inventory.
func Parse(r io.Reader) (*Inventory, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var inv Inventory
	if err := dec.Decode(&inv); err != nil {
		return nil, fmt.Errorf("flows: %w", err)
	}
	seen := map[string]bool{}
	apps := map[string]string{}      // HL7 sending application -> flow
	sources := map[string]string{}   // Fusion source code -> flow
	drops := map[string]string{}     // drop folder -> flow
	dirs := map[string]string{}      // SFTP directory -> flow
	fhirTypes := map[string]string{} // FHIR resource type -> flow
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
		switch f.Reconcile.Kind {
		case "":
			inv.Flows[i].Reconcile.Kind = ReconcileNone
		case ReconcileNone, ReconcileGLBatch, ReconcileInventory, ReconcileEpicAck:
		default:
			return nil, fmt.Errorf("%s: reconcile.kind %q is not none, gl-batch, inventory or epic-ack", where, f.Reconcile.Kind)
		}
		switch f.FusionRead {
		case "", FusionReadFeeds, FusionReadWorkers, FusionReadAuto:
		default:
			return nil, fmt.Errorf("%s: fusion_read %q is not feeds, workers or auto", where, f.FusionRead)
		}
		if f.Reconcile.Kind == ReconcileInventory && f.FusionSource == "" {
			return nil, fmt.Errorf("%s: an inventory-reconciled flow needs fusion_source", where)
		}
		if f.FusionSource != "" {
			if other, dup := sources[f.FusionSource]; dup {
				return nil, fmt.Errorf("%s: fusion_source %s is %s's already: each flow's rows must be told apart", where, f.FusionSource, other)
			}
			sources[f.FusionSource] = f.ID
		}
		for _, d := range f.Intake.Drops {
			if other, dup := drops[d]; dup {
				return nil, fmt.Errorf("%s: drop folder %s is %s's already", where, d, other)
			}
			drops[d] = f.ID
		}
		for _, d := range f.Intake.SFTP {
			if other, dup := dirs[d]; dup {
				return nil, fmt.Errorf("%s: SFTP directory %s is %s's already", where, d, other)
			}
			dirs[d] = f.ID
		}
		for _, x := range f.Intake.FHIR {
			if x.Type == "" || (x.Sync != FHIRSearch && x.Sync != FHIRExport) {
				return nil, fmt.Errorf("%s: fhir intake %+v needs a type and sync: search or export", where, x)
			}
			if other, dup := fhirTypes[x.Type]; dup {
				return nil, fmt.Errorf("%s: FHIR type %s is %s's already", where, x.Type, other)
			}
			fhirTypes[x.Type] = f.ID
		}
		for _, c := range f.Conflicts {
			if c.Field == "" || (c.Wins != "source" && c.Wins != "target") {
				return nil, fmt.Errorf("%s: conflict rule %+v needs a field and wins: source or target", where, c)
			}
		}
		if d := f.Delivery; d != nil {
			switch d.Transport {
			case "", TransportMLLP:
			case TransportSFTP:
				if d.Dir == "" {
					return nil, fmt.Errorf("%s: delivery.dir is required for transport sftp", where)
				}
			default:
				return nil, fmt.Errorf("%s: delivery.transport %q is not mllp or sftp", where, d.Transport)
			}
			if len(d.Delimiter) > 1 || d.Delimiter != "" && strings.ContainsAny(d.Delimiter, "\\\r\n \t0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
				return nil, fmt.Errorf("%s: delivery.delimiter %q must be one punctuation character", where, d.Delimiter)
			}
		}
		if r := f.Refunds; r != nil && r.Prefix != "" && !refundPrefix.MatchString(r.Prefix) {
			return nil, fmt.Errorf("%s: refunds.prefix %q must be upper-case letters (digits follow it)", where, r.Prefix)
		}
		if f.HL7 != nil {
			if len(f.HL7.SendingApplications) == 0 {
				return nil, fmt.Errorf("%s: hl7.sending_applications is empty", where)
			}
			for _, app := range f.HL7.SendingApplications {
				if other, dup := apps[app]; dup {
					return nil, fmt.Errorf("%s: sending application %s is routed to %s already", where, app, other)
				}
				apps[app] = f.ID
			}
			for typ, m := range f.HL7.Messages {
				if m.Shape == "" {
					return nil, fmt.Errorf("%s: hl7.messages[%s] has no shape", where, typ)
				}
			}
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

// HL7Flow returns the flow that HL7 messages from sending application
// app (MSH-3-1) belong to.
func (inv *Inventory) HL7Flow(app string) (*Flow, bool) {
	for i := range inv.Flows {
		if h := inv.Flows[i].HL7; h != nil {
			for _, a := range h.SendingApplications {
				if a == app {
					return &inv.Flows[i], true
				}
			}
		}
	}
	return nil, false
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

// HL7IDs are the ids of the flows with hl7 settings, in file order: each
// has its own subjects and consumer (streams.Options.HL7Flows).
func (inv *Inventory) HL7IDs() []string {
	var ids []string
	for _, f := range inv.Flows {
		if f.HL7 != nil {
			ids = append(ids, f.ID)
		}
	}
	return ids
}

// BatchIDs are the ids of the flows that take batch files (intake drops or
// SFTP directories), in file order: each has its own transform consumer on
// batch.in.<flow> (streams.Options.BatchFlows), held while it is staged or paused.
func (inv *Inventory) BatchIDs() []string {
	var ids []string
	for _, f := range inv.Flows {
		if len(f.Intake.Drops) > 0 || len(f.Intake.SFTP) > 0 {
			ids = append(ids, f.ID)
		}
	}
	return ids
}

// FHIRFlows are the flows with intake.fhir and their resource types, in
// file order: each has its own transform consumer on fhir.in.<type>
// (streams.Options.FHIRFlows), held while it is staged or paused.
func (inv *Inventory) FHIRFlows() []streams.FHIRFlow {
	var out []streams.FHIRFlow
	for _, f := range inv.Flows {
		if len(f.Intake.FHIR) == 0 {
			continue
		}
		ff := streams.FHIRFlow{ID: f.ID}
		for _, x := range f.Intake.FHIR {
			ff.Types = append(ff.Types, x.Type)
		}
		out = append(out, ff)
	}
	return out
}

// IDs are every flow's id, in file order: each has its own loader
// consumer (streams.Options.LoadFlows).
func (inv *Inventory) IDs() []string {
	var ids []string
	for _, f := range inv.Flows {
		ids = append(ids, f.ID)
	}
	return ids
}

// Topology returns o with its per-flow lists filled from inv: the one
// place every service's per-flow topology (consumers, grants, filters)
// comes from flows.yaml — sinew up, `sinew streams ensure --flows` and a
// service run on its own (bus.Main) all call it.
func (inv *Inventory) Topology(o streams.Options) streams.Options {
	o.HL7Flows, o.BatchFlows, o.LoadFlows = inv.HL7IDs(), inv.BatchIDs(), inv.IDs()
	o.FHIRFlows = inv.FHIRFlows()
	o.ReconcileFlows = nil
	for _, f := range inv.ByReconcile(ReconcileGLBatch) {
		o.ReconcileFlows = append(o.ReconcileFlows, f.ID)
	}
	return o
}

// SourceCode returns the Fusion SourceCode flows.yaml declares for flow.
func (inv *Inventory) SourceCode(flow string) (string, bool) {
	f, ok := inv.Get(flow)
	if !ok || f.FusionSource == "" {
		return "", false
	}
	return f.FusionSource, true
}

// ByReconcile returns the flows reconciled the kind way, in file order.
func (inv *Inventory) ByReconcile(kind string) []*Flow {
	var out []*Flow
	for i := range inv.Flows {
		if inv.Flows[i].Reconcile.Kind == kind {
			out = append(out, &inv.Flows[i])
		}
	}
	return out
}

// Onhand returns the flow whose stock counts are compared with Fusion's on-hand.
func (inv *Inventory) Onhand() (*Flow, bool) {
	for i := range inv.Flows {
		if inv.Flows[i].Reconcile.Onhand {
			return &inv.Flows[i], true
		}
	}
	return nil, false
}

// GLFlow returns the batch GL flow: the one with gl settings.
func (inv *Inventory) GLFlow() (*Flow, bool) {
	for i := range inv.Flows {
		if inv.Flows[i].GL != nil {
			return &inv.Flows[i], true
		}
	}
	return nil, false
}

// Drops maps each drop folder to its flow; SFTPDirs each SFTP directory.
func (inv *Inventory) Drops() map[string]string {
	m := map[string]string{}
	for _, f := range inv.Flows {
		for _, d := range f.Intake.Drops {
			m[d] = f.ID
		}
	}
	return m
}

// SFTPDirs maps each SFTP directory to its flow.
func (inv *Inventory) SFTPDirs() map[string]string {
	m := map[string]string{}
	for _, f := range inv.Flows {
		for _, d := range f.Intake.SFTP {
			m[d] = f.ID
		}
	}
	return m
}
