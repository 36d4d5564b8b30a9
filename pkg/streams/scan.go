package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Scan reads stream's messages matching filter, stored at or after since
// (all when since is zero), up to the stream's end as it was when Scan
// began, and calls fn for each in order. It is how readers that are not
// pipeline consumers (reports, reconciliation) go through a stream.
func Scan(ctx context.Context, js jetstream.JetStream, stream, filter string, since time.Time, fn func(jetstream.Msg) error) error {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("streams: %s: %w", stream, err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return fmt.Errorf("streams: %s info: %w", stream, err)
	}
	var total uint64
	for _, n := range info.State.Subjects {
		total += n
	}
	if total == 0 {
		return nil
	}
	last := info.State.LastSeq // messages stored later are not this scan's
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}}
	if !since.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("streams: ordered consumer on %s: %w", stream, err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("streams: reading %s: %w", stream, err)
		}
		msgs, err := cons.Fetch(500, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("streams: reading %s: %w", stream, err)
		}
		got, done := 0, false
		for m := range msgs.Messages() {
			got++
			meta, merr := m.Metadata()
			if merr == nil && meta.Sequence.Stream > last {
				done = true
				break
			}
			if err := fn(m); err != nil {
				return err
			}
			if merr == nil && (meta.NumPending == 0 || meta.Sequence.Stream >= last) {
				done = true
				break // don't wait out the fetch: nothing more is stored
			}
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !done {
			return fmt.Errorf("streams: reading %s: %w", stream, err)
		}
		if done || got == 0 {
			return nil
		}
	}
}
