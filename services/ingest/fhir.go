package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/fhir"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/smart"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/telemetry"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// FHIRConfig is FHIR R4 intake from Epic: SMART Backend Services
// credentials, the paged searches and the bulk export to run, and how
// often. Off while BaseURL is empty.
type FHIRConfig struct {
	BaseURL  string `yaml:"base_url"`  // e.g. https://epic.example/api/FHIR/R4
	TokenURL string `yaml:"token_url"` // the SMART token endpoint
	ClientID string `yaml:"client_id"`
	Scope    string `yaml:"scope"`
	// KeyFile is the PEM private key the assertions are signed with;
	// GenerateKey creates it (KeyAlg: RS384 or ES384) when missing.
	KeyFile     string `yaml:"key_file"`
	KeyAlg      string `yaml:"key_alg"`
	Kid         string `yaml:"kid"`
	GenerateKey bool   `yaml:"generate_key"`
	// JWKSAddr serves the public keys at /.well-known/jwks.json for the
	// Epic administrator to register (off while empty).
	JWKSAddr string `yaml:"jwks_addr"`
	// Interval between sync rounds (each search, then the export).
	Interval time.Duration `yaml:"interval"`
	Search   []SearchSync  `yaml:"search"`
	Export   ExportSync    `yaml:"export"`
	// Source names the Epic instance in envelopes and audit records.
	Source string `yaml:"source"`
	// Flows maps a resource type to the flow it feeds (envelope and
	// audit records); filled from flows.yaml's intake.fhir.
	Flows map[string]string `yaml:"flows"`
	// Throttle caps the request rate (peak and off-peak) and concurrency
	// against this Epic instance.
	Throttle fhir.ThrottleConfig `yaml:"throttle"`
	// Notify is the rest-hook endpoint for topic-based subscriptions
	// (fhirnotify.go).
	Notify NotifyConfig `yaml:"notify"`
	// NoProbe keeps the declared sync modes as they are; by default the
	// first round reads the CapabilityStatement and probes (fhirprobe.go).
	NoProbe bool `yaml:"no_probe"`
}

// SearchSync is one resource type synced by paged search over a clinical
// date parameter (Epic has no _lastUpdated), from a watermark in KV.
type SearchSync struct {
	Type string `yaml:"type"`
	// DateParam is the date search parameter ("date").
	DateParam string `yaml:"date_param"`
	// Params are fixed extra parameters, e.g. "category=laboratory".
	Params string `yaml:"params"`
	// Lookback is where a type without a watermark starts (7 days).
	Lookback time.Duration `yaml:"lookback"`
	// Overlap re-reads this much before the watermark: late-charted
	// resources (duplicates are dropped by their message id).
	Overlap time.Duration `yaml:"overlap"`
	// Count is _count, the page size asked for (0: the server's).
	Count int `yaml:"count"`
}

// ExportSync is a Group $export run each round (off while Group is empty).
type ExportSync struct {
	Group string   `yaml:"group"`
	Types []string `yaml:"types"`
	// Since asks for what changed since the last completed export's
	// transactionTime (_since), where the server honours it.
	Since bool `yaml:"since"`
	// MaxWait bounds one status-poll wait (Retry-After beyond it is cut).
	MaxWait time.Duration `yaml:"max_wait"`
}

// fromFlows takes the types to read from the flows' intake.fhir
// declarations: search ones by their date parameter (a week back at
// first, an hour of overlap), export ones in one Group $export.
func (c *FHIRConfig) fromFlows(inv *flows.Inventory) {
	if c.Flows == nil {
		c.Flows = map[string]string{}
	}
	for _, s := range inv.FHIRTypes() {
		c.Flows[s.Type] = s.Flow
		switch s.Sync {
		case flows.FHIRSearch:
			c.Search = append(c.Search, SearchSync{Type: s.Type, Params: s.Params, Lookback: 8 * 24 * time.Hour, Overlap: time.Hour})
		case flows.FHIRExport:
			c.Export.Types = append(c.Export.Types, s.Type)
		}
	}
	if len(c.Export.Types) > 0 && c.Export.Group == "" {
		c.Export.Group = "sinew"
	}
}

// FHIRSync runs the FHIR intake: searches and bulk exports into FHIR_IN.
type FHIRSync struct {
	cfg    FHIRConfig
	bus    *bus.Bus
	client *fhir.Client
	tokens *smart.TokenSource
	key    *smart.Key
	kv     jetstream.KeyValue

	committed *prometheus.CounterVec
	notified  *prometheus.CounterVec

	// notifyMu serialises notifications, subscription checks and creates.
	notifyMu sync.Mutex

	mu       sync.Mutex
	seen     map[string]struct{} // message ids published in this process
	noEvents map[string]bool     // subscriptions whose server has no $events
	// The probe's verdicts; disabledSubs are subscriptions whose topic
	// the server does not offer.
	probed       bool
	choices      []SyncChoice
	disabledSubs map[string]bool
	rereads      map[string]SearchSync // declared searches of types now notified
	stats        FHIRStats
}

// FHIRStats counts what a FHIRSync did (tests and logs).
type FHIRStats struct {
	Published, Duplicates, Rejected, Restarts, Splits, Pages, Exports int
	// Notifications: refused for want of the secret, gaps seen, gaps
	// closed by $events or by a re-read, heartbeats missed.
	Unauthenticated, Gaps, RecoveredByEvents, RecoveredByReread, MissedHeartbeats int
	// Bulk export: tombstones committed (deleted files), manifests
	// fetched again because their files or job expired.
	Deleted, ExpiredManifests int
}

const (
	channelPoll = "poll"
	channelBulk = "bulk-export"
	// invalidToken is the subject token of resources ingest could not
	// read (fhir.in.invalid): kept with their bytes for the DLQ path.
	invalidToken = "invalid"
)

// NewFHIRSync prepares the intake: loads (or generates) the key and
// opens the watermark bucket.
func NewFHIRSync(ctx context.Context, cfg FHIRConfig, b *bus.Bus) (*FHIRSync, error) {
	if cfg.BaseURL == "" || cfg.TokenURL == "" || cfg.ClientID == "" {
		return nil, errors.New("ingest: fhir: base_url, token_url and client_id are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Minute
	}
	if cfg.Source == "" {
		cfg.Source = "epic"
	}
	if cfg.Export.MaxWait <= 0 {
		cfg.Export.MaxWait = 2 * time.Minute
	}
	if err := cfg.Notify.validate(); err != nil {
		return nil, err
	}
	key, err := loadKey(cfg)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 5 * time.Minute}
	ts, err := smart.NewTokenSource(smart.ClientConfig{TokenURL: cfg.TokenURL, ClientID: cfg.ClientID, Scope: cfg.Scope, Key: key, HTTP: &http.Client{Timeout: 30 * time.Second}})
	if err != nil {
		return nil, err
	}
	kv, err := b.JetStream().KeyValue(ctx, streams.KVWatermarks)
	if err != nil {
		return nil, fmt.Errorf("ingest: fhir: watermarks bucket: %w", err)
	}
	f := &FHIRSync{cfg: cfg, bus: b, key: key, tokens: ts, kv: kv, client: &fhir.Client{Tokens: ts, HTTP: hc}, seen: map[string]struct{}{}, noEvents: map[string]bool{}}
	if f.committed, err = telemetry.Register(b.Metrics(), prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sinew_ingest_fhir_resources_total", Help: "FHIR resources read from Epic, by type, channel and result (committed, duplicate, rejected).",
	}, []string{"type", "channel", "result"})); err != nil {
		return nil, err
	}
	if f.notified, err = telemetry.Register(b.Metrics(), prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sinew_ingest_fhir_notifications_total", Help: "FHIR subscription notifications received, by subscription, notification type and result (ok, failed, rejected, unauthenticated).",
	}, []string{"subscription", "type", "result"})); err != nil {
		return nil, err
	}
	if cfg.Throttle.Rate > 0 || cfg.Throttle.Concurrency > 0 {
		th := fhir.NewThrottle(cfg.Throttle, nil)
		f.client.Throttle = th
		if _, err := telemetry.Register(b.Metrics(), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sinew_ingest_fhir_requests_in_flight", Help: "FHIR requests in flight against Epic (capped by throttle.concurrency).",
		}, func() float64 { return float64(th.InFlight()) })); err != nil {
			return nil, err
		}
		if _, err := telemetry.Register(b.Metrics(), prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sinew_ingest_fhir_throttle_wait_seconds_total", Help: "Time FHIR requests waited for the self-throttling caps.",
		}, func() float64 { return th.Waited().Seconds() })); err != nil {
			return nil, err
		}
		if _, err := telemetry.Register(b.Metrics(), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sinew_ingest_fhir_rate_cap", Help: "The request rate cap in force now (requests/s; 0: none).",
		}, func() float64 { return th.RateAt(time.Now()) })); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func loadKey(cfg FHIRConfig) (*smart.Key, error) {
	if cfg.KeyFile == "" {
		return nil, errors.New("ingest: fhir: key_file is required")
	}
	b, err := os.ReadFile(cfg.KeyFile)
	if errors.Is(err, os.ErrNotExist) && cfg.GenerateKey {
		alg := cfg.KeyAlg
		if alg == "" {
			alg = smart.RS384
		}
		k, err := smart.GenerateKey(alg)
		if err != nil {
			return nil, err
		}
		if cfg.Kid != "" {
			k.Kid = cfg.Kid
		}
		p, err := k.MarshalPEM()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(cfg.KeyFile), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(cfg.KeyFile, p, 0o600); err != nil {
			return nil, fmt.Errorf("ingest: fhir: write key: %w", err)
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ingest: fhir: key: %w", err)
	}
	return smart.ParseKeyPEM(b, cfg.Kid)
}

// JWKS is the public key set to register with Epic.
func (f *FHIRSync) JWKS() smart.JWKS { return smart.Set(f.key) }

// Stats returns the counters so far.
func (f *FHIRSync) Stats() FHIRStats { f.mu.Lock(); defer f.mu.Unlock(); return f.stats }

// Run syncs every Interval until ctx ends; a failed round is logged and
// the next one tries again (watermarks only move on success).
func (f *FHIRSync) Run(ctx context.Context) error {
	if f.cfg.JWKSAddr != "" {
		ln, err := net.Listen("tcp", f.cfg.JWKSAddr)
		if err != nil {
			return fmt.Errorf("ingest: fhir: jwks listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle(JWKSPath, smart.JWKSHandler(f.key))
		if f.cfg.Notify.Addr == "" && len(f.cfg.Notify.Subscriptions) > 0 {
			mux.Handle(NotifyPath, f.NotifyHandler())
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}
	if f.cfg.Notify.Addr != "" && len(f.cfg.Notify.Subscriptions) > 0 {
		ln, err := net.Listen("tcp", f.cfg.Notify.Addr)
		if err != nil {
			return fmt.Errorf("ingest: fhir: notify listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle(NotifyPath, f.NotifyHandler())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}
	if hb := f.minHeartbeat(); hb > 0 {
		// The heartbeat watchdog runs between rounds.
		go func() {
			t := time.NewTicker(hb)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if err := f.CheckSubscriptions(ctx); err != nil && ctx.Err() == nil {
						f.bus.Logger().Warn().Err(err).Msg("FHIR subscription check failed")
					}
				}
			}
		}()
	}
	log := f.bus.Logger()
	for {
		wait := f.cfg.Interval
		if err := f.Round(ctx); err != nil && ctx.Err() == nil {
			// Soon again (the token endpoint or the JWKS may not be up
			// yet), never faster than every 10 s.
			wait = min(wait, 10*time.Second)
			log.Warn().Err(err).Int64("retry_in_ms", wait.Milliseconds()).Msg("FHIR sync round failed")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Round runs each search, then the export, once, and keeps the
// subscriptions (created where missing, checked for silence).
func (f *FHIRSync) Round(ctx context.Context) error {
	var errs []error
	if !f.cfg.NoProbe && !f.probed {
		if _, err := f.Probe(ctx); err != nil {
			// Tried again next round; meanwhile the declared modes.
			f.bus.Logger().Warn().Err(err).Msg("FHIR CapabilityStatement probe failed: the declared sync modes are used")
		} else {
			f.probed = true
		}
	}
	if len(f.cfg.Notify.Subscriptions) > 0 {
		if err := f.EnsureSubscriptions(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := f.CheckSubscriptions(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for _, s := range f.cfg.Search {
		if err := f.SyncSearch(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Type, err))
		}
	}
	if f.cfg.Export.Group != "" {
		if err := f.Export(ctx); err != nil {
			errs = append(errs, fmt.Errorf("export: %w", err))
		}
	}
	return errors.Join(errs...)
}

// msgID is the resource's deduplication id: type/id and versionId, or
// a hash of its bytes when the server gives no version.
func msgID(r *fhir.Resource) string {
	if r.VersionID != "" {
		return "fhir:" + r.Type + "/" + r.ID + "/_history/" + r.VersionID
	}
	sum := sha256.Sum256(r.Raw)
	return "fhir:" + r.Type + "/" + r.ID + "#" + hex.EncodeToString(sum[:12])
}

// publish commits one resource to fhir.in.<type>. Duplicates (same id
// and version, in this process or within JetStream's duplicate window)
// are dropped.
func (f *FHIRSync) publish(ctx context.Context, r *fhir.Resource, channel string) error {
	id := msgID(r)
	f.mu.Lock()
	_, dup := f.seen[id]
	f.mu.Unlock()
	if dup {
		f.count(func(s *FHIRStats) { s.Duplicates++ })
		f.committed.WithLabelValues(r.Type, channel, "duplicate").Inc()
		return nil
	}
	ack, err := f.bus.Publish(ctx, streams.FHIRSubject(r.Type), id, f.event(r, id, channel))
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.seen[id] = struct{}{}
	result := "committed"
	if ack.Duplicate {
		f.stats.Duplicates++
		result = "duplicate"
	} else {
		f.stats.Published++
	}
	f.mu.Unlock()
	f.committed.WithLabelValues(r.Type, channel, result).Inc()
	return nil
}

// event is the FhirResourceReceived of r.
func (f *FHIRSync) event(r *fhir.Resource, id, channel string) *sinewv1.FhirResourceReceived {
	ev := &sinewv1.FhirResourceReceived{
		Envelope: &sinewv1.Envelope{
			EventId: bus.EventID(id), Flow: f.cfg.Flows[r.Type], SourceSystem: f.cfg.Source, SourceId: r.Key(), IdempotencyKey: id,
			ReceivedAt: timestamppb.Now(), BusinessKeys: sinewv1.Keys(map[string]string{"resource_type": r.Type}),
		},
		ResourceType: r.Type, ResourceId: r.ID, VersionId: r.VersionID, Json: r.Raw, Channel: channel,
	}
	if !r.LastUpdated.IsZero() {
		ev.LastUpdated = timestamppb.New(r.LastUpdated)
	}
	return ev
}

// tombstone is the event of a resource deleted on the server: its type
// and id, the deleted file's line as its bytes, on fhir.in.deleted.
func (f *FHIRSync) tombstone(typ, id, msgID string, raw []byte) *sinewv1.FhirResourceReceived {
	return &sinewv1.FhirResourceReceived{
		Envelope: &sinewv1.Envelope{
			EventId: bus.EventID(msgID), Flow: f.cfg.Flows[typ], SourceSystem: f.cfg.Source, SourceId: typ + "/" + id, IdempotencyKey: msgID,
			ReceivedAt: timestamppb.Now(), BusinessKeys: sinewv1.Keys(map[string]string{"resource_type": typ, "deleted": "true"}),
		},
		ResourceType: typ, ResourceId: id, Json: raw, Channel: channelBulk,
	}
}

// reject keeps a resource ingest could not read, with its bytes, on
// fhir.in.invalid; the error (path and code, no values) rides along.
func (f *FHIRSync) reject(ctx context.Context, raw []byte, rerr error, channel string) error {
	sum := sha256.Sum256(raw)
	id := "fhir:invalid#" + hex.EncodeToString(sum[:16])
	ev := &sinewv1.FhirResourceReceived{
		Envelope: &sinewv1.Envelope{EventId: bus.EventID(id), SourceSystem: f.cfg.Source, IdempotencyKey: id, ReceivedAt: timestamppb.Now(),
			BusinessKeys: sinewv1.Keys(map[string]string{"error": rerr.Error()})},
		Json: raw, Channel: channel,
	}
	if _, err := f.bus.Publish(ctx, streams.FHIRSubject(invalidToken), id, ev); err != nil {
		return err
	}
	f.count(func(s *FHIRStats) { s.Rejected++ })
	f.committed.WithLabelValues(invalidToken, channel, "rejected").Inc()
	return nil
}

func (f *FHIRSync) count(fn func(*FHIRStats)) { f.mu.Lock(); fn(&f.stats); f.mu.Unlock() }

// audit records one read: who, which type, how many, the patients
// touched as keyed hashes only.
func (f *FHIRSync) audit(ctx context.Context, op, typ string, rs []*fhir.Resource) error {
	refs := map[string]struct{}{}
	for _, r := range rs {
		if p := patientOf(r); p != "" {
			refs[f.bus.PatientRef("epic-fhir-patient", p)] = struct{}{}
		}
	}
	var list []string
	for r := range refs {
		list = append(list, r)
	}
	return f.bus.Audit().Write(ctx, &sinewv1.AuditEvent{
		Actor: f.bus.Service(), Action: "read", Flow: f.cfg.Flows[typ], Hop: streams.HopIngest, Outcome: "ok",
		Stream: streams.FHIRIn, Subject: streams.FHIRSubject(typ), PatientRefs: list,
		BusinessKeys: sinewv1.Keys(map[string]string{"client_id": f.cfg.ClientID, "resource_type": typ}),
		Detail:       fmt.Sprintf("%s: %d %s resources", op, len(rs), typ),
	})
}

// patientRefs are the references patientOf reads.
type patientRefs struct {
	Subject fhir.Reference `json:"subject"`
	Patient fhir.Reference `json:"patient"`
}

// patientOf is the patient id a resource is about: its own id for a
// Patient, else subject/patient references to Patient.
func patientOf(r *fhir.Resource) string {
	if r.Type == "Patient" {
		return r.ID
	}
	v, err := fhir.Decode[patientRefs](r)
	if err != nil {
		return ""
	}
	for _, ref := range []fhir.Reference{v.Subject, v.Patient} {
		if strings.HasPrefix(ref.Reference, "Patient/") {
			return ref.ID()
		}
	}
	return ""
}

// FHIR is the FHIR intake (nil when off).
func (s *Service) FHIR() *FHIRSync { return s.fhir }

// JWKSPath is where the client's public keys are served.
const JWKSPath = "/.well-known/jwks.json"

// Routes serves the FHIR client's JWKS on the host's mux (sinew up's
// HTTP listener) for the Epic administrator to register.
func (s *Service) Routes(mux *http.ServeMux) {
	if s.fhir != nil {
		mux.Handle(JWKSPath, smart.JWKSHandler(s.fhir.key))
		if len(s.fhir.cfg.Notify.Subscriptions) > 0 && s.fhir.cfg.Notify.Addr == "" {
			mux.Handle(NotifyPath, s.fhir.NotifyHandler())
		}
	}
}
