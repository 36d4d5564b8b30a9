// Package loader posts FUSION_CMD commands to Fusion exactly once and
// publishes what Fusion answered to RESULTS. Each flow is looked up by id
// in the flow registry (services/transform/registry): its command kinds
// name the loader's shared operation that posts them. For a GL flow
// (gl.go, with the flow's gl settings) a journal batch's FBDI zip is uploaded once, each journal's GROUP_ID
// imported once, the ESS jobs followed to the end by polling and by
// callback, and Fusion's verdict per line recorded — resuming at the failed
// step after any crash. For the HL7 inventory flows (scm.go) inventory
// transactions (grouped into Fusion batch requests, batcher.go), items and
// suppliers are posted over REST, each idempotency key claimed in KV first
// and Fusion read before any repost.
// EPIC_CMD commands (worker-sync's provider changes, epic.go) are sent to
// Epic's inbound MLLP interface as MFN^M02, their ACK checked.
package loader

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/batchstate"
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/transform/registry"
	"github.com/sinewhq/sinew/services/transform/registry/all"
)

// Config is the loader service's configuration.
type Config struct {
	bus.ServiceConfig `yaml:",inline"`
	// Fusion is where Fusion (or fusionsim) is and how to sign in.
	Fusion fusion.Config `yaml:"fusion"`
	// Workers handle commands concurrently (a GL batch holds one for its
	// whole import; REST commands take one for a post).
	Workers int `yaml:"workers"`
	// FlowsFile is the integration inventory (flows.yaml).
	FlowsFile string `yaml:"flows_file"`
	// CallbackAddr is where Fusion's ESS completion callbacks are received
	// ("" for none: polling alone). CallbackURL is the address given to
	// Fusion; http://<CallbackAddr>/fusion/callback when empty.
	CallbackAddr string `yaml:"callback_addr"`
	CallbackURL  string `yaml:"callback_url"`
	// PollInterval is the first wait between ESS status polls; it doubles
	// up to MaxPollInterval. A callback cuts a wait short.
	PollInterval    time.Duration `yaml:"poll_interval"`
	MaxPollInterval time.Duration `yaml:"max_poll_interval"`
	// MaxBatchTime bounds one delivery of a batch (upload, jobs, imports);
	// a batch not finished by then is redelivered and resumes.
	MaxBatchTime time.Duration `yaml:"max_batch_time"`
	// SettleTime is how long a submission whose answer was lost (a crash,
	// a timeout) is given to show up in Fusion before it is sent again.
	SettleTime time.Duration `yaml:"settle_time"`
	// BatchSize > 1 sends inventory transactions posted at the same moment
	// in one of Fusion's batch requests (up to BatchSize rows, waiting at
	// most BatchLinger for more); 1 posts each on its own. Each call counts
	// against the pod's limits and costs it far more than 10 ms, so the
	// default linger trades that much latency for fuller, fewer calls.
	BatchSize   int           `yaml:"batch_size"`
	BatchLinger time.Duration `yaml:"batch_linger"`
	// FusionAttempts is how often a batch's steps are tried within one
	// delivery when Fusion fails temporarily.
	FusionAttempts int `yaml:"fusion_attempts"`
	// Epic is Epic's inbound MLLP interface for EPIC_CMD (epic.go).
	Epic EpicConfig `yaml:"epic"`
	// ReadLag is how long posted journals may take to become readable;
	// a group Journal Import reports as absent is looked up that long.
	ReadLag time.Duration `yaml:"read_lag"`
	// CatchUpTrust is how long a done claim is trusted even when a catch-up
	// (schedule.CatchUpHeader) says Fusion lacks its effect: a post that
	// recent may not be readable yet (read lag), and posting it again would
	// double it.
	CatchUpTrust time.Duration `yaml:"catch_up_trust"`
	// ClaimTTL is how long an idempotency claim is kept after its last
	// write (0: for ever). It bounds the server's memory: each live key
	// costs about 250 bytes, 0.9 GB an hour at 1,000 commands a second.
	// A command that may be older than its claim (dated more than ClaimTTL
	// less ClaimSkew ago, or ahead of the clock; a replay or a catch-up) is
	// looked up in Fusion before it is claimed and posted.
	ClaimTTL time.Duration `yaml:"claim_ttl"`
	// ClaimSkew is how much earlier than its business date a command may
	// first have reached the loader (clock skew, a source sending ahead).
	ClaimSkew time.Duration `yaml:"claim_skew"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{ServiceConfig: bus.DefaultServiceConfig(), Fusion: fusion.Config{BaseURL: "http://127.0.0.1:8090", Username: "sinew", Password: "sinew", Timeout: time.Minute},
		FlowsFile: "flows.yaml", CallbackAddr: "127.0.0.1:9113",
		PollInterval: 2 * time.Second, MaxPollInterval: time.Minute, MaxBatchTime: 2 * time.Hour,
		SettleTime: 10 * time.Minute, ReadLag: 2 * time.Minute, CatchUpTrust: 15 * time.Minute, FusionAttempts: 8, Workers: 128,
		ClaimTTL: 2 * time.Hour, ClaimSkew: 10 * time.Minute,
		BatchSize: 50, BatchLinger: 10 * time.Millisecond,
		Epic: EpicConfig{AckTimeout: 30 * time.Second, Facility: "STMARYS", ReceivingApp: "EPICPROV", SupplierApp: "EPICSUP", ResoluteApp: "RESOLUTE", Workers: 4}}
	c.HTTPAddr = "127.0.0.1:9103"
	return c
}

// Service is the running loader service.
type Service struct {
	cfg    Config
	bus    *bus.Bus // consuming, object stores; nil in unit tests of posting
	pub    publisher
	log    *zerolog.Logger
	fusion fusionPoster
	states *batchstate.Store
	claims claimStore
	shards claims   // the KV buckets behind claims, for reshard
	batch  *batcher // nil: one post per transaction
	// flows are flows.yaml's flows joined to their code (registry), by id.
	flows  *registry.Flows
	inv    *flows.Inventory
	routes bus.Handler
	wake   *waker
	epic   *epicSender
	files  *epicFiles
	ready  bus.Started
	ess    *prometheus.HistogramVec // ESS job waits (metrics.go); nil in unit tests
}

// loaderReadAttempts is how many times the loader's Fusion client tries a
// read (a GET changes nothing) on a temporary answer unless its config
// says otherwise. Without it one 503 on the read before a write used up
// one of the command's three deliveries: with a tenth of requests failing,
// a worker change (a read, then a write) failed about one delivery in five
// and three in a row, a dead letter, about once in 150. Writes are still
// tried again only by redelivery, which reads Fusion first.
const loaderReadAttempts = 3

// New returns the service on bus b.
func New(cfg Config, b *bus.Bus) (*Service, error) {
	cfg.Fusion.Metrics, cfg.Fusion.Tracer = b.Metrics(), b.TracerProvider()
	if cfg.Fusion.ReadAttempts == 0 {
		cfg.Fusion.ReadAttempts = loaderReadAttempts
	}
	fc, err := fusion.New(cfg.Fusion)
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := batchstate.Open(ctx, b.JetStream())
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	if cfg.ClaimTTL > 0 && cfg.ClaimTTL < time.Second {
		return nil, fmt.Errorf("loader: claim_ttl %v: at least 1s, or 0 for ever", cfg.ClaimTTL)
	}
	cl := claims{nc: b.Conn(), ttl: cfg.ClaimTTL}
	for i := range streams.IdempotencyShards {
		name := streams.IdempotencyBucket(i)
		idem, err := b.JetStream().KeyValue(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("loader: bucket %s: %w", name, err)
		}
		cl.kv = append(cl.kv, idem)
	}
	s := &Service{cfg: cfg, bus: b, pub: b, log: b.Logger(), fusion: fc, states: st, claims: cl, shards: cl, wake: newWaker(), epic: &epicSender{cfg: cfg.Epic},
		files: &epicFiles{cfg: cfg.Epic.SFTP, timeout: cfg.Epic.AckTimeout}}
	if s.ess, err = newESSHistogram(b.Metrics()); err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	if cfg.BatchSize > 1 {
		s.batch = newBatcher(fc, cfg.BatchSize, max(cfg.BatchLinger, time.Millisecond))
		s.batch.tracer = b.Tracer("github.com/sinewhq/sinew/services/loader")
	}
	if s.cfg.PollInterval <= 0 {
		s.cfg.PollInterval = 2 * time.Second
	}
	if s.cfg.FusionAttempts <= 0 {
		s.cfg.FusionAttempts = 1
	}
	if s.cfg.MaxPollInterval < s.cfg.PollInterval {
		s.cfg.MaxPollInterval = s.cfg.PollInterval
	}
	inv, err := flows.Load(cfg.FlowsFile)
	if err != nil {
		b.Logger().Warn().Err(err).Msg("flows not configured: journal batches are retried, then dead-lettered")
		inv = &flows.Inventory{}
	}
	s.inv = inv
	reg, err := all.Registry()
	if err == nil {
		s.flows, err = reg.Resolve(inv)
	}
	if err != nil {
		return nil, fmt.Errorf("loader: %s and the flow packages disagree: %w", cfg.FlowsFile, err)
	}
	s.routes = bus.Routes(s.table()...)
	return s, nil
}

// table is the loader's route table: each flow's command kinds
// (fusion.cmd.<flow>.<kind>) to the operation its registry entry names.
func (s *Service) table() []bus.Route {
	var routes []bus.Route
	for _, f := range s.flows.All() {
		for _, kind := range slices.Sorted(maps.Keys(f.Fusion)) {
			subject := streams.FusionCmdSubject(f.ID, kind)
			switch op := f.Fusion[kind]; op {
			case registry.OpJournalImport:
				if f.GL.LedgerID == "" {
					s.log.Warn().Str("flow", f.ID).Msg("flow has no gl.ledger_id: its journal batches are retried, then dead-lettered")
					routes = append(routes, bus.Route{Pattern: subject, Handler: func(context.Context, *bus.Delivery) error {
						return errors.New("journal import not configured: no gl.ledger_id") // retried, then dead-lettered for a replay
					}})
					continue
				}
				routes = append(routes, bus.On(subject, glBatch{Service: s, flow: f.Flow}.importJournals))
			case registry.OpInventory:
				routes = append(routes, bus.On(subject, s.loadInventory))
			case registry.OpItem:
				routes = append(routes, bus.On(subject, s.loadItem))
			case registry.OpSupplier:
				routes = append(routes, bus.On(subject, s.loadSupplier))
			case registry.OpWorker:
				routes = append(routes, bus.On(subject, s.loadWorker))
			default:
				s.log.Warn().Str("flow", f.ID).Str("op", string(op)).Msg("unknown loader operation: the flow's commands are dead-lettered")
			}
		}
	}
	return append(routes, bus.Route{Pattern: ">", Handler: func(_ context.Context, d *bus.Delivery) error {
		return bus.Permanent(reason.Wrap(reason.LoaderNoRoute, fmt.Errorf("no loader for subject %s", d.Subject)))
	}})
}

// Run serves callbacks and consumes until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if s.cfg.CallbackAddr != "" {
		ln, err := net.Listen("tcp", s.cfg.CallbackAddr)
		if err != nil {
			return fmt.Errorf("loader: callback listener: %w", err)
		}
		mux := http.NewServeMux()
		s.Routes(mux)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}
	if err := s.shards.reshard(ctx, s.log); err != nil {
		return fmt.Errorf("loader: %w", err)
	}
	if s.batch != nil {
		go s.batch.run(ctx)
	}
	// Each flow's own consumer (fusion.cmd.<flow>.>, streams.Options.LoadFlows)
	// is paused server-side while the flow is staged or paused
	// (pkg/flowstate), so its commands wait in FUSION_CMD; the shared one
	// is there only without per-flow ones. Every consumer has the same
	// route table, and its own workers: a paused flow takes none of the others'.
	topo := streams.New(s.cfg.Topology)
	var want []streams.Consumer
	if c, ok := topo.Consumer(streams.LoaderFusion); ok {
		want = append(want, c)
	}
	for _, id := range s.cfg.Topology.LoadFlows {
		c, ok := topo.Consumer(streams.LoaderFusionFlow(id))
		if !ok {
			return fmt.Errorf("loader: no consumer for flow %s in the topology", id)
		}
		want = append(want, c)
	}
	// A consumer the server was not given (a topology ensured with other
	// flows, or without) is skipped with a warning: its commands wait.
	var cs []streams.Consumer
	for _, c := range want {
		if _, err := s.bus.JetStream().Consumer(ctx, c.Stream, c.Name); err != nil {
			s.log.Warn().Err(err).Str("consumer", c.Name).Msg("consumer not provisioned (sinew streams ensure --flows): its commands wait")
			continue
		}
		cs = append(cs, c)
	}
	if len(cs) == 0 {
		return errors.New("loader: no fusion consumer provisioned")
	}
	loops := make([]bus.Loop, 0, len(cs))
	for _, c := range cs {
		loops = append(loops, func(ctx context.Context, ready func()) error {
			return s.bus.Consume(ctx, c, s.routes, bus.ConsumeOptions{
				Workers:        max(1, s.cfg.Workers),
				Buffer:         max(1, s.cfg.Workers),
				MaxHandlerTime: s.cfg.MaxBatchTime,
				Ready:          ready,
			})
		})
	}
	if s.cfg.Epic.Addr != "" {
		loops = append(loops, s.epicLoop())
	}
	return bus.RunLoops(ctx, &s.ready, loops...)
}

// FlowsPath names the flows.yaml the runtime fills the per-flow topology from.
func (c *Config) FlowsPath() string { return c.FlowsFile }

// Ready is nil once consuming.
func (s *Service) Ready() error { return s.ready.Ready(s.bus, "loader") }

// callbackURL is the URL Fusion is given for ESS callbacks ("" for none).
func (s *Service) callbackURL() string {
	if s.cfg.CallbackURL != "" {
		return s.cfg.CallbackURL
	}
	if s.cfg.CallbackAddr == "" {
		return ""
	}
	return "http://" + s.cfg.CallbackAddr + CallbackPath
}

// CallbackPath is where Fusion posts ESS completion callbacks.
const CallbackPath = "/fusion/callback"

// Routes adds the callback route to mux (sinew up serves it on its own
// listener; standalone, CallbackAddr does).
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+CallbackPath, s.callback)
}

// callback takes one of Fusion's ESS completion callbacks. It only wakes
// the poller of its request ids: the state is always read back from
// Fusion, so a forged or replayed callback costs one poll and nothing else.
func (s *Service) callback(w http.ResponseWriter, r *http.Request) {
	cb, err := fusion.ParseCallback(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "bad callback", http.StatusBadRequest)
		return
	}
	ids := cb.RequestIDs()
	s.wake.wake(ids...)
	s.log.Debug().Strs("requests", ids).Str("status", string(cb.SummaryStatus)).Msg("ESS callback")
	w.WriteHeader(http.StatusNoContent)
}

// waker lets pollers sleep until a callback names one of their requests.
type waker struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

func newWaker() *waker { return &waker{subs: map[string]map[chan struct{}]struct{}{}} }

// subscribe returns a channel that receives when any of ids is woken, and
// the function that unsubscribes it.
func (w *waker) subscribe(ids ...string) (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	w.mu.Lock()
	for _, id := range ids {
		if w.subs[id] == nil {
			w.subs[id] = map[chan struct{}]struct{}{}
		}
		w.subs[id][c] = struct{}{}
	}
	w.mu.Unlock()
	return c, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, id := range ids {
			delete(w.subs[id], c)
			if len(w.subs[id]) == 0 {
				delete(w.subs, id)
			}
		}
	}
}

func (w *waker) wake(ids ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		for c := range w.subs[id] {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
}

// temporary reports whether a Fusion call may succeed if repeated.
func temporary(err error) bool {
	var fe *fusion.Error
	if errors.As(err, &fe) {
		return fe.Temporary()
	}
	return !errors.Is(err, context.Canceled)
}

// busError turns a failed Fusion call into the bus's retry policy:
// Retry-After honoured, 4xx validation errors permanent with Fusion's text.
func busError(op string, err error) error {
	var fe *fusion.Error
	if errors.As(err, &fe) {
		if !fe.Temporary() {
			return bus.Permanent(reason.Wrap(reason.FusionRefused, fmt.Errorf("%s: %w", op, err)))
		}
		if fe.RetryAfter > 0 {
			return bus.RetryAfter(fe.RetryAfter, fmt.Errorf("%s: %w", op, err))
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// result publishes a batch's outcome to RESULTS; the message id makes a
// repeat (a redelivery after the publish) a no-op.
func (s *Service) result(ctx context.Context, flow, outcome, msgID string, r *sinewv1.LoadResult) error {
	_, err := s.pub.Publish(ctx, streams.ResultSubject(flow, outcome), msgID, r)
	return err
}

func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
