// Package streams is Sinew's JetStream topology: the one table of streams,
// subjects, consumers, key-value buckets and object stores (docs/architecture.md, Topology) that
// services, tests, docs and provisioning all read, and Ensure, which makes a
// server match it.
package streams

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream names.
const (
	HL7In      = "HL7_IN"
	FHIRIn     = "FHIR_IN"
	BatchIn    = "BATCH_IN"
	FusionCmd  = "FUSION_CMD"
	EpicCmd    = "EPIC_CMD"
	Results    = "RESULTS"
	Recon      = "RECON"
	Audit      = "AUDIT"
	Advisories = "ADVISORIES"
	DLQ        = "DLQ"
)

// The tracking index (pkg/track) is not a stream: each console keeps its
// own on disk, built from AUDIT, and answers these requests from it. A
// lookup carries an identifier's key (track.Key), never the identifier.
const (
	// TrackLookup asks for the timeline of one key.
	TrackLookup = "sinew.track.lookup"
	// TrackStatus asks for an index's watermark and AUDIT's last sequence.
	TrackStatus = "sinew.track.status"
	// TrackQueue is the consoles' queue group: one answer per request.
	TrackQueue = "console"
)

// Durable consumer names.
const (
	TransformHL7   = "transform-hl7"
	TransformFHIR  = "transform-fhir"
	TransformBatch = "transform-batch"
	LoaderFusion   = "loader-fusion"
	LoaderEpic     = "loader-epic"
	ReconResults   = "reconciler-results"
	Deadletter     = "deadletter"
)

// Key-value buckets.
const (
	KVCrosswalk   = "crosswalk"
	KVIdempotency = "idempotency"
	KVFlowState   = "flow_state"
	KVWatermarks  = "fhir_watermarks"
	KVReplays     = "dlq_replays"
	KVSequences   = "hl7_sequences"
	KVBatchSeen   = "batch_seen"
	KVBatchState  = "batch_state"
	// KVTriage holds the items a person must look at (pkg/triage).
	KVTriage     = "triage"
	KVFusionPoll = "fusion_poll"
	// KVFlowRuns holds scheduled flows' leases, last-run watermarks, run
	// records and run requests (pkg/schedule).
	KVFlowRuns = "flow_runs"
)

// IdempotencyShards is how many buckets the loader's idempotency keys are
// spread over. A key takes two writes (claim, outcome) and nats-server
// writes and fsyncs one stream's messages in turn, so with one bucket that
// stream capped an fsync-per-write pipeline; with two, each takes about one
// write per message, as the other streams do.
const IdempotencyShards = 2

// IdempotencyBucket names shard i: KVIdempotency, then KVIdempotency_1, ...
func IdempotencyBucket(i int) string {
	if i == 0 {
		return KVIdempotency
	}
	return KVIdempotency + "_" + strconv.Itoa(i)
}

// IdempotencyShard is the shard of an idempotency key: its last byte, so a
// key ending in a hash spreads evenly.
func IdempotencyShard(key string) int {
	if key == "" {
		return 0
	}
	return int(key[len(key)-1]) % IdempotencyShards
}

// Object stores.
const (
	ObjBatchFiles = "batch_files"
	ObjFBDI       = "fbdi_files"
	ObjJobLogs    = "job_logs"
	ObjHL7Bodies  = "hl7_bodies"
)

// Advisory subjects captured by the ADVISORIES stream.
const (
	AdvisoryMaxDeliveries = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
	AdvisoryTerminated    = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED"
)

// Subject builders. Tokens must not contain PHI; Token makes any value a
// safe single subject token.

// HL7Subject is hl7.in.<facility>.<type>.<event>: a message no flow
// routes (an unknown sending application, a rejected message). Only the
// default consumer TransformHL7 reads these four-token subjects.
func HL7Subject(facility, msgType, event string) string {
	return "hl7.in." + Token(facility) + "." + Token(msgType) + "." + Token(event)
}

// HL7FlowSubject is hl7.in.<facility>.<type>.<event>.<flow>: a message
// ingest routed to a flow by its sending application. The flow is the last
// token so filters on facility and type (hl7.in.*.RDS.>) match both forms.
func HL7FlowSubject(flow, facility, msgType, event string) string {
	return HL7Subject(facility, msgType, event) + "." + Token(flow)
}

// HL7FlowFilter is the filter of flow's own HL7 consumer.
func HL7FlowFilter(flow string) string { return "hl7.in.*.*.*." + Token(flow) }

// TransformHL7Flow names flow's HL7 consumer: one durable per HL7 flow,
// paused while the flow is staged or paused (docs/architecture.md, Flow state).
func TransformHL7Flow(flow string) string { return TransformHL7 + "-" + Token(flow) }

// LoaderFusionFlow names flow's loader consumer (filter
// fusion.cmd.<flow>.>): one durable per flow, paused like TransformHL7Flow,
// so commands already on FUSION_CMD for a held flow are not posted either.
func LoaderFusionFlow(flow string) string { return LoaderFusion + "-" + Token(flow) }

// FusionCmdFlowFilter is the filter of flow's own loader consumer.
func FusionCmdFlowFilter(flow string) string { return "fusion.cmd." + Token(flow) + ".>" }

// TransformFHIRFlow names flow's FHIR consumer (filters fhir.in.<type> of
// the types flows.yaml's intake.fhir declares for it): one durable per
// FHIR flow, paused like TransformHL7Flow.
func TransformFHIRFlow(flow string) string { return TransformFHIR + "-" + Token(flow) }

// FHIRInvalidSubject holds the resources ingest could not read (their
// bytes kept); the shared TransformFHIR consumer dead-letters them.
const FHIRInvalidSubject = "fhir.in.invalid"

// TransformBatchFlow names flow's batch consumer (filter BatchSubject(flow)):
// one durable per batch flow, paused like TransformHL7Flow.
func TransformBatchFlow(flow string) string { return TransformBatch + "-" + Token(flow) }

// FHIRSubject is fhir.in.<resourceType>.
func FHIRSubject(resourceType string) string { return "fhir.in." + Token(resourceType) }

// BatchSubject is batch.in.<flow>.
func BatchSubject(flow string) string { return "batch.in." + Token(flow) }

// FusionCmdSubject is fusion.cmd.<flow>.<op>.
func FusionCmdSubject(flow, op string) string { return "fusion.cmd." + Token(flow) + "." + Token(op) }

// EpicCmdSubject is epic.cmd.<flow>.<op>.
func EpicCmdSubject(flow, op string) string { return "epic.cmd." + Token(flow) + "." + Token(op) }

// ResultSubject is result.<flow>.<outcome>.
func ResultSubject(flow, outcome string) string {
	return "result." + Token(flow) + "." + Token(outcome)
}

// ReconSubject is recon.<flow>.<tier>.
func ReconSubject(flow, tier string) string { return "recon." + Token(flow) + "." + Token(tier) }

// AuditSubject is audit.<flow>.<hop>.
func AuditSubject(flow, hop string) string { return "audit." + Token(flow) + "." + Token(hop) }

// DLQSubject is dlq.<stream>.<consumer>.<stream seq>: the sequence makes
// "is this message already dead-lettered?" one lookup of the subject's last
// message, with no dependence on the duplicate window.
func DLQSubject(stream, consumer string, seq uint64) string {
	return "dlq." + Token(stream) + "." + Token(consumer) + "." + strconv.FormatUint(seq, 10)
}

// Token turns s into one subject token: separators, wildcards and spaces
// become '_', and an empty value becomes "none".
func Token(s string) string {
	if s == "" {
		return "none"
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if !tokenByte(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if tokenByte(s[i]) {
			b.WriteByte(s[i])
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func tokenByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != '.' && c != '*' && c != '>'
}

// Options tune the topology for a deployment.
type Options struct {
	// Replicas per stream and bucket: 1 on the embedded server, 3 in a cluster.
	Replicas int `yaml:"replicas"`
	// IngestMaxBytes bounds each ingest stream; when full, publishes are
	// refused (DiscardNew) and the sender is NAKed rather than old data lost.
	IngestMaxBytes int64 `yaml:"ingest_max_bytes"`
	// DuplicateWindow is how long a Nats-Msg-Id is remembered. It must cover
	// the worst-case redelivery span (3 deliveries × AckWait + backoff) and a
	// sender's resend of an unacknowledged HL7 message.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// AckWait before an unacknowledged delivery is redelivered.
	AckWait time.Duration `yaml:"ack_wait"`
	// RetryBase is the first retry delay; later ones double.
	RetryBase time.Duration `yaml:"retry_base"`
	// LoadRetryBase is RetryBase for the loader's consumers: Fusion and
	// Epic outages last longer than a mapper's hiccup.
	LoadRetryBase time.Duration `yaml:"load_retry_base"`
	// AuditRetentionYears is how long AUDIT keeps records: 6 years when 0. A record is not silently
	// lost at the end of it: audit.RecordExpiry writes what will expire.
	AuditRetentionYears int `yaml:"audit_retention_years"`
	// HL7Flows are the ids of flows.yaml's HL7 flows (flows.Inventory.HL7IDs):
	// each gets its own transform consumer on its own subjects, so staging
	// or pausing one holds its input in HL7_IN and leaves the others running.
	HL7Flows []string `yaml:"hl7_flows"`
	// BatchFlows are the ids of flows.yaml's batch flows (flows.Inventory.BatchIDs):
	// each gets its own transform consumer on batch.in.<flow>. With any, the
	// shared TransformBatch consumer is left out: every manifest ingest
	// stores belongs to one of them.
	BatchFlows []string `yaml:"batch_flows"`
	// LoadFlows are the ids of every flow of flows.yaml (flows.Inventory.IDs):
	// each gets its own loader consumer on fusion.cmd.<flow>.>, paused with
	// the flow. With any, the shared LoaderFusion consumer is left out:
	// every command transform publishes belongs to one of them.
	LoadFlows []string `yaml:"load_flows"`
	// FHIRFlows are flows.yaml's flows with intake.fhir (flows.Inventory.FHIRFlows):
	// each gets its own transform consumer on fhir.in.<type> of its types,
	// paused with the flow.
	FHIRFlows []FHIRFlow `yaml:"fhir_flows"`
	// ReconcileFlows are the ids of the flows reconciled per load result
	// (flows.yaml reconcile.kind gl-batch): the reconciler's results
	// consumer takes result.<flow>.> of each; with none, every result.
	ReconcileFlows []string `yaml:"reconcile_flows"`
}

// FHIRFlow is one flow reading FHIR resources and its resource types.
type FHIRFlow struct {
	ID    string   `yaml:"id"`
	Types []string `yaml:"types"`
}

// DefaultOptions is the single-node topology of `sinew up`.
func DefaultOptions() Options {
	return Options{
		Replicas:        1,
		IngestMaxBytes:  8 << 30,
		DuplicateWindow: time.Hour,
		AckWait:         30 * time.Second,
		RetryBase:       2 * time.Second,
		LoadRetryBase:   30 * time.Second,
	}
}

// MaxDeliver is how many times a message is delivered before it is dead-lettered.
const MaxDeliver = 3

// Consumer is a durable pull consumer and the retry policy of its handler.
type Consumer struct {
	Stream string
	Name   string
	// Filter subjects; empty means the whole stream.
	Filter []string
	// MaxDeliver is MaxDeliver for pipeline consumers; -1 (unlimited) for the
	// dead-letter consumer itself, which must never dead-letter.
	MaxDeliver    int
	AckWait       time.Duration
	MaxAckPending int
	// RetryBase is the delay before the second delivery; each further one doubles.
	RetryBase time.Duration
	// MaxRetryDelay caps the doubling; an hour when zero.
	MaxRetryDelay time.Duration
	// Hop names the step in audit records (audit.<flow>.<hop>).
	Hop string
}

// Config is the consumer's JetStream configuration. No BackOff: it would
// distort NakWithDelay, which the handler loop uses instead.
func (c Consumer) Config() jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:       c.Name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    c.MaxDeliver,
		MaxAckPending: c.MaxAckPending,
	}
	switch len(c.Filter) {
	case 0:
	case 1:
		cfg.FilterSubject = c.Filter[0]
	default:
		cfg.FilterSubjects = c.Filter
	}
	return cfg
}

// Topology is everything Ensure creates.
type Topology struct {
	Streams    []jetstream.StreamConfig
	Consumers  []Consumer
	KV         []jetstream.KeyValueConfig
	Objects    []jetstream.ObjectStoreConfig
	hl7Flows   []string
	batchFlows []string
	loadFlows  []string
	fhirFlows  []FHIRFlow
}

const (
	day  = 24 * time.Hour
	year = 365 * day
)

// New builds the topology for opts.
func New(opts Options) Topology {
	def := DefaultOptions()
	if opts.Replicas <= 0 {
		opts.Replicas = def.Replicas
	}
	if opts.IngestMaxBytes <= 0 {
		opts.IngestMaxBytes = def.IngestMaxBytes
	}
	if opts.DuplicateWindow <= 0 {
		opts.DuplicateWindow = def.DuplicateWindow
	}
	if opts.AckWait <= 0 {
		opts.AckWait = def.AckWait
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = def.RetryBase
	}
	if opts.LoadRetryBase <= 0 {
		opts.LoadRetryBase = def.LoadRetryBase
	}
	if opts.AuditRetentionYears <= 0 {
		opts.AuditRetentionYears = 6
	}
	auditAge := time.Duration(opts.AuditRetentionYears) * year
	pipeline := func(name, desc string, subjects []string, maxAge time.Duration) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    subjects,
			Retention:   jetstream.LimitsPolicy, // Term on WorkQueue/Interest would delete what the DLQ needs
			Storage:     jetstream.FileStorage,
			Replicas:    opts.Replicas,
			MaxAge:      maxAge,
			Duplicates:  opts.DuplicateWindow,
			Discard:     jetstream.DiscardOld,
		}
	}
	ingest := func(name, desc, subject string) jetstream.StreamConfig {
		s := pipeline(name, desc, []string{subject}, 30*day)
		s.MaxBytes = opts.IngestMaxBytes
		s.Discard = jetstream.DiscardNew // a full stream refuses; the sender is NAKed and resends
		return s
	}
	kept := func(s jetstream.StreamConfig) jetstream.StreamConfig {
		s.DenyDelete = true
		s.DenyPurge = true
		return s
	}
	t := Topology{
		Streams: []jetstream.StreamConfig{
			ingest(HL7In, "HL7 v2 messages as received, with receipt metadata", "hl7.in.>"),
			ingest(FHIRIn, "FHIR R4 resources, original JSON bytes", "fhir.in.>"),
			ingest(BatchIn, "batch file manifests (object store key, SHA-256, control totals)", "batch.in.>"),
			pipeline(FusionCmd, "canonical commands for Fusion, each with an idempotency key", []string{"fusion.cmd.>"}, 30*day),
			pipeline(EpicCmd, "outbound commands for Epic", []string{"epic.cmd.>"}, 30*day),
			pipeline(Results, "what Fusion and Epic answered, with their ids", []string{"result.>"}, 90*day),
			pipeline(Recon, "reconciliation rows and batch verdicts", []string{"recon.>"}, 2*year),
			kept(pipeline(Audit, "HIPAA §164.312(b) audit trail, hash-chained per writer", []string{"audit.>"}, auditAge)),
			pipeline(Advisories, "max-deliveries and terminated advisories, input of deadletter",
				[]string{AdvisoryMaxDeliveries + ".>", AdvisoryTerminated + ".>"}, 7*day),
			kept(pipeline(DLQ, "dead letters: original subject, sequence, headers, payload, reason", []string{"dlq.>"}, 2*year)),
		},
		KV: []jetstream.KeyValueConfig{
			{Bucket: KVCrosswalk, Description: "versioned crosswalks", History: 64, Replicas: opts.Replicas, Storage: jetstream.FileStorage},
			{Bucket: IdempotencyBucket(0), Description: "loader idempotency keys, shard 0 (each expires after the loader's claim_ttl)", History: 1, Replicas: opts.Replicas, Storage: jetstream.FileStorage},
			{Bucket: IdempotencyBucket(1), Description: "loader idempotency keys, shard 1 (each expires after the loader's claim_ttl)", History: 1, Replicas: opts.Replicas, Storage: jetstream.FileStorage},
			{Bucket: KVFlowState, Description: "flow state: staged, active, paused", History: 16, Replicas: opts.Replicas, Storage: jetstream.FileStorage},
			{Bucket: KVWatermarks, Description: "FHIR sync watermarks", History: 4, Replicas: opts.Replicas, Storage: jetstream.FileStorage},
			{Bucket: KVReplays, Description: "DLQ replays: who replayed which dead letter", History: 8, Replicas: opts.Replicas, Storage: jetstream.FileStorage},
			{Bucket: KVSequences, Description: "HL7 MSH-13 sequence numbers expected per sender", History: 1, Replicas: opts.Replicas, Storage: jetstream.FileStorage},
			{Bucket: KVBatchSeen, Description: "batch files already ingested, by SHA-256", History: 1, Replicas: opts.Replicas, Storage: jetstream.FileStorage},
			{Bucket: KVBatchState, Description: "per-batch state machine: received to reconciled, Fusion request ids", History: 8, Replicas: opts.Replicas, Storage: jetstream.FileStorage},
			{Bucket: KVTriage, Description: "triage items: open, acknowledged, resolved", History: 16, Replicas: opts.Replicas, Storage: jetstream.FileStorage},
			{Bucket: KVFusionPoll, Description: "flows that poll Fusion: feed and read cursors, keyed hashes of what Sinew last wrote to each side", History: 4, Replicas: opts.Replicas, Storage: jetstream.FileStorage},
			{Bucket: KVFlowRuns, Description: "scheduled flows: run lease, last-run watermark, run records (start, end, outcome, counts), run requests", History: 4, Replicas: opts.Replicas, Storage: jetstream.FileStorage},
		},
		Objects: []jetstream.ObjectStoreConfig{
			{Bucket: ObjBatchFiles, Description: "source batch files", Replicas: opts.Replicas, Storage: jetstream.FileStorage},
			{Bucket: ObjFBDI, Description: "generated FBDI zips", Replicas: opts.Replicas, Storage: jetstream.FileStorage},
			{Bucket: ObjJobLogs, Description: "Fusion ESS job logs", Replicas: opts.Replicas, Storage: jetstream.FileStorage},
			// Kept as long as the longest holder of a reference: a dead
			// letter (DLQ, 2 years) keeps the HL7_IN receipt, not the body.
			// Bounded like HL7_IN (a full bucket refuses: the sender gets AE).
			{Bucket: ObjHL7Bodies, Description: "HL7 v2 messages too large for one JetStream message, referenced from HL7_IN and dead letters",
				TTL: 2 * year, MaxBytes: opts.IngestMaxBytes, Replicas: opts.Replicas, Storage: jetstream.FileStorage},
		},
	}
	// Group commit (bus.Group): ingest writes the MLLP messages of many
	// connections as atomic batches, fsynced once (PublishAtomic); FHIR
	// bulk export files are written in atomic batches too (Bus.PublishBatch).
	for i, s := range t.Streams {
		if s.Name == HL7In || s.Name == FHIRIn {
			t.Streams[i].AllowAtomicPublish = true
		}
	}
	pc := func(stream, name, hop string, filter ...string) Consumer {
		return Consumer{Stream: stream, Name: name, Filter: filter, MaxDeliver: MaxDeliver,
			AckWait: opts.AckWait, MaxAckPending: 1024, RetryBase: opts.RetryBase, Hop: hop}
	}
	t.Consumers = []Consumer{
		// The default HL7 consumer takes the four-token subjects: messages
		// no flow routes (and those stored before ingest routed by flow).
		pc(HL7In, TransformHL7, "transform", "hl7.in.*.*.*"),
		// The shared FHIR consumer takes only what ingest could not read:
		// each flow's types have the flow's own consumer.
		pc(FHIRIn, TransformFHIR, "transform", FHIRInvalidSubject),
		pc(BatchIn, TransformBatch, "transform"),
		withBase(pc(FusionCmd, LoaderFusion, "load"), opts.LoadRetryBase),
		withBase(pc(EpicCmd, LoaderEpic, "load"), opts.LoadRetryBase),
		// Per-result flows (ReconcileFlows, the gl-batch ones) reconcile
		// per batch result; inventory flows per day (the reconciler reads
		// their results with streams.Scan).
		pc(Results, ReconResults, "reconcile", resultFilters(opts.ReconcileFlows)...),
		// Unlimited deliveries: a transient failure to record a dead letter
		// is retried until it succeeds (an undecodable advisory is still
		// recorded as a dead letter of ADVISORIES).
		{Stream: Advisories, Name: Deadletter, MaxDeliver: -1, AckWait: opts.AckWait,
			MaxAckPending: 256, RetryBase: opts.RetryBase, MaxRetryDelay: 30 * time.Second, Hop: "dead-letter"},
	}
	t.hl7Flows = opts.HL7Flows
	t.batchFlows = opts.BatchFlows
	if len(opts.BatchFlows) > 0 {
		t.Consumers = slices.DeleteFunc(t.Consumers, func(c Consumer) bool { return c.Name == TransformBatch })
	}
	for _, f := range opts.BatchFlows {
		t.Consumers = append(t.Consumers, pc(BatchIn, TransformBatchFlow(f), "transform", BatchSubject(f)))
	}
	for _, f := range opts.HL7Flows {
		t.Consumers = append(t.Consumers, pc(HL7In, TransformHL7Flow(f), "transform", HL7FlowFilter(f)))
	}
	t.fhirFlows = opts.FHIRFlows
	for _, f := range opts.FHIRFlows {
		var filter []string
		for _, typ := range f.Types {
			filter = append(filter, FHIRSubject(typ))
		}
		t.Consumers = append(t.Consumers, pc(FHIRIn, TransformFHIRFlow(f.ID), "transform", filter...))
	}
	t.loadFlows = opts.LoadFlows
	if len(opts.LoadFlows) > 0 {
		t.Consumers = slices.DeleteFunc(t.Consumers, func(c Consumer) bool { return c.Name == LoaderFusion })
	}
	for _, f := range opts.LoadFlows {
		t.Consumers = append(t.Consumers, withBase(pc(FusionCmd, LoaderFusionFlow(f), "load", FusionCmdFlowFilter(f)), opts.LoadRetryBase))
	}
	return t
}

// resultFilters are the results consumer's filters: result.<flow>.> of
// each flow, none (every result) without flows.
func resultFilters(flows []string) []string {
	var out []string
	for _, f := range flows {
		out = append(out, "result."+Token(f)+".>")
	}
	return out
}

func withBase(c Consumer, base time.Duration) Consumer {
	c.RetryBase = base
	return c
}

// Stream returns the named stream's configuration.
func (t Topology) Stream(name string) (jetstream.StreamConfig, bool) {
	for _, s := range t.Streams {
		if s.Name == name {
			return s, true
		}
	}
	return jetstream.StreamConfig{}, false
}

// Consumer returns the named consumer.
func (t Topology) Consumer(name string) (Consumer, bool) {
	for _, c := range t.Consumers {
		if c.Name == name {
			return c, true
		}
	}
	return Consumer{}, false
}

// Ensure creates or updates every stream, consumer, bucket and object store
// of t. It is idempotent and safe to run from several processes at once.
func (t Topology) Ensure(ctx context.Context, js jetstream.JetStream) error {
	for _, s := range t.Streams {
		if _, err := js.CreateOrUpdateStream(ctx, s); err != nil {
			return fmt.Errorf("streams: stream %s: %w", s.Name, err)
		}
	}
	for _, c := range t.Consumers {
		cfg := c.Config()
		// A paused consumer (a staged or paused flow) stays paused: the
		// pause is the flow's state, not the topology's.
		if old, err := js.Consumer(ctx, c.Stream, c.Name); err == nil {
			cfg.PauseUntil = old.CachedInfo().Config.PauseUntil
		}
		if _, err := js.CreateOrUpdateConsumer(ctx, c.Stream, cfg); err != nil {
			return fmt.Errorf("streams: consumer %s/%s: %w", c.Stream, c.Name, err)
		}
	}
	for _, kv := range t.KV {
		var err error
		if IsIdempotencyBucket(kv.Bucket) {
			err = ensureMsgTTLBucket(ctx, js, kv)
		} else {
			_, err = js.CreateOrUpdateKeyValue(ctx, kv)
		}
		if err != nil {
			return fmt.Errorf("streams: kv %s: %w", kv.Bucket, err)
		}
	}
	for _, o := range t.Objects {
		if _, err := js.CreateOrUpdateObjectStore(ctx, o); err != nil {
			return fmt.Errorf("streams: object store %s: %w", o.Bucket, err)
		}
	}
	return nil
}

// ensureMsgTTLBucket creates or updates a bucket whose keys may carry
// their own TTL (the Nats-TTL header) without subject delete markers: an
// expired idempotency claim leaves nothing behind, not even a marker
// (which would be one more durable write per key). nats.go's KV config
// turns per-message TTL on only together with markers (LimitMarkerTTL),
// and CreateOrUpdateKeyValue would try to turn it off again, which the
// server refuses; so the bucket is created as a KV and its stream then
// allowed message TTLs, and later runs update that stream themselves.
func ensureMsgTTLBucket(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValueConfig) error {
	name := "KV_" + kv.Bucket
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := js.CreateKeyValue(ctx, kv); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			return err
		}
		s, err = js.Stream(ctx, name)
	}
	if err != nil {
		return err
	}
	cfg := s.CachedInfo().Config
	if cfg.AllowMsgTTL && cfg.Replicas == max(kv.Replicas, 1) && cfg.Description == kv.Description {
		return nil
	}
	cfg.AllowMsgTTL, cfg.Replicas, cfg.Description = true, max(kv.Replicas, 1), kv.Description
	_, err = js.UpdateStream(ctx, cfg)
	return err
}

// IsIdempotencyBucket reports whether bucket is one of the loader's
// idempotency shards.
func IsIdempotencyBucket(bucket string) bool {
	for i := range IdempotencyShards {
		if bucket == IdempotencyBucket(i) {
			return true
		}
	}
	return false
}

// Ensure makes the server match the default topology.
func Ensure(ctx context.Context, js jetstream.JetStream) error {
	return New(DefaultOptions()).Ensure(ctx, js)
}
