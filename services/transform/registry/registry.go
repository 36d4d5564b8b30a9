// Package registry is the one table of flows, keyed by flow id, in the
// manner of Benthos's RegisterProcessor: each flow package offers an
// Entry, registry/all lists them (generated from the flows/ folders), and
// transform, loader and reconciler each look a flow up here by the id
// flows.yaml declares (Resolve: the declared flow and its code as one
// unit). Check holds the table and flows.yaml to each other at start.
// There is no global: a Registry is a value built once and passed in.
package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
)

// Publisher stores a message on JetStream under a message id (bus.Bus).
type Publisher interface {
	Publish(ctx context.Context, subject, msgID string, msg proto.Message) (*jetstream.PubAck, error)
}

// Env is what a flow's batch side is built with.
type Env struct {
	JS         jetstream.JetStream
	Publisher  Publisher
	Crosswalks *crosswalk.Store
	// TempDir holds batch files while they are mapped; the system default when empty.
	TempDir string
	// Crosswalk is a COA crosswalk CSV loaded into KV when KV holds none yet.
	Crosswalk string
	// Chart is Fusion's valid account combinations (CSV); empty: not checked.
	Chart string
	// Fusion reads Fusion for flows that poll it (nil: not configured).
	Fusion *fusion.Client
	// PollInterval is how often a poller reads its source.
	PollInterval time.Duration
	// HashKey keys the hashes a flow keeps of values it wrote.
	HashKey string
	// Log reports a poller's failures (no values, only what failed).
	Log func(err error, msg string)
	// Inventory is the whole flows.yaml (a scheduled flow that works on
	// other flows finds them by their settings).
	Inventory *flows.Inventory
	// EpicProviders is the URL of Epic's provider master (nightly-catchup's
	// worker master refresh); empty: not configured.
	EpicProviders string
}

// Poller is a flow that reads an outside system itself (Fusion's feeds)
// rather than waiting for input on a stream; transform runs it while
// the service runs, and it checks its flow's state on each read.
type Poller interface {
	Run(ctx context.Context) error
}

// Batch maps one batch manifest of its flow. It is called for one
// manifest at a time; d lives until it returns.
type Batch interface {
	Batch(ctx context.Context, d *bus.Delivery, m *sinewv1.BatchManifest) error
}

// Op is one of the loader's shared Fusion operations: how the commands
// of one kind (fusion.cmd.<flow>.<kind>) are posted. Operations several
// flows share live in the loader; a flow says which of them its commands use.
type Op string

// The loader's operations.
const (
	// OpJournalImport uploads a journal batch's FBDI file once and imports
	// each GROUP_ID once (services/loader/gl.go, with the flow's gl settings).
	OpJournalImport Op = "journal-import"
	// OpInventory, OpItem and OpSupplier post inventory transactions,
	// items and suppliers over REST (services/loader/scm.go).
	OpInventory Op = "inventory-transaction"
	OpItem      Op = "item"
	OpSupplier  Op = "supplier"
	// OpWorker writes an Epic provider change to a Fusion HCM worker by
	// the flow's conflict rules (services/loader/worker.go).
	OpWorker Op = "worker"
)

// HL7Fusion is the command kinds of the shared HL7 shapes (hl7flow) and
// the operations that post them: the Fusion side of every HL7 flow that
// registers none of its own.
func HL7Fusion() map[string]Op {
	return map[string]Op{hl7flow.OpInventory: OpInventory, hl7flow.OpItem: OpItem, hl7flow.OpSupplier: OpSupplier}
}

// Entry is one flow's code.
type Entry struct {
	ID string
	// Fusion maps each kind of command the flow publishes
	// (fusion.cmd.<flow>.<kind>) to the loader operation that posts it;
	// nil: HL7Fusion for a flow with hl7 settings, nothing otherwise.
	Fusion map[string]Op
	// NewBatch builds the flow's batch mapping from its flows.yaml entry;
	// nil when the flow maps no batch files.
	NewBatch func(ctx context.Context, f *flows.Flow, env Env) (Batch, error)
	// NewHL7 builds the flow's HL7 mapper; nil: the shared shapes
	// (hl7flow.New) from flows.yaml alone.
	NewHL7 func(f *flows.Flow) (*hl7flow.Mapper, error)
	// NewPoller builds the flow's poller of an outside system; nil for
	// flows fed by a stream.
	NewPoller func(ctx context.Context, f *flows.Flow, env Env) (Poller, error)
	// NewFHIR builds the flow's handling of the FHIR resources its
	// intake.fhir declares (fhir.in.<type>); nil when it reads none. A
	// flow reading FHIR without it has its resources dead-lettered as
	// having no mapper once it is active.
	NewFHIR func(ctx context.Context, f *flows.Flow, env Env) (FHIR, error)
	// Check is the flow's own reconciliation (a cross-check of two
	// sources rather than one of the reconciler's engines): the reconciler
	// calls it for the active flow once a run, per day, and publishes the
	// result's rows on RECON (and a triage event when it fails); nil: none.
	Check func(ctx context.Context, f *flows.Flow, env CheckEnv) (*recon.Result, error)
	// Current reads the records Fusion holds now that Epic should hold
	// too (reconcile.kind epic-ack), each with the version Sinew sends it
	// as; nil for flows not reconciled so.
	Current func(ctx context.Context, f *flows.Flow, fc *fusion.Client) ([]Record, error)
}

// StateKey is the business key a Fusion-to-Epic command may carry naming
// the record's state it sends (a digest of the attributes Fusion owns),
// for a flow whose idempotency keys do not (Record.Version).
const StateKey = "state"

// Record is one Fusion record of a Fusion-to-Epic flow as the reconciler
// compares it with what Epic acknowledged.
type Record struct {
	// Key is the record's business key (the first business key of its
	// command: supplier, payment or person number).
	Key string
	// Version is the state Epic must have acknowledged: the StateKey
	// business key of the command carrying it when the flow sets one,
	// else that command's idempotency key ("" when any will do).
	Version string
	// Updated is Fusion's LastUpdateDate: a recent record may not be sent yet.
	Updated time.Time
	// Skip says why the record is not Epic's (an unmatched payment is in
	// triage); "" for a record Epic must hold.
	Skip string
}

// CheckEnv is what a flow's Check reads: the streams, flows.yaml (to find
// the flows it compares with by their settings, not their ids), the day
// (UTC) and the flow's tolerance.
type CheckEnv struct {
	JS        jetstream.JetStream
	Inventory *flows.Inventory
	Day       time.Time
	Tolerance recon.Tolerance
	// Now is the run's moment (zero: time.Now), and Grace how far behind
	// it a check comparing with live traffic cuts: what was sent during
	// the last Grace may still be on its way to Fusion.
	Now   time.Time
	Grace time.Duration
}

// FHIR takes one FHIR resource of its flow (the event carries the
// resource's original bytes); an error is retried, or dead-lettered when
// permanent (bus.Permanent with a reason code).
type FHIR interface {
	Resource(ctx context.Context, d *bus.Delivery, ev *sinewv1.FhirResourceReceived) error
}

// Registry is the table of entries by flow id.
type Registry struct {
	entries map[string]Entry
}

// New returns a registry holding entries; a repeated or empty id is an error.
func New(entries ...Entry) (*Registry, error) {
	r := &Registry{entries: map[string]Entry{}}
	for _, e := range entries {
		if err := r.Register(e); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register adds e.
func (r *Registry) Register(e Entry) error {
	if e.ID == "" {
		return errors.New("registry: entry without a flow id")
	}
	if _, dup := r.entries[e.ID]; dup {
		return fmt.Errorf("registry: flow %s registered twice", e.ID)
	}
	r.entries[e.ID] = e
	return nil
}

// Lookup returns the entry of flow id.
func (r *Registry) Lookup(id string) (Entry, bool) {
	e, ok := r.entries[id]
	return e, ok
}

// IDs returns the registered flow ids, sorted.
func (r *Registry) IDs() []string {
	ids := make([]string, 0, len(r.entries))
	for id := range r.entries {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Flow is a declared flow and its code: the unit a service looks up by id.
type Flow struct {
	*flows.Flow
	// Entry is the flow package's registration; only ID is set for a
	// flow declared in flows.yaml alone.
	Entry Entry
	// Fusion is Entry.Fusion or its default (see Entry.Fusion).
	Fusion map[string]Op
}

// Flows are the units of one inventory, by flow id.
type Flows struct {
	byID  map[string]*Flow
	order []string
}

// Get returns flow id's unit.
func (fs *Flows) Get(id string) (*Flow, bool) {
	if fs == nil {
		return nil, false
	}
	f, ok := fs.byID[id]
	return f, ok
}

// All returns every unit in flows.yaml's order.
func (fs *Flows) All() []*Flow {
	if fs == nil {
		return nil
	}
	out := make([]*Flow, 0, len(fs.order))
	for _, id := range fs.order {
		out = append(out, fs.byID[id])
	}
	return out
}

// Resolve checks inv against the registry and joins each declared flow to
// its entry.
func (r *Registry) Resolve(inv *flows.Inventory) (*Flows, error) {
	if err := r.Check(inv); err != nil {
		return nil, err
	}
	fs := &Flows{byID: map[string]*Flow{}}
	for i := range inv.Flows {
		f := &inv.Flows[i]
		e, ok := r.entries[f.ID]
		if !ok {
			e = Entry{ID: f.ID}
		}
		u := &Flow{Flow: f, Entry: e, Fusion: e.Fusion}
		if u.Fusion == nil && f.HL7 != nil {
			u.Fusion = HL7Fusion()
		}
		fs.byID[f.ID] = u
		fs.order = append(fs.order, f.ID)
	}
	return fs, nil
}

// NeedsCode reports whether a declared flow can only run with a package of
// its own: one that maps batch files (gl settings). HL7 flows on the shared
// shapes and stock-count flows (reconcile.onhand) are declarative.
func NeedsCode(f *flows.Flow) bool { return f.GL != nil && !f.Reconcile.Onhand }

// Check holds the registry and the inventory to each other: every declared
// flow that needs code has an entry able to run it, and every entry is a
// declared flow.
func (r *Registry) Check(inv *flows.Inventory) error {
	var errs []error
	declared := make([]string, 0, len(inv.Flows))
	for i := range inv.Flows {
		f := &inv.Flows[i]
		declared = append(declared, f.ID)
		e, ok := r.entries[f.ID]
		if NeedsCode(f) && (!ok || e.NewBatch == nil) {
			errs = append(errs, fmt.Errorf("flow %s maps batch files but no flow package registers a batch mapping for it", f.ID))
		}
		if f.Reconcile.Kind == flows.ReconcileEpicAck && e.Current == nil {
			errs = append(errs, fmt.Errorf("flow %s is reconciled by Epic's acknowledgements but no flow package reads its current Fusion records", f.ID))
		}
		for kind, op := range e.Fusion {
			if op == OpJournalImport && f.GL == nil {
				errs = append(errs, fmt.Errorf("flow %s posts %s commands by Journal Import but has no gl settings", f.ID, kind))
			}
		}
	}
	for _, id := range r.IDs() {
		if !slices.Contains(declared, id) {
			errs = append(errs, fmt.Errorf("flow package %s is registered but flows.yaml does not declare it", id))
		}
	}
	return errors.Join(errs...)
}
