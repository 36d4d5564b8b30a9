package track

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/streams"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// IndexerConfig configures an Indexer.
type IndexerConfig struct {
	// Batch is the most audit records one pebble batch (one
	// write-ahead log write) holds, and the consumer's pull size (256 when 0).
	Batch int
	// Log receives failures; zerolog.Nop() when zero.
	Log zerolog.Logger
}

// Indexer files every audit event under its identifiers in an Index. It
// reads AUDIT through an ordered consumer from the index's watermark + 1:
// no durable consumer, because each console builds its own full index
// (a shared durable would split the records between them), and an empty
// or wiped index dir rebuilds from AUDIT's first record. What arrived
// together is one pebble batch, the watermark in it: a crash loses no
// record (whatever the log lost is after the watermark it kept) and a
// re-read writes the same keys.
type Indexer struct {
	js  jetstream.JetStream
	idx *Index
	cfg IndexerConfig
}

// NewIndexer returns an indexer of AUDIT on js into idx.
func NewIndexer(js jetstream.JetStream, idx *Index, cfg IndexerConfig) *Indexer {
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	return &Indexer{js: js, idx: idx, cfg: cfg}
}

// Run indexes until ctx ends. ready is called once AUDIT is being read.
func (x *Indexer) Run(ctx context.Context, ready func()) error {
	for ctx.Err() == nil {
		err := x.follow(ctx, ready)
		ready = nil
		if ctx.Err() != nil {
			return nil
		}
		x.cfg.Log.Warn().Err(err).Msg("track indexer: reading AUDIT again in a second")
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

// IndexerConsumerPrefix names the indexer's ordered consumer on AUDIT
// (IndexerConsumerPrefix-<random>_<n>), so an operator listing AUDIT's consumers
// sees whose it is: a live reader of a running console, not a backlog.
const IndexerConsumerPrefix = "sinew-track-index"

// follow reads AUDIT from the watermark until ctx ends or a failure.
// The ordered consumer delivers into a buffer; each batch is what the
// buffer holds when the previous commit ends (up to Batch): one record
// when AUDIT is quiet, large batches (few log writes) when it is busy.
func (x *Indexer) follow(ctx context.Context, ready func()) error {
	wm, err := x.idx.Watermark()
	if err != nil {
		return err
	}
	cons, err := x.js.OrderedConsumer(ctx, streams.Audit, jetstream.OrderedConsumerConfig{
		NamePrefix:    IndexerConsumerPrefix + "-" + rand.Text()[:10], // one per indexer: consoles share AUDIT
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: wm + 1})
	if err != nil {
		return fmt.Errorf("track indexer: AUDIT: %w", err)
	}
	buf := make(chan jetstream.Msg, 2*x.cfg.Batch)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case buf <- m:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(x.cfg.Batch), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		x.cfg.Log.Debug().Err(err).Msg("track indexer: AUDIT consumer") // the ordered consumer recovers by itself
	}))
	if err != nil {
		return fmt.Errorf("track indexer: AUDIT: %w", err)
	}
	defer cc.Stop()
	if ready != nil {
		ready()
	}
	for {
		var m jetstream.Msg
		select {
		case <-ctx.Done():
			return nil
		case m = <-buf:
		}
		b := x.idx.newBatch()
		last := wm
		for n := 0; m != nil; n++ {
			meta, err := m.Metadata()
			if err != nil {
				b.b.Close()
				return fmt.Errorf("track indexer: %w", err)
			}
			if seq := meta.Sequence.Stream; seq > last {
				if err := x.add(b, seq, m.Data()); err != nil {
					b.b.Close()
					return err
				}
				last = seq
			}
			m = nil
			if n+1 < x.cfg.Batch {
				select {
				case m = <-buf:
				default:
				}
			}
		}
		if last == wm {
			b.b.Close()
			continue
		}
		if err := b.commit(last); err != nil {
			return err
		}
		wm = last
	}
}

// add files the events of the audit record at seq.
func (x *Indexer) add(b batch, seq uint64, data []byte) error {
	var rec sinewv1.AuditRecord
	if err := proto.Unmarshal(data, &rec); err != nil {
		return nil // not an audit record: audit verify names it; nothing to index
	}
	events, err := audit.Events(&rec)
	if err != nil {
		return nil
	}
	for i, ev := range events {
		if err := b.add(seq, i, Entries(ev, seq)); err != nil {
			return err
		}
	}
	return nil
}
