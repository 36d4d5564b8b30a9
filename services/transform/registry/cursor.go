package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/flowstate"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/ids"
	"github.com/sinewhq/sinew/pkg/streams"
)

// Change is one record a cursor poller publishes: its command, the
// message id that makes a re-read a no-op, and the source's update time
// the cursor moves to once the command is stored.
type Change struct {
	Subject string
	MsgID   string
	Msg     proto.Message
	At      time.Time
}

// Envelope is the envelope of a command read from Fusion for flow f:
// msgID is its idempotency key (and names its event id), sourceID the
// Fusion record's id, key=value its business key.
func Envelope(f *flows.Flow, msgID, sourceID, key, value string) *sinewv1.Envelope {
	return &sinewv1.Envelope{EventId: ids.EventID(msgID), Flow: f.ID, SourceSystem: f.Source, SourceId: sourceID,
		IdempotencyKey: msgID, ReceivedAt: timestamppb.Now(), BusinessKeys: []*sinewv1.KeyValue{{Key: key, Value: value}}}
}

// Cursor describes one incremental read of Fusion: Read returns the
// records updated after since, oldest first (a fusion.Client method
// expression such as (*fusion.Client).SuppliersUpdatedAfter); Change
// makes each the flow's command.
type Cursor[T any] struct {
	// Feed names the cursor: key <flow>.cursor.<feed> in fusion_poll.
	Feed   string
	Read   func(fc *fusion.Client, ctx context.Context, since time.Time) ([]T, error)
	Change func(f *flows.Flow, rec T) Change
}

// CursorPoller runs a Cursor for one flow while the flow is active. The
// cursor moves past a record only after its command is on the stream, so
// a crash re-reads it and the message id makes the repeat a no-op. It
// never moves back, nor before the epoch: a record Fusion holds without
// an update time is sent once.
type CursorPoller[T any] struct {
	flow     *flows.Flow
	fusion   *fusion.Client
	pub      Publisher
	kv       jetstream.KeyValue
	states   *flowstate.Store
	interval time.Duration
	log      func(error, string)
	c        Cursor[T]
}

// NewCursorPoller builds flow f's poller of c from env (its Fusion
// client, publisher, the fusion_poll and flow_state buckets).
func NewCursorPoller[T any](ctx context.Context, f *flows.Flow, env Env, c Cursor[T]) (*CursorPoller[T], error) {
	if env.Fusion == nil {
		return nil, fmt.Errorf("%s: no Fusion client configured", f.ID)
	}
	if c.Feed == "" || c.Read == nil || c.Change == nil {
		return nil, errors.New(f.ID + ": cursor needs a feed, a read and a change")
	}
	kv, err := env.JS.KeyValue(ctx, streams.KVFusionPoll)
	if err != nil {
		return nil, fmt.Errorf("%s: bucket %s: %w", f.ID, streams.KVFusionPoll, err)
	}
	st, err := flowstate.Open(ctx, env.JS)
	if err != nil {
		return nil, err
	}
	return &CursorPoller[T]{flow: f, fusion: env.Fusion, pub: env.Publisher, kv: kv, states: st, interval: env.PollInterval, log: env.Log, c: c}, nil
}

// Run polls every interval while the flow is active, until ctx ends.
func (p *CursorPoller[T]) Run(ctx context.Context) error {
	return PollLoop(ctx, p.flow, p.states, p.interval, p.log, p.Poll)
}

// Key is the cursor's key in fusion_poll.
func (p *CursorPoller[T]) Key() string { return p.flow.ID + ".cursor." + p.c.Feed }

// Poll publishes every record changed since the cursor, oldest first,
// moving the cursor after each.
func (p *CursorPoller[T]) Poll(ctx context.Context) error {
	key := p.Key()
	var since time.Time
	if e, err := p.kv.Get(ctx, key); err == nil {
		since, _ = time.Parse(time.RFC3339Nano, string(e.Value()))
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("cursor %s: %w", key, err)
	}
	recs, err := p.c.Read(p.fusion, ctx, since)
	if err != nil {
		return err
	}
	epoch := time.Unix(0, 0).UTC()
	for _, r := range recs {
		ch := p.c.Change(p.flow, r)
		if _, err := p.pub.Publish(ctx, ch.Subject, ch.MsgID, ch.Msg); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		at := ch.At.UTC()
		for _, t := range []time.Time{epoch, since} {
			if t.After(at) {
				at = t
			}
		}
		if _, err := p.kv.Put(ctx, key, []byte(at.Format(time.RFC3339Nano))); err != nil {
			return fmt.Errorf("cursor %s: %w", key, err)
		}
		since = at
	}
	return nil
}
