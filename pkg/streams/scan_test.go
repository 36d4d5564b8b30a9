package streams_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

func TestScanReadsToTheEndAsOfItsStart(t *testing.T) {
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx := context.Background()
	for i := range 1200 {
		subj := "result.a.accepted"
		if i%3 == 0 {
			subj = "result.b.accepted"
		}
		if _, err := js.Publish(ctx, subj, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	var got int
	err := streams.Scan(ctx, js, streams.Results, "result.a.*", time.Time{}, func(m jetstream.Msg) error {
		got++
		if got == 1 { // written during the scan: not this scan's
			_, _ = js.Publish(ctx, "result.a.late", []byte("late"))
		}
		return nil
	})
	if err != nil || got != 800 {
		t.Fatalf("scanned %d, err %v; want 800", got, err)
	}
	got = 0
	if err := streams.Scan(ctx, js, streams.Results, "result.c.*", time.Time{}, func(jetstream.Msg) error { got++; return nil }); err != nil || got != 0 {
		t.Fatalf("empty filter: %d, %v", got, err)
	}
	if err := streams.Scan(ctx, js, streams.Results, "result.>", time.Now().Add(time.Hour), func(jetstream.Msg) error { got++; return nil }); err != nil || got != 0 {
		t.Fatalf("since the future: %d, %v", got, err)
	}
}

// silentJS is a real JetStream whose scan consumers answer their first
// pulls "no responders", as a consumer just created in a cluster (or on a
// server just restarted) does until it listens.
type silentJS struct {
	jetstream.JetStream
	silent int // pulls still to fail
}

func (s *silentJS) CreateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := s.JetStream.CreateConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, err
	}
	return &silentConsumer{Consumer: c, js: s}, nil
}

type silentConsumer struct {
	jetstream.Consumer
	js *silentJS
}

func (c *silentConsumer) Fetch(n int, opts ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	if c.js.silent > 0 {
		c.js.silent--
		return nil, nats.ErrNoResponders
	}
	return c.Consumer.Fetch(n, opts...)
}

// TestScanAsksAgainWhenNoResponders: a scan whose first pulls get "no
// responders" (the chaos run's `dlq list` right after a node came back)
// asks again and reads everything; one that never gets an answer fails
// with that error after its bound, not at once and not never.
func TestScanAsksAgainWhenNoResponders(t *testing.T) {
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx := context.Background()
	for i := range 10 {
		if _, err := js.Publish(ctx, "result.a.accepted", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	sj := &silentJS{JetStream: js, silent: 3}
	got := 0
	if err := streams.Scan(ctx, sj, streams.Results, "result.>", time.Time{}, func(jetstream.Msg) error { got++; return nil }); err != nil || got != 10 {
		t.Fatalf("scanned %d, err %v; want 10", got, err)
	}
	sj.silent = 1 << 30
	start := time.Now()
	err := streams.Scan(ctx, sj, streams.Results, "result.>", time.Time{}, func(jetstream.Msg) error { return nil })
	if !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("never answered: %v", err)
	}
	if d := time.Since(start); d < 9*time.Second || d > 20*time.Second {
		t.Errorf("gave up after %v, want about 10s", d)
	}
}
