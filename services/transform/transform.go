// Package transform maps ingested events to canonical commands, one mapper
// per flow (flows/<flow>/), and publishes them on FUSION_CMD. It runs the
// resolute-gl flow: a batch manifest from BATCH_IN (a Resolute file or a
// Clarity extract) becomes a validated, mapped FBDI file in the object
// store and a journal-batch command; a batch that fails validation is
// dead-lettered with its line-numbered report. And it runs the real-time
// HL7 flows of flows.yaml (willow-inventory, optime-materials,
// beaker-inventory; hl7.go): an HL7_IN message, routed by sending
// application, becomes inventory transaction, item or supplier commands,
// mapped with the crosswalks in KV. Beaker's stock-count files need no
// mapping (the reconciler reads them). FHIR_IN and EPIC_CMD flows are not
// built yet.
package transform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/batchstate"
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/resolute"
	"github.com/sinewhq/sinew/pkg/streams"
	resolutegl "github.com/sinewhq/sinew/services/transform/flows/resolute-gl"
)

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
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{ServiceConfig: bus.DefaultServiceConfig(), Workers: 4, FlowsFile: "flows.yaml", Crosswalk: "deploy/demo/coa.csv", Chart: "deploy/demo/chart.csv",
		HL7Workers: 16, ItemCrosswalk: "deploy/demo/items.csv", DepartmentCrosswalk: "deploy/demo/departments.csv"}
	c.HTTPAddr = "127.0.0.1:9102"
	return c
}

// Service is the running transform service.
type Service struct {
	cfg  Config
	bus  *bus.Bus
	gl   *resolutegl.Options // nil when the flow is not configured here
	xw   *crosswalk.Store
	hl7s *hl7Side // nil when no HL7 flow is configured here
	// onhand are the flows whose batch files are stock counts (flows.yaml
	// reconcile.onhand): acknowledged for the reconciler, not mapped.
	onhand []string
	ready  bus.Started
}

// New returns the service on bus b. A flow whose settings cannot be read
// is left off with a warning, so the other flows still run.
func New(cfg Config, b *bus.Bus) (*Service, error) {
	s := &Service{cfg: cfg, bus: b}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := b.JetStream().KeyValue(ctx, streams.KVCrosswalk)
	if err != nil {
		return nil, fmt.Errorf("transform: bucket %s: %w", streams.KVCrosswalk, err)
	}
	s.xw = crosswalk.NewStore(kv)
	if inv, err := flows.Load(cfg.FlowsFile); err == nil {
		for _, f := range inv.Flows {
			if f.Reconcile.Onhand {
				s.onhand = append(s.onhand, f.ID)
			}
		}
	}
	gl, err := loadResoluteGL(ctx, cfg, s.xw)
	if err != nil {
		b.Logger().Warn().Err(err).Msg("resolute-gl flow not configured: batch manifests wait in BATCH_IN")
	} else {
		s.gl = gl
	}
	if h, err := newHL7Side(ctx, cfg, s.xw); err != nil {
		b.Logger().Warn().Err(err).Msg("HL7 flows not configured: HL7_IN messages wait")
	} else {
		s.hl7s = h
	}
	return s, nil
}

func loadResoluteGL(ctx context.Context, cfg Config, xws *crosswalk.Store) (*resolutegl.Options, error) {
	inv, err := flows.Load(cfg.FlowsFile)
	if err != nil {
		return nil, err
	}
	flow, ok := inv.Get(resolutegl.Flow)
	if !ok || flow.GL == nil {
		return nil, fmt.Errorf("%s has no %s flow with gl settings", cfg.FlowsFile, resolutegl.Flow)
	}
	xw, err := xws.Current(ctx, crosswalk.COA)
	if errors.Is(err, crosswalk.ErrNoVersion) && cfg.Crosswalk != "" {
		data, rerr := os.ReadFile(cfg.Crosswalk)
		if rerr != nil {
			return nil, fmt.Errorf("no crosswalk in KV and %w", rerr)
		}
		xw, err = xws.Load(ctx, crosswalk.COA, data, "")
	}
	if err != nil {
		return nil, err
	}
	o := &resolutegl.Options{Layout: resolute.DefaultLayout(), GL: *flow.GL, Crosswalk: xw}
	if cfg.Chart != "" {
		if o.Chart, err = crosswalk.ReadChart(cfg.Chart); err != nil {
			return nil, err
		}
	}
	if flow.Resolute != nil {
		o.Layout = *flow.Resolute
	}
	if flow.Clarity != nil {
		o.Clarity = *flow.Clarity
	}
	return o, nil
}

// Run consumes until ctx ends: batch manifests (BATCH_IN) and HL7
// messages (HL7_IN), each on its own consumer.
func (s *Service) Run(ctx context.Context) error {
	var loops []bus.Loop
	topo := streams.New(s.cfg.Topology)
	if s.gl != nil {
		c, ok := topo.Consumer(streams.TransformBatch)
		if !ok {
			return errors.New("transform: no batch consumer in the topology")
		}
		loops = append(loops, func(ctx context.Context, ready func()) error {
			return s.bus.Consume(ctx, c, bus.Proto(s.batch), bus.ConsumeOptions{
				Workers: 1, // one batch at a time: files are large, order is the drop order
				Buffer:  1, // queued batches would wait out their AckWait behind a long one
				Ready:   ready,
			})
		})
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
			loops = append(loops, func(ctx context.Context, ready func()) error {
				return s.bus.Consume(ctx, fc, hl7, bus.ConsumeOptions{Workers: max(s.cfg.HL7Workers, 1), Ready: ready})
			})
		}
	}
	return bus.RunLoops(ctx, &s.ready, loops...)
}

// Ready is nil once consuming.
func (s *Service) Ready() error { return s.ready.Ready(s.bus, "transform") }

// batch maps one Resolute file: object store → temp file → validate and
// map (two passes) → FBDI zip in the object store → command on FUSION_CMD.
func (s *Service) batch(ctx context.Context, d *bus.Delivery, m *sinewv1.BatchManifest) error {
	if f := m.GetEnvelope().GetFlow(); f != resolutegl.Flow {
		// A stock-count flow's files (reconcile.onhand) carry nothing to
		// post: the reconciler reads them from the object store itself.
		if slices.Contains(s.onhand, f) {
			d.AuditDetail = fmt.Sprintf("file %s (sha256 %.12s): nothing to map; stock count, compared with Fusion's on-hand by the reconciler", m.GetFileName(), m.GetSha256())
			return nil
		}
		return bus.Permanent(reason.Wrap(reason.TransformNoMapper, fmt.Errorf("no mapper for flow %q", f)))
	}
	if len(m.Sha256) != 64 {
		return bus.Permanent(reason.Wrap(reason.TransformBatchInvalid, fmt.Errorf("manifest without a SHA-256 (%d characters)", len(m.Sha256))))
	}
	js := s.bus.JetStream()
	files, err := js.ObjectStore(ctx, streams.ObjBatchFiles)
	if err != nil {
		return err
	}
	src, err := os.CreateTemp(s.cfg.TempDir, "batch-*.txt")
	if err != nil {
		return err
	}
	defer os.Remove(src.Name())
	defer src.Close()
	obj, err := files.Get(ctx, m.ObjectKey)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return bus.Permanent(reason.Wrap(reason.TransformBatchInvalid, fmt.Errorf("batch file %s is not in the object store", m.ObjectKey)))
	} else if err != nil {
		return err
	}
	_, err = io.Copy(src, obj)
	obj.Close()
	if err != nil {
		return err
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return err
	}
	zipFile, err := os.CreateTemp(s.cfg.TempDir, "fbdi-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(zipFile.Name())
	defer zipFile.Close()
	// The crosswalk in force now: a fix loaded after a rejection applies to the replay.
	opts := *s.gl
	// DATE_CREATED from the receipt, not the clock: a redelivered batch
	// rebuilds the same bytes under the same object key.
	if ra := m.GetEnvelope().GetReceivedAt(); ra != nil {
		opts.Created = ra.AsTime()
	}
	xw, err := s.xw.Current(ctx, crosswalk.COA)
	if err != nil {
		return fmt.Errorf("current crosswalk: %w", err) // retried: never map with a stale table
	}
	opts.Crosswalk = xw
	// Valid combinations pulled from Fusion (`sinew crosswalk chart pull`)
	// replace the configured chart file.
	if chart, err := s.xw.Chart(ctx); err == nil {
		opts.Chart = chart
	} else if !errors.Is(err, crosswalk.ErrNoVersion) {
		return fmt.Errorf("chart: %w", err)
	}
	// A Clarity extract (CSV, Parquet) is converted to the Resolute record
	// stream first; the same checks and mapping then apply.
	format := m.GetEnvelope().BusinessKey("format")
	if format == "" {
		format = resolute.FormatOf(m.FileName)
	}
	var res *resolutegl.Result
	if format == resolute.FormatResolute {
		res, err = resolutegl.Build(ctx, src, zipFile, opts)
	} else {
		res, err = resolutegl.BuildClarity(ctx, format, src, s.cfg.TempDir, zipFile, opts)
	}
	if err != nil {
		return err
	}
	if !res.Accepted {
		return s.reject(ctx, files, m, res)
	}
	if err := s.claimBatch(ctx, res.BatchID, m.Sha256); err != nil {
		return err
	}
	// The crosswalk version is in the key: a redelivery mapped with another
	// version never overwrites the file a command already names.
	key := res.BatchID + "-" + m.Sha256[:12] + "-" + res.CrosswalkVersion + ".zip"
	fbdiStore, err := js.ObjectStore(ctx, streams.ObjFBDI)
	if err != nil {
		return err
	}
	if _, err := zipFile.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := fbdiStore.Put(ctx, jetstream.ObjectMeta{Name: key, Description: "GlInterface for " + res.BatchID}, zipFile); err != nil {
		return err
	}
	cmd := &sinewv1.JournalBatch{
		Envelope: &sinewv1.Envelope{
			EventId: bus.EventID("fbdi:" + m.Sha256), Flow: resolutegl.Flow, SourceSystem: "epic.resolute",
			SourceId: res.BatchID, IdempotencyKey: "resolute-gl:epic.resolute:" + res.BatchID, ReceivedAt: m.GetEnvelope().GetReceivedAt(),
			CrosswalkVersion: res.CrosswalkVersion, CausedBy: m.GetEnvelope().GetEventId(),
			BusinessKeys: sinewv1.Keys(map[string]string{"batch_id": res.BatchID, "sha256": m.Sha256, "lines": fmt.Sprint(res.Lines),
				"debit": res.Debit.String(), "credit": res.Credit.String()}),
		},
		BatchId: res.BatchID, Ledger: s.gl.GL.Ledger, JeSource: s.gl.GL.Source, JeCategory: s.gl.GL.Category,
		AccountingDate: res.Report.Header.PostingDate.Format("2006-01-02"), ObjectKey: key,
	}
	for _, g := range res.Groups {
		cmd.Journals = append(cmd.Journals, &sinewv1.Journal{GroupId: g.ID, Name: g.Journal})
	}
	d.AuditDetail = fmt.Sprintf("batch %s: %d lines, debits %s = credits %s, %d journals, crosswalk %s -> %s",
		res.BatchID, res.Lines, res.Debit, res.Credit, len(res.Groups), res.CrosswalkVersion, key)
	_, err = s.bus.Publish(ctx, streams.FusionCmdSubject(resolutegl.Flow, "import"), "fbdi:"+m.Sha256, cmd)
	return err
}

// claimBatch records that batch id batchID is this content. The same id
// again with other bytes (a re-extract, changed line endings) would post
// the batch twice: it is refused for review instead.
func (s *Service) claimBatch(ctx context.Context, batchID, sum string) error {
	kv, err := s.bus.JetStream().KeyValue(ctx, streams.KVBatchSeen)
	if err != nil {
		return err
	}
	key := resolutegl.Flow + ".batch." + bus.HashKey(batchID)
	if _, err := kv.Create(ctx, key, []byte(sum)); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return err
	}
	e, err := kv.Get(ctx, key)
	if err != nil {
		return err
	}
	if string(e.Value()) != sum {
		return bus.Permanent(reason.Wrap(reason.TransformBatchChanged, fmt.Errorf("batch %s was already mapped from other bytes (sha256 %s, now %s): not posted twice; review which file is right",
			batchID, string(e.Value())[:12], sum[:12])))
	}
	return nil // the same file again (a redelivery): go on, the command is deduplicated
}

// reject stores the batch's report next to the file and returns the
// permanent error the dead letter carries (or a transient one when the
// report could not be stored).
func (s *Service) reject(ctx context.Context, files jetstream.ObjectStore, m *sinewv1.BatchManifest, res *resolutegl.Result) error {
	all := res.AllFindings()
	var b strings.Builder
	fmt.Fprintf(&b, "batch %s (file %s, sha256 %s) rejected: %d findings; nothing was posted\n",
		res.BatchID, m.FileName, m.Sha256, len(all)+res.Report.FindingsDropped)
	for _, f := range all {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	reportKey := m.Sha256 + ".report.txt"
	if _, err := files.PutString(ctx, reportKey, b.String()); err != nil {
		return fmt.Errorf("store rejection report: %w", err) // retried: the dead letter must point at it
	}
	found := make([]string, 0, min(len(all), batchstate.MaxFindings))
	for _, f := range all[:min(len(all), batchstate.MaxFindings)] {
		found = append(found, f.String())
	}
	if err := s.recordRejected(ctx, m, res.BatchID, found, len(all)+res.Report.FindingsDropped, reportKey); err != nil {
		return err
	}
	first := ""
	if len(all) > 0 {
		first = "; first: " + all[0].String()
	}
	return bus.Permanent(reason.Wrap(reason.TransformBatchRejected, fmt.Errorf("batch %s rejected with %d findings (report: object %s in %s)%s",
		res.BatchID, len(all)+res.Report.FindingsDropped, reportKey, streams.ObjBatchFiles, first)))
}

// recordRejected lists a refused file in batch_state (`sinew batches`,
// `sinew recon report`), keyed by its hash: a corrected file with the
// same batch id is a batch of its own.
func (s *Service) recordRejected(ctx context.Context, m *sinewv1.BatchManifest, batchID string, findings []string, total int, report string) error {
	st, err := batchstate.Open(ctx, s.bus.JetStream())
	if err != nil {
		return err
	}
	received := time.Now()
	if ra := m.GetEnvelope().GetReceivedAt(); ra != nil {
		received = ra.AsTime()
	}
	if err := st.RecordRejectedFile(ctx, resolutegl.Flow, batchID, m.Sha256, m.FileName, received, findings, total, report); err != nil {
		return fmt.Errorf("record rejected batch: %w", err) // retried: the rejection must be listed
	}
	return nil
}
