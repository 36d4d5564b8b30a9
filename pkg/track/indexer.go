package track

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/streams"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// IndexerConfig configures an Indexer.
type IndexerConfig struct {
	// Batch is how many audit records one fetch takes (64 when 0; a
	// record may hold many events, and all of a fetch's index records are
	// in flight at once).
	Batch int
	// Log receives failures; zerolog.Nop() when zero.
	Log zerolog.Logger
}

// Indexer files every audit event under its identifiers in TRACK, reading
// AUDIT through the durable consumer streams.TrackIndexer. An audit record
// is acked once all its index records are stored; a crash in between
// redelivers it, and the records' message ids (audit sequence, key) make
// the second publish a duplicate JetStream drops. The index records of a
// fetch are stored in atomic batches (one fsync each, see store).
type Indexer struct {
	js  jetstream.JetStream
	cfg IndexerConfig
}

// NewIndexer returns an indexer on js.
func NewIndexer(js jetstream.JetStream, cfg IndexerConfig) *Indexer {
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	return &Indexer{js: js, cfg: cfg}
}

// Run indexes until ctx ends. ready is called once the consumer is bound.
func (x *Indexer) Run(ctx context.Context, ready func()) error {
	var cons jetstream.Consumer
	for {
		c, err := x.js.Consumer(ctx, streams.Audit, streams.TrackIndexer)
		if err == nil {
			cons = c
			break
		}
		x.cfg.Log.Warn().Err(err).Msg("track indexer: consumer not there yet")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	if ready != nil {
		ready()
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(x.cfg.Batch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			x.cfg.Log.Warn().Err(err).Msg("track indexer: fetch")
			time.Sleep(time.Second)
			continue
		}
		var recs []record
		for m := range batch.Messages() {
			msgs, err := x.records(m)
			recs = append(recs, record{m, msgs, err})
		}
		x.store(ctx, recs)
	}
	return nil
}

// record is one audit record of a fetch and its index records.
type record struct {
	m    jetstream.Msg
	msgs []*nats.Msg
	err  error
}

// store stores the index records of a fetch and acks each audit record
// whose index records are all stored (naks the others for redelivery).
// With sync_always every JetStream write is an fsync, and a message's
// hops file about two index records: one at a time, TRACK took more
// fsyncs than the rest of the pipeline together. So the records of
// consecutive audit records go as one atomic batch (streams.PublishAtomic,
// one fsync for the lot). A batch the stream refuses (a duplicate among
// it, as after a crash between storing and acking; an older TRACK without
// atomic publish) is published one record at a time, each deduplicated by
// its message id.
func (x *Indexer) store(ctx context.Context, recs []record) {
	settle := func(rs []record, err error) {
		for _, r := range rs {
			if err := cmp.Or(err, r.err); err != nil {
				x.cfg.Log.Warn().Err(err).Msg("track indexer: record left for redelivery")
				_ = r.m.NakWithDelay(time.Second)
				continue
			}
			_ = r.m.Ack()
		}
	}
	var group []record
	var msgs []*nats.Msg
	flush := func() {
		if len(group) == 0 {
			return
		}
		err := x.atomic(ctx, msgs)
		if streams.IsBatchRefusal(err) {
			err = x.oneByOne(ctx, msgs)
		}
		settle(group, err)
		group, msgs = nil, nil
	}
	for _, r := range recs {
		if r.err != nil || len(r.msgs) > streams.MaxAtomicBatch {
			flush()
			if r.err == nil {
				r.err = x.oneByOne(ctx, r.msgs)
			}
			settle([]record{r}, nil)
			continue
		}
		if len(msgs)+len(r.msgs) > streams.MaxAtomicBatch {
			flush()
		}
		group = append(group, r)
		msgs = append(msgs, r.msgs...)
	}
	flush()
}

// atomic stores msgs as one atomic batch.
func (x *Indexer) atomic(ctx context.Context, msgs []*nats.Msg) error {
	if len(msgs) == 0 {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := streams.PublishAtomic(pctx, x.js.Conn(), msgs); err != nil {
		return fmt.Errorf("index records: %w", err)
	}
	return nil
}

// oneByOne publishes msgs without waiting, then waits for every ack.
func (x *Indexer) oneByOne(ctx context.Context, msgs []*nats.Msg) error {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, msg := range msgs {
		f, err := x.js.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("index record: %w", err)
		}
		futures = append(futures, f)
	}
	return wait(ctx, futures)
}

// records builds the index records of one audit record.
func (x *Indexer) records(m jetstream.Msg) ([]*nats.Msg, error) {
	meta, err := m.Metadata()
	if err != nil {
		return nil, err
	}
	var rec sinewv1.AuditRecord
	if err := proto.Unmarshal(m.Data(), &rec); err != nil {
		return nil, nil // not an audit record: audit verify names it; nothing to index
	}
	events, err := audit.Events(&rec)
	if err != nil {
		return nil, nil
	}
	var msgs []*nats.Msg
	for i, ev := range events {
		for _, e := range Entries(ev, meta.Sequence.Stream) {
			body, err := json.Marshal(e.Hop)
			if err != nil {
				return nil, err
			}
			key := Key(e.Value)
			msg := &nats.Msg{Subject: streams.TrackSubject(key), Data: body, Header: nats.Header{}}
			msg.Header.Set(jetstream.MsgIDHeader, "track:"+strconv.FormatUint(meta.Sequence.Stream, 10)+":"+strconv.Itoa(i)+":"+key)
			msgs = append(msgs, msg)
		}
	}
	return msgs, nil
}

// wait waits for every future's ack.
func wait(ctx context.Context, futures []jetstream.PubAckFuture) error {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("index record: %w", err)
		case <-wctx.Done():
			return errors.New("index record: no ack")
		}
	}
	return nil
}
