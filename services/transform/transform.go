// Package transform maps ingested events to canonical commands, one mapper
// per flow (flows/<flow>/, looked up by id in registry), and
// publishes them on FUSION_CMD. It runs the batch flows: a manifest from
// BATCH_IN goes to its flow's batch mapping (resolute-gl's Resolute files
// and Clarity extracts become FBDI files and journal-batch commands). And
// it runs the real-time HL7 flows of flows.yaml (willow-inventory,
// optime-materials, beaker-inventory; hl7.go): an HL7_IN message, routed by sending
// application, becomes inventory transaction, item or supplier commands,
// mapped with the crosswalks in KV. Beaker's stock-count files need no
// mapping (the reconciler reads them). FHIR_IN (fhir.go): each FHIR flow's
// resources go to its registry entry's NewFHIR handler, and resources
// ingest could not read are dead-lettered with their bytes. EPIC_CMD flows
// are not built yet.
package transform

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/transform/registry"
	"github.com/sinewhq/sinew/services/transform/registry/all"
)

// transformReadAttempts is how many times transform's Fusion client tries
// a read on a temporary answer unless its config says otherwise.
const transformReadAttempts = 5

// Config is the transform service's configuration.
type Config struct {
	bus.ServiceConfig `yaml:",inline"`
	// Workers handle deliveries concurrently per consumer.
	Workers int `yaml:"workers"`
	// FlowsFile is the integration inventory (flows.yaml).
	FlowsFile string `yaml:"flows_file"`
	// Crosswalk is a COA crosswalk CSV loaded into KV at start when KV holds
	// none yet (a first run); after that the current version in KV is used
	// (`sinew crosswalk load`), read per batch.
	Crosswalk string `yaml:"crosswalk"`
	// Chart is Fusion's valid account combinations (CSV); mapped lines are
	// checked against it. Empty: not checked.
	Chart string `yaml:"chart"`
	// TempDir holds batch files while they are mapped; the system default when empty.
	TempDir string `yaml:"temp_dir"`
	// HL7Workers map HL7_IN messages concurrently.
	HL7Workers int `yaml:"hl7_workers"`
	// ItemCrosswalk, DepartmentCrosswalk and UOMCrosswalk are code-table
	// CSVs loaded into KV at start when KV holds no version of their kind
	// yet; after that `sinew crosswalk load --kind K` replaces them. Empty:
	// not bootstrapped.
	ItemCrosswalk       string `yaml:"item_crosswalk"`
	DepartmentCrosswalk string `yaml:"department_crosswalk"`
	UOMCrosswalk        string `yaml:"uom_crosswalk"`
	// Fusion is where flows that poll Fusion (worker-sync's HCM feeds)
	// read it; an empty base_url leaves them off.
	Fusion fusion.Config `yaml:"fusion"`
	// PollInterval is how often those flows read Fusion.
	PollInterval time.Duration `yaml:"poll_interval"`
	// EpicProviders is the URL of Epic's provider master (a JSON list of
	// providers, epicsim's /sim/providers) nightly-catchup's worker master
	// refresh reads; empty leaves the refresh off.
	EpicProviders string `yaml:"epic_providers_url"`
}

// FlowsPath names the flows.yaml the runtime fills the per-flow topology from.
func (c *Config) FlowsPath() string { return c.FlowsFile }

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{ServiceConfig: bus.DefaultServiceConfig(), Workers: 4, FlowsFile: "flows.yaml", Crosswalk: "deploy/demo/coa.csv", Chart: "deploy/demo/chart.csv",
		HL7Workers: 16, ItemCrosswalk: "deploy/demo/items.csv", DepartmentCrosswalk: "deploy/demo/departments.csv"}
	c.HTTPAddr = "127.0.0.1:9102"
	return c
}

// Service is the running transform service.
type Service struct {
	cfg Config
	bus *bus.Bus
	reg *registry.Registry
	// batches are the batch flows' mappings by flow id (registry.Entry.NewBatch).
	batches map[string]registry.Batch
	// pollers are the flows that read Fusion themselves (registry.Entry.NewPoller).
	pollers []registry.Poller
	// unbuilt are the batch flows whose mapping could not be built: their
	// manifests wait in BATCH_IN.
	unbuilt []string
	xw      *crosswalk.Store
	hl7s    *hl7Side // nil when no HL7 flow is configured here
	// fhirs are the FHIR flows' handlers by flow id (registry.Entry.NewFHIR).
	fhirs map[string]registry.FHIR
	// onhand are the flows whose batch files are stock counts (flows.yaml
	// reconcile.onhand): acknowledged for the reconciler, not mapped.
	onhand []string
	ready  bus.Started
}

// New returns the service on bus b, its flows looked up in the registry
// of flow packages (flows/all) and held to flows.yaml. A flow whose
// settings cannot be read is left off with a warning, so the other flows
// still run.
func New(cfg Config, b *bus.Bus) (*Service, error) {
	reg, err := all.Registry()
	if err != nil {
		return nil, fmt.Errorf("transform: %w", err)
	}
	s := &Service{cfg: cfg, bus: b, reg: reg, batches: map[string]registry.Batch{}, fhirs: map[string]registry.FHIR{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := b.JetStream().KeyValue(ctx, streams.KVCrosswalk)
	if err != nil {
		return nil, fmt.Errorf("transform: bucket %s: %w", streams.KVCrosswalk, err)
	}
	s.xw = crosswalk.NewStore(kv)
	inv, err := flows.Load(cfg.FlowsFile)
	if err != nil {
		b.Logger().Warn().Err(err).Msg("flows not configured: batch manifests and HL7 messages wait")
		return s, nil
	}
	if err := reg.Check(inv); err != nil {
		return nil, fmt.Errorf("transform: %s and the flow packages disagree: %w", cfg.FlowsFile, err)
	}
	env := registry.Env{JS: b.JetStream(), Publisher: b, Crosswalks: s.xw, TempDir: cfg.TempDir, Crosswalk: cfg.Crosswalk, Chart: cfg.Chart, Inventory: inv}
	for i := range inv.Flows {
		f := &inv.Flows[i]
		if f.Reconcile.Onhand {
			s.onhand = append(s.onhand, f.ID)
		}
		e, ok := reg.Lookup(f.ID)
		if !ok || e.NewBatch == nil {
			continue
		}
		bt, err := e.NewBatch(ctx, f, env)
		if err != nil {
			b.Logger().Warn().Err(err).Str("flow", f.ID).Msg("batch flow not configured: its manifests wait in BATCH_IN")
			s.unbuilt = append(s.unbuilt, f.ID)
			continue
		}
		s.batches[f.ID] = bt
	}
	if cfg.Fusion.BaseURL != "" {
		cfg.Fusion.Metrics, cfg.Fusion.Tracer = b.Metrics(), b.TracerProvider()
		if cfg.Fusion.ReadAttempts == 0 {
			// Transform reads Fusion in scheduled runs (nightly catch-up,
			// worker refresh) that have no redelivery: a 503 on one page
			// would fail the night's run.
			cfg.Fusion.ReadAttempts = transformReadAttempts
		}
		fc, err := fusion.New(cfg.Fusion)
		if err != nil {
			return nil, fmt.Errorf("transform: %w", err)
		}
		env.Fusion, env.PollInterval, env.HashKey = fc, cfg.PollInterval, b.PatientRef("sinew.hash-key", "flow-values") // keyed by the audit secret
		env.Log = func(err error, msg string) { b.Logger().Warn().Err(err).Msg(msg) }
		env.EpicProviders = cfg.EpicProviders
		for i := range inv.Flows {
			f := &inv.Flows[i]
			e, ok := reg.Lookup(f.ID)
			if !ok || e.NewPoller == nil {
				continue
			}
			p, err := e.NewPoller(ctx, f, env)
			if err != nil {
				b.Logger().Warn().Err(err).Str("flow", f.ID).Msg("flow poller not configured: the flow does not read Fusion")
				continue
			}
			s.pollers = append(s.pollers, p)
		}
	}
	s.newFHIR(ctx, inv, env)
	if h, err := newHL7Side(ctx, cfg, s.xw, reg); err != nil {
		b.Logger().Warn().Err(err).Msg("HL7 flows not configured: HL7_IN messages wait")
	} else {
		s.hl7s = h
	}
	return s, nil
}

// Run consumes until ctx ends: batch manifests (BATCH_IN), HL7
// messages (HL7_IN) and FHIR resources (FHIR_IN), each on its own consumer.
func (s *Service) Run(ctx context.Context) error {
	var loops []bus.Loop
	topo := streams.New(s.cfg.Topology)
	// The per-flow lists come from flows.yaml (sinew up, or the runtime
	// for a transform on its own: bus.ServiceConfig.WithFlows); a per-flow
	// consumer the server does not have (a topology ensured without
	// flows) is skipped with a warning, its input waiting.
	provisioned := func(c streams.Consumer) bool {
		if _, err := s.bus.JetStream().Consumer(ctx, c.Stream, c.Name); err != nil {
			s.bus.Logger().Warn().Err(err).Str("consumer", c.Name).Msg("per-flow consumer not provisioned (sinew streams ensure --flows): its input waits")
			return false
		}
		return true
	}
	batchLoop := func(c streams.Consumer) bus.Loop {
		return func(ctx context.Context, ready func()) error {
			return s.bus.Consume(ctx, c, bus.Proto(s.batch), bus.ConsumeOptions{
				Workers: 1, // one batch at a time: files are large, order is the drop order
				Buffer:  1, // queued batches would wait out their AckWait behind a long one
				Ready:   ready,
			})
		}
	}
	// Each batch flow's own consumer (filter batch.in.<flow>): paused while
	// the flow is staged or paused (pkg/flowstate), so its manifests wait
	// in BATCH_IN. The shared consumer is there only without per-flow ones.
	perFlow := 0
	for _, id := range s.cfg.Topology.BatchFlows {
		if slices.Contains(s.unbuilt, id) {
			continue // not configured here (warned in New): its manifests wait
		}
		c, ok := topo.Consumer(streams.TransformBatchFlow(id))
		if !ok {
			return fmt.Errorf("transform: no batch consumer for flow %s in the topology", id)
		}
		if provisioned(c) {
			loops = append(loops, batchLoop(c))
			perFlow++
		}
	}
	if len(s.batches) > 0 {
		if c, ok := topo.Consumer(streams.TransformBatch); ok {
			loops = append(loops, batchLoop(c))
		} else if perFlow == 0 {
			// A server ensured without flows has only the shared consumer.
			flowless := s.cfg.Topology
			flowless.HL7Flows, flowless.BatchFlows = nil, nil
			if c, ok := streams.New(flowless).Consumer(streams.TransformBatch); ok {
				if _, err := s.bus.JetStream().Consumer(ctx, c.Stream, c.Name); err == nil {
					loops = append(loops, batchLoop(c))
				}
			}
		}
	}
	if s.hl7s != nil {
		c, ok := topo.Consumer(streams.TransformHL7)
		if !ok {
			return errors.New("transform: no hl7 consumer in the topology")
		}
		if err := s.hl7s.follow(ctx); err != nil {
			return fmt.Errorf("transform: follow crosswalks: %w", err)
		}
		// Every HL7 consumer has the same route: HL7_IN receipts, decoded once.
		hl7 := bus.Routes(bus.On("hl7.in.>", s.hl7))
		loops = append(loops, func(ctx context.Context, ready func()) error {
			return s.bus.Consume(ctx, c, hl7, bus.ConsumeOptions{Workers: max(s.cfg.HL7Workers, 1), Ready: ready})
		})
		// Each HL7 flow's own consumer: paused server-side while the flow
		// is staged or paused (pkg/flowstate), so its input waits in HL7_IN.
		for _, id := range s.cfg.Topology.HL7Flows {
			fc, ok := topo.Consumer(streams.TransformHL7Flow(id))
			if !ok {
				return fmt.Errorf("transform: no hl7 consumer for flow %s in the topology", id)
			}
			if !provisioned(fc) {
				continue
			}
			loops = append(loops, func(ctx context.Context, ready func()) error {
				return s.bus.Consume(ctx, fc, hl7, bus.ConsumeOptions{Workers: max(s.cfg.HL7Workers, 1), Ready: ready})
			})
		}
	}
	for _, p := range s.pollers {
		loops = append(loops, func(ctx context.Context, ready func()) error {
			ready()
			return p.Run(ctx)
		})
	}
	loops = append(loops, s.fhirLoops(ctx, topo, provisioned)...)
	return bus.RunLoops(ctx, &s.ready, loops...)
}

// Ready is nil once consuming.
func (s *Service) Ready() error { return s.ready.Ready(s.bus, "transform") }

// batch hands one manifest to its flow's batch mapping.
func (s *Service) batch(ctx context.Context, d *bus.Delivery, m *sinewv1.BatchManifest) error {
	f := m.GetEnvelope().GetFlow()
	bt, ok := s.batches[f]
	if !ok {
		// A stock-count flow's files (reconcile.onhand) carry nothing to
		// post: the reconciler reads them from the object store itself.
		if slices.Contains(s.onhand, f) {
			d.AuditDetail = fmt.Sprintf("file %s (sha256 %.12s): nothing to map; stock count, compared with Fusion's on-hand by the reconciler", m.GetFileName(), m.GetSha256())
			return nil
		}
		return bus.Permanent(reason.Wrap(reason.TransformNoMapper, fmt.Errorf("no mapper for flow %q", f)))
	}
	return bt.Batch(ctx, d, m)
}
