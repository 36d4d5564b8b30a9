package track

import (
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
// the second publish a duplicate JetStream drops.
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
		// The whole fetch is published before any ack is awaited: one
		// round of acks per fetch, not per record.
		type sent struct {
			m       jetstream.Msg
			futures []jetstream.PubAckFuture
			err     error
		}
		var all []sent
		for m := range batch.Messages() {
			f, err := x.publish(m)
			all = append(all, sent{m, f, err})
		}
		for _, s := range all {
			err := s.err
			if err == nil {
				err = wait(ctx, s.futures)
			}
			if err != nil {
				x.cfg.Log.Warn().Err(err).Msg("track indexer: record left for redelivery")
				_ = s.m.NakWithDelay(time.Second)
				continue
			}
			_ = s.m.Ack()
		}
	}
	return nil
}

// publish sends the index records of one audit record without waiting.
func (x *Indexer) publish(m jetstream.Msg) ([]jetstream.PubAckFuture, error) {
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
	var futures []jetstream.PubAckFuture
	for i, ev := range events {
		for _, e := range Entries(ev, meta.Sequence.Stream) {
			body, err := json.Marshal(e.Hop)
			if err != nil {
				return futures, err
			}
			key := Key(e.Value)
			msg := &nats.Msg{Subject: streams.TrackSubject(key), Data: body, Header: nats.Header{}}
			msg.Header.Set(jetstream.MsgIDHeader, "track:"+strconv.FormatUint(meta.Sequence.Stream, 10)+":"+strconv.Itoa(i)+":"+key)
			f, err := x.js.PublishMsgAsync(msg)
			if err != nil {
				return futures, err
			}
			futures = append(futures, f)
		}
	}
	return futures, nil
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
