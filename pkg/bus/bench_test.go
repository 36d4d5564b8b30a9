package bus_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

const benchBuffer = 512

// benchSetup stores n 1 KiB-ish events in FUSION_CMD and returns a fresh
// consumer over them.
func benchSetup(b *testing.B, n int) (*bus.Bus, jetstream.JetStream, streams.Consumer) {
	b.Helper()
	_, nc, js := natstest.StartWithTopology(b, streams.DefaultOptions())
	bs, err := bus.New(nc, bus.Config{}, bus.Options{Service: "bench", Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	ev := &sinewv1.InventoryTransaction{
		Envelope:   &sinewv1.Envelope{Flow: "willow-inventory", SourceSystem: "epic.willow"},
		ItemNumber: "ITEM-0001", Organization: "MAIN", Subinventory: "PHARM", Reason: string(make([]byte, 900)),
		Quantity: &sinewv1.Quantity{Value: "1", Uom: "EA"},
	}
	ctx := context.Background()
	var futs []jetstream.PubAckFuture
	for i := range n {
		ev.Envelope.EventId = fmt.Sprint(i)
		data, _ := proto.Marshal(ev)
		f, err := js.PublishAsync("fusion.cmd.bench.issue", data, jetstream.WithMsgID(fmt.Sprint("b", i)))
		if err != nil {
			b.Fatal(err)
		}
		futs = append(futs, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publish did not complete")
	}
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			b.Fatal(err)
		}
	}
	c := streams.Consumer{Stream: streams.FusionCmd, Name: "bench", MaxDeliver: 3, AckWait: 30 * time.Second,
		MaxAckPending: 10000, RetryBase: time.Second, Hop: "bench"}
	if _, err := js.CreateOrUpdateConsumer(ctx, c.Stream, c.Config()); err != nil {
		b.Fatal(err)
	}
	return bs, js, c
}

// BenchmarkConsume compares, in one run, a raw jetstream consume loop with
// the bus loop over the same stored messages: ns/op is per message.
func BenchmarkConsume(b *testing.B) {
	b.Run("raw-jetstream", func(b *testing.B) {
		_, js, c := benchSetup(b, b.N)
		cons, err := js.Consumer(context.Background(), c.Stream, c.Name)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		iter, err := cons.Messages(jetstream.PullMaxMessages(benchBuffer))
		if err != nil {
			b.Fatal(err)
		}
		for range b.N {
			m, err := iter.Next()
			if err != nil {
				b.Fatal(err)
			}
			_, _ = m.Metadata()
			if err := m.Ack(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		iter.Stop()
	})
	noop := func(context.Context, *bus.Delivery) error { return nil }
	typed := bus.Proto(func(context.Context, *bus.Delivery, *sinewv1.InventoryTransaction) error { return nil })
	for _, v := range []struct {
		name    string
		h       bus.Handler
		workers int
		audit   bool
	}{
		{"bus-noop", noop, 1, false},
		{"bus-proto-decode", typed, 1, false},
		{"bus-noop-4-workers", noop, 4, false},
		{"bus-noop-audited", noop, 4, true},
	} {
		b.Run(v.name, func(b *testing.B) {
			bs, _, c := benchSetup(b, b.N)
			var n atomic.Int64
			done := make(chan struct{})
			h := func(ctx context.Context, d *bus.Delivery) error {
				err := v.h(ctx, d)
				if n.Add(1) == int64(b.N) {
					close(done)
				}
				return err
			}
			ctx, cancel := context.WithCancel(context.Background())
			stopped := make(chan struct{})
			b.ResetTimer()
			go func() {
				defer close(stopped)
				_ = bs.Consume(ctx, c, h, bus.ConsumeOptions{Workers: v.workers, Buffer: benchBuffer, NoAudit: !v.audit})
			}()
			<-done
			b.StopTimer()
			cancel()
			<-stopped
		})
	}
}
