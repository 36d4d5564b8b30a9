package bus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/streams"
)

// TestUnavailableBusDoesNotUseUpDeliveries: a handler whose publishes
// JetStream does not answer (a node catching up, issue 14's chaos run) is
// run again in place, so more failures than MaxDeliver neither dead-letter
// the message nor count as deliveries.
func TestUnavailableBusDoesNotUseUpDeliveries(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	var delivered atomic.Uint64
	e.run(t, e.bus, func(ctx context.Context, d *bus.Delivery) error {
		delivered.Store(d.NumDelivered)
		if calls.Add(1) <= 4 { // more than MaxDeliver (3)
			return &streams.UnavailableError{Err: jetstream.ErrNoStreamResponse}
		}
		return nil
	})
	e.publish(t, "1")
	waitFor(t, "the fifth call to succeed", 20*time.Second, func() bool { return calls.Load() == 5 })
	time.Sleep(300 * time.Millisecond)
	if n := delivered.Load(); n != 1 {
		t.Errorf("delivery %d on success, want 1: unavailability used up attempts", n)
	}
	if got := len(e.deadLetters(t)); got != 0 {
		t.Errorf("%d dead letters, want 0", got)
	}
}
