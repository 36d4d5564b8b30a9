package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func newProvider(t *testing.T, cfg Config, service string) TracerProvider {
	t.Helper()
	tp, err := NewTracerProvider(t.Context(), cfg, service)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return tp
}

func TestInjectExtract(t *testing.T) {
	t.Parallel()
	tp := newProvider(t, DefaultConfig(), "ingest")
	ctx, span := tp.Tracer("test").Start(t.Context(), "publish")
	defer span.End()
	sent := span.SpanContext()
	if !sent.IsValid() || !sent.IsSampled() {
		t.Fatalf("span without an exporter is not valid and sampled: %+v", sent)
	}
	state, err := trace.ParseTraceState("sinew=1,vendor=abc")
	if err != nil {
		t.Fatal(err)
	}
	ctx = trace.ContextWithSpanContext(ctx, sent.WithTraceState(state))

	h := nats.Header{}
	Inject(ctx, h)

	for _, key := range []string{"traceparent", "tracestate"} {
		if len(h[key]) != 1 {
			t.Errorf("header %q = %v, want one value", key, h[key])
		}
	}
	for key := range h {
		if key != strings.ToLower(key) {
			t.Errorf("header key %q is not lower-case", key)
		}
	}
	if got := h.Get("traceparent"); !strings.Contains(got, sent.TraceID().String()) {
		t.Errorf("traceparent %q lacks trace id %s", got, sent.TraceID())
	}

	got := trace.SpanContextFromContext(Extract(context.Background(), h))
	if !got.IsRemote() || got.TraceID() != sent.TraceID() || got.SpanID() != sent.SpanID() || !got.IsSampled() {
		t.Errorf("extracted %+v, want remote copy of %+v", got, sent)
	}
	if got.TraceState().String() != "sinew=1,vendor=abc" {
		t.Errorf("tracestate %q", got.TraceState())
	}

	// A child started from the extracted context continues the trace.
	_, child := tp.Tracer("test").Start(Extract(t.Context(), h), "consume")
	defer child.End()
	if child.SpanContext().TraceID() != sent.TraceID() {
		t.Error("child span is not in the same trace")
	}
}

func TestExtractNoContext(t *testing.T) {
	t.Parallel()
	valid := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name string
		h    nats.Header
	}{
		{"nil header", nil},
		{"empty header", nats.Header{}},
		// nats.Header is case-sensitive: only the lower-case key counts.
		{"canonical-case key", nats.Header{"Traceparent": {valid}}},
		{"malformed", nats.Header{"traceparent": {"00-xyz"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if sc := trace.SpanContextFromContext(Extract(context.Background(), tt.h)); sc.IsValid() {
				t.Errorf("extracted %+v from %v", sc, tt.h)
			}
		})
	}
	// The same value under the right key is accepted.
	if !trace.SpanContextFromContext(Extract(context.Background(), nats.Header{"traceparent": {valid}})).IsValid() {
		t.Error("valid traceparent rejected")
	}
}

func TestInjectNilHeader(t *testing.T) {
	t.Parallel()
	tp := newProvider(t, DefaultConfig(), "ingest")
	ctx, span := tp.Tracer("test").Start(t.Context(), "x")
	defer span.End()
	Inject(ctx, nil) // must not panic
}

func TestHeaderCarrier(t *testing.T) {
	t.Parallel()
	c := HeaderCarrier(nats.Header{})
	c.Set("TraceParent", "a")
	c.Set("traceparent", "b")
	if got := nats.Header(c)["traceparent"]; len(got) != 1 || got[0] != "b" {
		t.Errorf("traceparent = %v, want [b]", got)
	}
	if c.Get("TRACEPARENT") != "b" || c.Get("missing") != "" {
		t.Errorf("Get: %q %q", c.Get("TRACEPARENT"), c.Get("missing"))
	}
	if keys := c.Keys(); len(keys) != 1 || keys[0] != "traceparent" {
		t.Errorf("Keys = %v", keys)
	}
}

func TestTracerProviderResource(t *testing.T) {
	t.Parallel()
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(collector.Close)
	tp := newProvider(t, Config{OTLPEndpoint: collector.URL}, "reconciler")
	sdk, ok := tp.(*sdktrace.TracerProvider)
	if !ok {
		t.Fatalf("%T with a collector, want the SDK's provider", tp)
	}
	exp := tracetest.NewInMemoryExporter()
	sdk.RegisterSpanProcessor(sdktrace.NewSimpleSpanProcessor(exp))
	_, span := tp.Tracer("test").Start(t.Context(), "x")
	span.End()
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	var name attribute.Value
	for _, kv := range spans[0].Resource.Attributes() {
		if kv.Key == "service.name" {
			name = kv.Value
		}
	}
	if name.AsString() != "reconciler" {
		t.Errorf("service.name = %q", name.AsString())
	}
}

// Without a collector spans record nothing but carry span contexts as the
// SDK's parent-based sampler would.
func TestTracerProviderWithoutCollector(t *testing.T) {
	t.Parallel()
	tr := newProvider(t, DefaultConfig(), "loader").Tracer("test")
	ctx, root := tr.Start(t.Context(), "root")
	rsc := root.SpanContext()
	if !rsc.IsValid() || !rsc.IsSampled() || root.IsRecording() {
		t.Fatalf("root %+v: want valid, sampled, not recording", rsc)
	}
	_, child := tr.Start(ctx, "child")
	csc := child.SpanContext()
	if csc.TraceID() != rsc.TraceID() || csc.SpanID() == rsc.SpanID() || !csc.IsSampled() {
		t.Errorf("child %v of %v", csc, rsc)
	}
	_, other := tr.Start(ctx, "new root", trace.WithNewRoot())
	if other.SpanContext().TraceID() == rsc.TraceID() {
		t.Error("WithNewRoot kept the parent's trace")
	}
	unsampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: rsc.TraceID(), SpanID: rsc.SpanID(), Remote: true})
	_, c2 := tr.Start(trace.ContextWithRemoteSpanContext(t.Context(), unsampled), "from an unsampled parent")
	if c2.SpanContext().IsSampled() || c2.SpanContext().TraceID() != rsc.TraceID() {
		t.Errorf("child of an unsampled parent: %v", c2.SpanContext())
	}
}

func TestTracerProviderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		service string
		wantErr string
	}{
		{"empty service", DefaultConfig(), "", "empty service name"},
		{"bad endpoint", Config{OTLPEndpoint: "ftp://x"}, "s", "want an http or https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tp, err := NewTracerProvider(t.Context(), tt.cfg, tt.service)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
			if tp != nil {
				t.Error("provider returned with an error")
			}
		})
	}
}

// TestOTLPExport sends spans to a real HTTP server standing in for the
// collector and checks where they arrive.
func TestOTLPExport(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(srv.Close)
	hostport := srv.Listener.Addr().String()

	tests := []struct {
		name     string
		cfg      Config
		wantPath string
	}{
		{"host:port", Config{OTLPEndpoint: hostport, OTLPInsecure: true}, "/v1/traces"},
		{"bare URL", Config{OTLPEndpoint: srv.URL}, "/v1/traces"},
		{"URL with root path", Config{OTLPEndpoint: srv.URL + "/"}, "/v1/traces"},
		{"URL with path", Config{OTLPEndpoint: srv.URL + "/otlp/traces"}, "/otlp/traces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: the subtests share the recorded paths.
			mu.Lock()
			paths = nil
			mu.Unlock()
			tp, err := NewTracerProvider(t.Context(), tt.cfg, "loader")
			if err != nil {
				t.Fatal(err)
			}
			_, span := tp.Tracer("test").Start(t.Context(), "post")
			span.End()
			if err := tp.Shutdown(t.Context()); err != nil { // flushes the batch
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			want := "POST " + tt.wantPath + " application/x-protobuf"
			if len(paths) != 1 || paths[0] != want {
				t.Errorf("collector saw %q, want [%s]", paths, want)
			}
		})
	}
}
