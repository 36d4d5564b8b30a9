package resolutegl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
	"github.com/sinewhq/sinew/services/transform/registry"
)

// sourceSystem is the system the flow's files come from (Envelope.SourceSystem).
const sourceSystem = "epic.resolute"

// ImportKind is the kind of the journal-batch command (fusion.cmd.<flow>.import).
const ImportKind = "import"

// Entry registers the flow (registry/all): it maps batch files.
func Entry() registry.Entry { return EntryFor(Flow) }

// EntryFor registers flow id as a Resolute GL flow: Resolute files and
// Clarity extracts mapped by this package with id's own flows.yaml
// settings (gl, resolute, clarity), each batch's journal-batch command
// posted by the loader's Journal Import. A second GL interface's
// flows/<id>/ package is Entry() { return resolutegl.EntryFor(Flow) }.
func EntryFor(id string) registry.Entry {
	return registry.Entry{ID: id,
		NewBatch: func(ctx context.Context, f *flows.Flow, env registry.Env) (registry.Batch, error) {
			return NewBatch(ctx, f, env)
		},
		Fusion: map[string]registry.Op{ImportKind: registry.OpJournalImport},
	}
}

// Batcher is the flow's batch orchestration: a manifest from BATCH_IN (a
// Resolute file or a Clarity extract) becomes a validated, mapped FBDI
// file in the object store and a journal-batch command on FUSION_CMD; a
// batch that fails validation is dead-lettered with its line-numbered
// report.
type Batcher struct {
	flow string
	env  registry.Env
	opts Options
}

// IdempotencyKey is the journal batch command's key: one batch id is posted once.
func IdempotencyKey(batchID string) string { return IdempotencyKeyOf(Flow, batchID) }

// IdempotencyKeyOf is IdempotencyKey for flow.
func IdempotencyKeyOf(flow, batchID string) string { return flow + ":" + sourceSystem + ":" + batchID }

// NewBatch builds the flow's batch side from its flows.yaml entry f,
// loading the configured COA crosswalk into KV on a first run.
func NewBatch(ctx context.Context, f *flows.Flow, env registry.Env) (*Batcher, error) {
	if f == nil || f.GL == nil {
		return nil, errors.New("the flow has no gl settings")
	}
	xws := env.Crosswalks
	xw, err := xws.Current(ctx, crosswalk.COA)
	if errors.Is(err, crosswalk.ErrNoVersion) && env.Crosswalk != "" {
		data, rerr := os.ReadFile(env.Crosswalk)
		if rerr != nil {
			return nil, fmt.Errorf("no crosswalk in KV and %w", rerr)
		}
		xw, err = xws.Load(ctx, crosswalk.COA, data, "")
	}
	if err != nil {
		return nil, err
	}
	o := Options{Flow: f.ID, Layout: resolute.DefaultLayout(), GL: *f.GL, Crosswalk: xw}
	if env.Chart != "" {
		if o.Chart, err = crosswalk.ReadChart(env.Chart); err != nil {
			return nil, err
		}
	}
	if f.Resolute != nil {
		o.Layout = *f.Resolute
	}
	if f.Clarity != nil {
		o.Clarity = *f.Clarity
	}
	return &Batcher{flow: f.ID, env: env, opts: o}, nil
}

// Batch maps one Resolute file: object store → temp file → validate and
// map (two passes) → FBDI zip in the object store → command on FUSION_CMD.
func (b *Batcher) Batch(ctx context.Context, d *bus.Delivery, m *sinewv1.BatchManifest) error {
	if len(m.Sha256) != 64 {
		return bus.Permanent(reason.Wrap(reason.TransformBatchInvalid, fmt.Errorf("manifest without a SHA-256 (%d characters)", len(m.Sha256))))
	}
	js := b.env.JS
	files, err := js.ObjectStore(ctx, streams.ObjBatchFiles)
	if err != nil {
		return err
	}
	src, err := os.CreateTemp(b.env.TempDir, "batch-*.txt")
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
	zipFile, err := os.CreateTemp(b.env.TempDir, "fbdi-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(zipFile.Name())
	defer zipFile.Close()
	// The crosswalk in force now: a fix loaded after a rejection applies to the replay.
	opts := b.opts
	// DATE_CREATED from the receipt, not the clock: a redelivered batch
	// rebuilds the same bytes under the same object key.
	if ra := m.GetEnvelope().GetReceivedAt(); ra != nil {
		opts.Created = ra.AsTime()
	}
	xw, err := b.env.Crosswalks.Current(ctx, crosswalk.COA)
	if err != nil {
		return fmt.Errorf("current crosswalk: %w", err) // retried: never map with a stale table
	}
	opts.Crosswalk = xw
	// Valid combinations pulled from Fusion (`sinew crosswalk chart pull`)
	// replace the configured chart file.
	if chart, err := b.env.Crosswalks.Chart(ctx); err == nil {
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
	var res *Result
	if format == resolute.FormatResolute {
		res, err = Build(ctx, src, zipFile, opts)
	} else {
		res, err = BuildClarity(ctx, format, src, b.env.TempDir, zipFile, opts)
	}
	if err != nil {
		return err
	}
	if !res.Accepted {
		return b.reject(ctx, files, m, res)
	}
	if err := b.claimBatch(ctx, res.BatchID, m.Sha256); err != nil {
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
	cmd := b.command(m, res, key)
	d.AuditDetail = fmt.Sprintf("batch %s: %d lines, debits %s = credits %s, %d journals, crosswalk %s -> %s",
		res.BatchID, res.Lines, res.Debit, res.Credit, len(res.Groups), res.CrosswalkVersion, key)
	_, err = b.env.Publisher.Publish(ctx, streams.FusionCmdSubject(b.flow, ImportKind), "fbdi:"+m.Sha256, cmd)
	return err
}

// command is the journal batch command for a mapped batch stored under key.
func (b *Batcher) command(m *sinewv1.BatchManifest, res *Result, key string) *sinewv1.JournalBatch {
	cmd := &sinewv1.JournalBatch{
		Envelope: &sinewv1.Envelope{
			EventId: bus.EventID("fbdi:" + m.Sha256), Flow: b.flow, SourceSystem: sourceSystem,
			SourceId: res.BatchID, IdempotencyKey: IdempotencyKeyOf(b.flow, res.BatchID), ReceivedAt: m.GetEnvelope().GetReceivedAt(),
			CrosswalkVersion: res.CrosswalkVersion, CausedBy: m.GetEnvelope().GetEventId(),
			BusinessKeys: sinewv1.Keys(map[string]string{"batch_id": res.BatchID, "sha256": m.Sha256, "lines": fmt.Sprint(res.Lines),
				"debit": res.Debit.String(), "credit": res.Credit.String()}),
		},
		BatchId: res.BatchID, Ledger: b.opts.GL.Ledger, JeSource: b.opts.GL.Source, JeCategory: b.opts.GL.Category,
		AccountingDate: res.Report.Header.PostingDate.Format("2006-01-02"), ObjectKey: key,
	}
	for _, g := range res.Groups {
		cmd.Journals = append(cmd.Journals, &sinewv1.Journal{GroupId: g.ID, Name: g.Journal})
	}
	return cmd
}

// claimBatch records that batch id batchID is this content. The same id
// again with other bytes (a re-extract, changed line endings) would post
// the batch twice: it is refused for review instead.
func (b *Batcher) claimBatch(ctx context.Context, batchID, sum string) error {
	kv, err := b.env.JS.KeyValue(ctx, streams.KVBatchSeen)
	if err != nil {
		return err
	}
	key := b.flow + ".batch." + bus.HashKey(batchID)
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
func (b *Batcher) reject(ctx context.Context, files jetstream.ObjectStore, m *sinewv1.BatchManifest, res *Result) error {
	all := res.AllFindings()
	var sb strings.Builder
	fmt.Fprintf(&sb, "batch %s (file %s, sha256 %s) rejected: %d findings; nothing was posted\n",
		res.BatchID, m.FileName, m.Sha256, len(all)+res.Report.FindingsDropped)
	for _, f := range all {
		sb.WriteString(f.String())
		sb.WriteByte('\n')
	}
	reportKey := m.Sha256 + ".report.txt"
	if _, err := files.PutString(ctx, reportKey, sb.String()); err != nil {
		return fmt.Errorf("store rejection report: %w", err) // retried: the dead letter must point at it
	}
	found := make([]string, 0, min(len(all), batchstate.MaxFindings))
	for _, f := range all[:min(len(all), batchstate.MaxFindings)] {
		found = append(found, f.String())
	}
	if err := b.recordRejected(ctx, m, res.BatchID, found, len(all)+res.Report.FindingsDropped, reportKey); err != nil {
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
func (b *Batcher) recordRejected(ctx context.Context, m *sinewv1.BatchManifest, batchID string, findings []string, total int, report string) error {
	st, err := batchstate.Open(ctx, b.env.JS)
	if err != nil {
		return err
	}
	received := time.Now()
	if ra := m.GetEnvelope().GetReceivedAt(); ra != nil {
		received = ra.AsTime()
	}
	if err := st.RecordRejectedFile(ctx, b.flow, batchID, m.Sha256, m.FileName, received, findings, total, report); err != nil {
		return fmt.Errorf("record rejected batch: %w", err) // retried: the rejection must be listed
	}
	return nil
}
