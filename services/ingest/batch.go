package ingest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/resolute"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/telemetry"
)

// batchFile is one file offered by a batch source (the drop folder, an
// SFTP directory). The intake path is the same for every source: see
// batchTaker.take.
type batchFile interface {
	// Name is the file's name (no directory).
	Name() string
	// Open opens the file for reading from its start; it is read twice.
	Open() (io.ReadSeekCloser, error)
	// Archive moves the file out of the way once it is committed:
	// done/<name>.<suffix>.
	Archive(suffix string) error
}

// batchTaker commits batch files: each is stored whole in the object store
// under its SHA-256, announced on batch.in.<flow> (message id: the hash),
// recorded as seen, and only then archived by its source. A file seen
// before (same bytes, any name) is archived as a duplicate and processed
// once. A crash at any step leaves the file in place, and every step can
// be repeated.
type batchTaker struct {
	bus  *bus.Bus
	obj  jetstream.ObjectStore
	seen jetstream.KeyValue
}

func newBatchTaker(ctx context.Context, b *bus.Bus) (*batchTaker, error) {
	js := b.JetStream()
	obj, err := js.ObjectStore(ctx, streams.ObjBatchFiles)
	if err != nil {
		return nil, fmt.Errorf("ingest: object store %s: %w", streams.ObjBatchFiles, err)
	}
	seen, err := js.KeyValue(ctx, streams.KVBatchSeen)
	if err != nil {
		return nil, fmt.Errorf("ingest: bucket %s: %w", streams.KVBatchSeen, err)
	}
	return &batchTaker{bus: b, obj: obj, seen: seen}, nil
}

// partial reports whether a name is one a sender writes under before
// renaming it into place: dot-names and .part/.tmp suffixes are never taken.
func partial(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".part") || strings.HasSuffix(name, ".tmp")
}

// dropWatcher takes batch files from the drop folders.
type dropWatcher struct {
	cfg   Config
	taker *batchTaker
}

func newDropWatcher(cfg Config, t *batchTaker) (*dropWatcher, error) {
	for dir := range cfg.Drops {
		if err := os.MkdirAll(filepath.Join(cfg.DropDir, dir, "done"), 0o750); err != nil {
			return nil, fmt.Errorf("ingest: drop folder: %w", err)
		}
	}
	return &dropWatcher{cfg: cfg, taker: t}, nil
}

// run polls the drop folders until ctx ends.
func (w *dropWatcher) run(ctx context.Context) {
	every := w.cfg.DropPoll
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for dir, flow := range w.cfg.Drops {
			w.scan(ctx, filepath.Join(w.cfg.DropDir, dir), flow)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// scan takes every settled file of one folder. Writers should write under
// a dot-name or with a .part/.tmp suffix and rename when done; files still
// changing (modified in the last poll interval) wait for the next scan.
func (w *dropWatcher) scan(ctx context.Context, dir, flow string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		w.taker.bus.Logger().Warn().Err(err).Str("dir", dir).Msg("drop folder unreadable")
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || partial(name) {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < w.cfg.DropSettle {
			continue
		}
		if err := w.taker.take(ctx, localFile{dir: dir, name: name}, flow, "drop:"+filepath.Base(dir)); err != nil && err != errDuplicate && ctx.Err() == nil {
			w.taker.bus.Logger().Error().Err(err).Str("file", name).Str("flow", flow).Msg("batch file not taken; will retry")
		}
	}
}

// localFile is a file in a drop folder.
type localFile struct{ dir, name string }

func (f localFile) Name() string                     { return f.name }
func (f localFile) Open() (io.ReadSeekCloser, error) { return os.Open(filepath.Join(f.dir, f.name)) }
func (f localFile) Archive(suffix string) error {
	return os.Rename(filepath.Join(f.dir, f.name), filepath.Join(f.dir, "done", f.name+"."+suffix))
}

// seenRecord is what batch_seen keeps per file hash.
type seenRecord struct {
	File      string    `json:"file"`
	Flow      string    `json:"flow"`
	Source    string    `json:"source"`
	At        time.Time `json:"at"`
	StreamSeq uint64    `json:"stream_seq"`
}

// errDuplicate is returned by take for a file whose bytes were taken
// before; errNotArchived for a file committed (or a duplicate) that its
// source could not move out of the way.
var (
	errDuplicate   = errors.New("batch file already ingested")
	errNotArchived = errors.New("batch file committed but not archived")
)

// take commits one batch file from any source: hash, object store, manifest,
// batch_seen, audit, then archive. It is the only way a batch file enters
// Sinew. It returns errDuplicate (after archiving it as such) for bytes
// already taken.
func (w *batchTaker) take(ctx context.Context, bf batchFile, flow, source string) (err error) {
	// The root of the batch's trace, as "hl7 receive" is a message's: the
	// flow and the source only (a file name can name a patient or a date).
	ctx, span := w.bus.Tracer("github.com/sinewhq/sinew/services/ingest").Start(ctx, "batch receive", trace.WithSpanKind(trace.SpanKindConsumer))
	defer func() {
		if err != nil && !errors.Is(err, errDuplicate) {
			span.SetStatus(codes.Error, "batch not taken")
		}
		span.End()
	}()
	if span.IsRecording() {
		span.SetAttributes(attribute.String("sinew.flow", telemetry.SafeLabel(flow)), attribute.String("sinew.batch.source", telemetry.SafeLabel(source)))
	}
	name := bf.Name()
	f, err := bf.Open()
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	lines, size, err := countLines(io.TeeReader(f, h))
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	log := w.bus.Logger().With().Str("file", name).Str("sha256", sum).Str("flow", flow).Str("source", source).Logger()

	seenKey := flow + "." + sum
	if _, err := w.seen.Get(ctx, seenKey); err == nil {
		log.Warn().Msg("batch file already ingested: archived as a duplicate")
		_ = w.audit(ctx, flow, sum, name, "duplicate", "same bytes already ingested ("+source+")")
		if err := bf.Archive("duplicate-" + sum[:12]); err != nil {
			return fmt.Errorf("%s: %w (duplicate): %w", name, errNotArchived, err)
		}
		return errDuplicate
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	// Hash again what is uploaded: a file still being written must not be
	// stored under the hash of other bytes.
	h2 := sha256.New()
	if _, err := w.obj.Put(ctx, jetstream.ObjectMeta{Name: sum, Description: name,
		Headers: map[string][]string{"sinew-flow": {flow}, "sinew-file": {name}, "sinew-source": {source}}}, io.TeeReader(f, h2)); err != nil {
		return fmt.Errorf("store %s: %w", name, err)
	}
	if hex.EncodeToString(h2.Sum(nil)) != sum {
		_ = w.obj.Delete(ctx, sum)
		return fmt.Errorf("%s changed while it was read; taken again on the next scan", name)
	}
	ev := &sinewv1.BatchManifest{
		Envelope: &sinewv1.Envelope{
			EventId: bus.EventID("batch:" + sum), Flow: flow, SourceSystem: source, SourceId: name,
			IdempotencyKey: "batch:" + sum, ReceivedAt: timestamppb.Now(),
			BusinessKeys: sinewv1.Keys(map[string]string{"file": name, "sha256": sum, "format": resolute.FormatOf(name)}),
		},
		ObjectKey: sum, Sha256: sum, SizeBytes: size, LineCount: lines, FileName: name,
	}
	ack, err := w.bus.Publish(ctx, streams.BatchSubject(flow), "batch:"+flow+":"+sum, ev)
	if err != nil {
		return fmt.Errorf("announce %s: %w", name, err)
	}
	rec, _ := json.Marshal(seenRecord{File: name, Flow: flow, Source: source, At: time.Now().UTC(), StreamSeq: ack.Sequence})
	if _, err := w.seen.Put(ctx, seenKey, rec); err != nil {
		return fmt.Errorf("record %s: %w", name, err)
	}
	if err := w.audit(ctx, flow, sum, name, "stored", fmt.Sprintf("%s: %d lines, %d bytes, BATCH_IN seq %d", source, lines, size, ack.Sequence)); err != nil {
		return err
	}
	log.Info().Int64("lines", lines).Uint64("stream_seq", ack.Sequence).Msg("batch file ingested")
	// The hash in the archived name: a sender reusing a file name does not
	// overwrite yesterday's copy.
	if err := bf.Archive(sum[:12]); err != nil {
		return fmt.Errorf("%s: %w: %w", name, errNotArchived, err)
	}
	return nil
}

func (w *batchTaker) audit(ctx context.Context, flow, sum, name, outcome, detail string) error {
	return w.bus.Audit().Write(ctx, &sinewv1.AuditEvent{
		Actor: w.bus.Service(), Action: "receive", Flow: flow, Hop: "ingest", Outcome: outcome,
		IdempotencyKey: "batch:" + sum, Stream: streams.BatchIn, Subject: streams.BatchSubject(flow),
		BusinessKeys: sinewv1.Keys(map[string]string{"file": name, "sha256": sum}), Detail: detail,
	})
}

// countLines counts newline-terminated lines (and a last unterminated one).
func countLines(r io.Reader) (lines, size int64, err error) {
	br := bufio.NewReaderSize(r, 256<<10)
	buf := make([]byte, 256<<10)
	last := byte('\n')
	for {
		n, err := br.Read(buf)
		if n > 0 {
			lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
			size += int64(n)
			last = buf[n-1]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, 0, err
		}
	}
	if size > 0 && last != '\n' {
		lines++
	}
	return lines, size, nil
}
