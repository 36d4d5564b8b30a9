// Package reconciler reconciles every flow at three tiers (control totals,
// balances, lines) and publishes the rows on RECON. It reconciles
// each flow looked up by id in the flow registry (services/transform/registry)
// as its flows.yaml reconcile entry says. A gl-batch flow is reconciled
// batch by batch: when the loader publishes a batch's outcome, the
// FBDI lines Sinew sent are matched against what Fusion shows (journal
// batches, Journal Import's rejections), waiting out Fusion's read lag; a
// variance beyond the flow's tolerance is published as a triage event.
// Inventory flows are reconciled per day (inventory.go), and Beaker's
// nightly stock counts against Fusion's on-hand quantities (onhand.go).
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/batchstate"
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/transform/registry"
	"github.com/sinewhq/sinew/services/transform/registry/all"
)

// TriageSubject carries a batch summary whose verdict needs a person.
func TriageSubject(flow string) string { return streams.ReconSubject(flow, "triage") }

// Config is the reconciler service's configuration.
type Config struct {
	bus.ServiceConfig `yaml:",inline"`
	// Fusion is where the read-back comes from (see the loader's).
	Fusion fusion.Config `yaml:"fusion"`
	// FlowsFile is the integration inventory (tolerances per flow).
	FlowsFile string `yaml:"flows_file"`
	// ReadLag is how long Fusion may take to show what it imported; until
	// then what is not visible is pending, after it missing.
	ReadLag time.Duration `yaml:"read_lag"`
	// PollInterval is the wait between read-backs during the read lag.
	PollInterval time.Duration `yaml:"poll_interval"`
	Workers      int           `yaml:"workers"`
	// InventoryEvery is how often today's and yesterday's inventory flows
	// are reconciled against Fusion (0: never).
	InventoryEvery time.Duration `yaml:"inventory_every"`
	// InventoryGrace is how far behind the run's start an inventory
	// reconciliation cuts: commands stored during the last InventoryGrace
	// (still being posted, results not yet published) are the next run's.
	InventoryGrace time.Duration `yaml:"inventory_grace"`
	// OnhandEvery is how often the latest Beaker stock count is compared
	// with Fusion's on-hand quantities (0: never); a new count file is
	// compared as soon as its manifest is on BATCH_IN.
	OnhandEvery time.Duration `yaml:"onhand_every"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{ServiceConfig: bus.DefaultServiceConfig(), Fusion: fusion.Config{BaseURL: "http://127.0.0.1:8090", Username: "sinew", Password: "sinew", Timeout: time.Minute,
		PageSize: 500}, // Fusion's largest page: a million-line read-back is 2,000 requests
		FlowsFile: "flows.yaml", ReadLag: 2 * time.Minute, PollInterval: 2 * time.Second, Workers: 2,
		InventoryEvery: 5 * time.Minute, InventoryGrace: 30 * time.Second, OnhandEvery: time.Hour}
	c.HTTPAddr = "127.0.0.1:9104"
	return c
}

// Service is the running reconciler service.
type Service struct {
	cfg    Config
	bus    *bus.Bus
	fusion *fusion.Client
	states *batchstate.Store
	inv    *flows.Inventory
	xw     *crosswalk.Store
	ready  bus.Started
	// counts caches the count files read, by SHA-256.
	countsMu sync.Mutex
	counts   map[string]*countFile
	// maxDeliver is the results consumer's: the last delivery's failure
	// dead-letters the result.
	maxDeliver int
	// flows are flows.yaml's flows joined to their code, by id.
	flows *registry.Flows
	// onhandFlow is the flow whose stock counts are compared with Fusion's
	// on-hand (reconcile.onhand), "" if none.
	onhandFlow string
	metrics    *metrics // nil in unit tests
}

// New returns the service on bus b.
func New(cfg Config, b *bus.Bus) (*Service, error) {
	cfg.Fusion.Metrics, cfg.Fusion.Tracer = b.Metrics(), b.TracerProvider()
	if cfg.Fusion.ReadAttempts == 0 {
		// The reconciler only reads Fusion, page after page: a 503 on one
		// page is tried again there rather than costing one of the
		// message's three deliveries.
		cfg.Fusion.ReadAttempts = 3
	}
	fc, err := fusion.New(cfg.Fusion)
	if err != nil {
		return nil, fmt.Errorf("reconciler: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := batchstate.Open(ctx, b.JetStream())
	if err != nil {
		return nil, fmt.Errorf("reconciler: %w", err)
	}
	inv, err := flows.Load(cfg.FlowsFile)
	if err != nil {
		return nil, fmt.Errorf("reconciler: %w", err)
	}
	kv, err := b.JetStream().KeyValue(ctx, streams.KVCrosswalk)
	if err != nil {
		return nil, fmt.Errorf("reconciler: bucket %s: %w", streams.KVCrosswalk, err)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	svc := &Service{cfg: cfg, bus: b, fusion: fc, states: st, inv: inv, xw: crosswalk.NewStore(kv), counts: map[string]*countFile{}}
	reg, err := all.Registry()
	if err == nil {
		svc.flows, err = reg.Resolve(inv)
	}
	if err != nil {
		return nil, fmt.Errorf("reconciler: %s and the flow packages disagree: %w", cfg.FlowsFile, err)
	}
	if f, ok := inv.Onhand(); ok {
		svc.onhandFlow = f.ID
	}
	if svc.metrics, err = newMetrics(b.Metrics()); err != nil {
		return nil, fmt.Errorf("reconciler: %w", err)
	}
	return svc, nil
}

// Run consumes RESULTS until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	c, ok := streams.New(s.cfg.Topology).Consumer(streams.ReconResults)
	if !ok {
		return errors.New("reconciler: no results consumer in the topology")
	}
	s.maxDeliver = c.MaxDeliver
	go s.runInventory(ctx)
	go s.runOnhand(ctx)
	return s.bus.Consume(ctx, c, s.route, bus.ConsumeOptions{
		Workers:        max(1, s.cfg.Workers),
		MaxHandlerTime: s.cfg.ReadLag + 10*time.Minute,
		Ready:          s.ready.Mark,
	})
}

// Ready is nil once consuming.
func (s *Service) Ready() error { return s.ready.Ready(s.bus, "reconciler") }

// route reconciles a load result as its flow's reconciliation says: a
// gl-batch flow's batch by batch; the others' results are read by their
// own runs (inventory per day, runInventory).
func (s *Service) route(ctx context.Context, d *bus.Delivery) error {
	id, _, _ := strings.Cut(strings.TrimPrefix(d.Subject, "result."), ".")
	f, ok := s.flows.Get(id)
	if !ok || f.Reconcile.Kind != flows.ReconcileGLBatch {
		return nil
	}
	return bus.Proto(func(ctx context.Context, d *bus.Delivery, r *sinewv1.LoadResult) error {
		return s.reconcileGL(ctx, d, f.Flow, r)
	})(ctx, d)
}

// reconcileGL reconciles one journal batch of flow. Fusion is read again until
// every imported group is visible or the read lag is over; the rows of the
// final read are published, the summary last.
func (s *Service) reconcileGL(ctx context.Context, d *bus.Delivery, flow *flows.Flow, r *sinewv1.LoadResult) error {
	err := s.reconcileGLBatch(ctx, d, flow, r)
	if batchID := r.GetEnvelope().GetSourceId(); err != nil && batchID != "" && ctx.Err() == nil {
		// Recorded so that a batch whose reconciliation keeps failing (or
		// is dead-lettered) fails `sinew recon report` instead of sitting
		// at its last step unnoticed.
		final := bus.IsPermanent(err) || s.maxDeliver > 0 && d.NumDelivered >= uint64(s.maxDeliver)
		if rerr := s.states.RecordReconFailure(ctx, flow.ID, batchID, err, final); rerr != nil {
			s.bus.Logger().Warn().Err(rerr).Str("batch", batchID).Msg("recording a failed reconciliation")
		}
	}
	return err
}

func (s *Service) reconcileGLBatch(ctx context.Context, d *bus.Delivery, flow *flows.Flow, r *sinewv1.LoadResult) error {
	env := r.GetEnvelope()
	bk := sinewv1.KeyMap(env.GetBusinessKeys())
	batchID, objectKey := env.GetSourceId(), bk["object_key"]
	if batchID == "" || objectKey == "" {
		return bus.Permanent(reason.Wrap(reason.ReconInputInvalid, errors.New("load result without batch id or FBDI object key")))
	}
	tol, err := recon.ParseTolerance(flow.Tolerances)
	if err != nil {
		return bus.Permanent(reason.Wrap(reason.ReconInputInvalid, err))
	}
	store, err := s.bus.JetStream().ObjectStore(ctx, streams.ObjFBDI)
	if err != nil {
		return err
	}
	// The zip goes to a temporary file, not memory: a million-line batch's
	// file is tens of megabytes.
	zip, err := os.CreateTemp("", "recon-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(zip.Name())
	defer zip.Close()
	if err := store.GetFile(ctx, objectKey, zip.Name()); err != nil {
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return bus.Permanent(reason.Wrap(reason.ReconInputInvalid, fmt.Errorf("FBDI %s: %w", objectKey, err)))
		}
		return fmt.Errorf("FBDI %s: %w", objectKey, err)
	}
	zipInfo, err := zip.Stat()
	if err != nil {
		return err
	}
	in := &recon.Input{Batch: batchID, Tolerance: tol}
	if n, err := strconv.ParseInt(bk["lines"], 10, 64); err == nil {
		dr, err1 := money.Parse(bk["debit"])
		cr, err2 := money.Parse(bk["credit"])
		if err1 == nil && err2 == nil {
			in.Stated = recon.ControlTotals{Lines: n, DR: dr, CR: cr}
			in.Hops = append(in.Hops, recon.HopTotals{Hop: recon.HopTransformed, ControlTotals: in.Stated})
		}
	}
	rejectedGroups := map[int64]bool{}
	for _, e := range r.GetErrors() {
		gid, _ := strconv.ParseInt(strings.TrimPrefix(e.GetField(), "group "), 10, 64)
		if e.GetLineKey() == "" {
			continue // a group that failed as a whole: its lines are missing, a variance
		}
		in.Rejected = append(in.Rejected, recon.RejectedLine{GroupID: gid, Reference21: e.GetLineKey(), Code: e.GetCode(), Text: e.GetMessage()})
		rejectedGroups[gid] = true
	}
	for gid := range rejectedGroups {
		in.RejectedGroups = append(in.RejectedGroups, gid)
	}
	expectVisible := r.GetOutcome() != "failed" // a failed batch is a variance whatever else shows
	deadline := time.Now().Add(s.cfg.ReadLag)
	var res *recon.Result
	for {
		// Fusion's pages and the zip's lines stream through the engine,
		// which holds them within its memory budget (recon.Reconciler).
		rc := recon.NewReconciler(in)
		if err := s.readBack(ctx, rc, bk["je_source"], batchID, bk["ledger"]); err != nil {
			rc.Close()
			return err
		}
		in.Final = !expectVisible || time.Now().After(deadline)
		var addErr error
		add := func(l *recon.SourceLine) error {
			addErr = rc.Add(l)
			return addErr
		}
		if err := recon.ReadGlInterface(zip, zipInfo.Size(), add); err != nil {
			rc.Close()
			if addErr != nil { // spilling lines to disk: worth another delivery
				return fmt.Errorf("reconciling %s: %w", objectKey, addErr)
			}
			return bus.Permanent(reason.Wrap(reason.ReconInputInvalid, fmt.Errorf("reading %s: %w", objectKey, err)))
		}
		res, err = rc.Finish()
		if err != nil {
			return fmt.Errorf("reconciling %s: %w", objectKey, err)
		}
		if res.Summary.Verdict != recon.VerdictPending || in.Final {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.cfg.PollInterval):
		}
	}
	if err := s.publish(ctx, flow.ID, res); err != nil {
		return err
	}
	sum, now := res.Summary, time.Now().UTC()
	if _, err := s.states.Update(ctx, flow.ID, batchID, func(st *batchstate.State) error {
		st.Verdict, st.Recon = sum.Verdict, nil
		st.Advance(batchstate.Reconciled, sum.Verdict+": "+sum.Explain(), now)
		return nil
	}); err != nil {
		return err
	}
	d.AuditDetail = fmt.Sprintf("batch %s reconciled: %s (%s)", batchID, sum.Verdict, sum.Explain())
	return nil
}

// readBack posts to rc what Fusion shows of the batch, page by page
// (fusion.Client.JournalLines): a batch of a million lines is never held
// as one answer, nor as one slice. The strings lines share (ledger,
// period, currency, account) are kept once.
func (s *Service) readBack(ctx context.Context, rc *recon.Reconciler, source, batchID, ledger string) error {
	intern := map[string]string{}
	one := func(v string) string {
		if w, ok := intern[v]; ok {
			return w
		}
		intern[v] = v
		return v
	}
	var acct []byte
	err := s.fusion.JournalLines(ctx, fusion.JournalBatchQuery{Source: source, BatchName: batchID}, func(b *fusion.JournalBatch, h *fusion.JournalHeader, l *fusion.JournalLine) error {
		period := h.Period
		if period == "" {
			period = b.Period
		}
		acct = acct[:0]
		for i, seg := range l.Segments {
			if i > 0 {
				acct = append(acct, '-')
			}
			acct = append(acct, seg...)
		}
		a, ok := intern[string(acct)]
		if !ok {
			a = string(acct)
			intern[a] = a
		}
		p := recon.PostedLine{Reference21: l.Reference21, GroupID: b.GroupID, JeBatchID: b.ID,
			Account: a, DR: l.DR, CR: l.CR, Ledger: ledger, Period: one(period), Currency: one(h.Currency)}
		return rc.Post(&p)
	})
	if err != nil {
		var fe *fusion.Error
		if errors.As(err, &fe) && !fe.Temporary() {
			return bus.Permanent(reason.Wrap(reason.ReconInputInvalid, fmt.Errorf("journalBatches: %w", err)))
		}
		return fmt.Errorf("journalBatches: %w", err)
	}
	return nil
}

// FlowsPath names the flows.yaml the runtime fills the per-flow topology from.
func (c *Config) FlowsPath() string { return c.FlowsFile }
