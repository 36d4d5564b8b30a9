package bus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
)

func TestDeliverySpanFollowsProducerTraceparent(t *testing.T) {
	e := newEnv(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	traced, err := bus.New(e.nc, bus.Config{}, bus.Options{Service: "traced", Logger: zerolog.Nop(), Tracer: tp})
	if err != nil {
		t.Fatal(err)
	}
	var seen atomic.Value
	var handled atomic.Int32
	e.run(t, traced, bus.Proto(func(ctx context.Context, d *bus.Delivery, ev *sinewv1.InventoryTransaction) error {
		seen.Store(d.Header.Get("traceparent") + "|" + ev.Envelope.Traceparent)
		handled.Add(1)
		return nil
	}))

	ctx, producer := tp.Tracer("test").Start(context.Background(), "produce")
	ev := &sinewv1.InventoryTransaction{Envelope: &sinewv1.Envelope{EventId: "t1", Flow: "optime-materials"}}
	if _, err := traced.Publish(ctx, "fusion.cmd.test.issue", "cmd:t1", ev); err != nil {
		t.Fatal(err)
	}
	producer.End()
	waitFor(t, "traced delivery", 5*time.Second, func() bool { return handled.Load() == 1 })

	want := producer.SpanContext()
	hdrs := seen.Load().(string)
	if hdrs == "|" || hdrs[:len(hdrs)/2] != hdrs[len(hdrs)/2+1:] {
		t.Errorf("traceparent header|envelope = %q, want both set and equal", hdrs)
	}
	var consume sdktrace.ReadOnlySpan
	waitFor(t, "consume span", 5*time.Second, func() bool {
		for _, s := range rec.Ended() {
			if s.Name() == "consume test-loader" {
				consume = s
				return true
			}
		}
		return false
	})
	if consume.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("span kind %v", consume.SpanKind())
	}
	if consume.Parent().TraceID() != want.TraceID() || consume.Parent().SpanID() != want.SpanID() {
		t.Errorf("consume span parent %v, want producer %v", consume.Parent(), want)
	}
	if links := consume.Links(); len(links) != 1 || links[0].SpanContext.SpanID() != want.SpanID() {
		t.Errorf("consume span links %v, want the producer", links)
	}
}
