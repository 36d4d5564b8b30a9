package bus

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/sinewhq/sinew/pkg/streams"
)

// Encode is msg as Publish would send it (trace context, Nats-Msg-Id
// msgID), for PublishBatch.
func (b *Bus) Encode(ctx context.Context, subject, msgID string, msg proto.Message) (*nats.Msg, error) {
	m, err := b.encode(ctx, subject, msgID, msg)
	if err != nil {
		return nil, err
	}
	if err := b.stamp(ctx, m, msgID); err != nil {
		return nil, err
	}
	return m, nil
}

// PublishBatch stores msgs (from Encode, all in one stream that allows
// atomic publish) as one atomic batch: one fsync under sync_always, for a
// reader that has many messages at hand (a bulk export file) rather than
// many concurrent callers (Group). It returns one acknowledgement per
// message, in order. A batch the stream refuses as a whole (typically a
// resend among them: a duplicate) is stored message by message, each
// getting its own answer (Duplicate for a resend). On an error nothing
// after the last acknowledged message may be assumed stored; a resend is
// deduplicated by the messages' ids.
func (b *Bus) PublishBatch(ctx context.Context, msgs []*nats.Msg) ([]*jetstream.PubAck, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.pubWait)
		defer cancel()
	}
	if len(msgs) > 1 {
		acks, err := streams.PublishAtomic(ctx, b.nc, msgs)
		if err == nil {
			return acks, nil
		}
		if !streams.IsBatchRefusal(err) {
			return nil, fmt.Errorf("bus: publish batch of %d on %s: %w", len(msgs), msgs[0].Subject, err)
		}
		b.log.Debug().Err(err).Int("messages", len(msgs)).Msg("atomic batch refused; publishing its messages one by one")
	}
	acks := make([]*jetstream.PubAck, len(msgs))
	errs := make([]error, len(msgs))
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Go(func() { acks[i], errs[i] = streams.Publish(ctx, b.nc, m) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("bus: publish %s: %w", msgs[i].Subject, err)
		}
	}
	return acks, nil
}
