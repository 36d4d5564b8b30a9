package fusion

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestRequestsAreTimedCountedByStatusAndTraced: each request is one
// latency observation and one answer counted by operation and status code,
// and one client span (child of the caller's, its context sent to Fusion
// as traceparent) carrying the status but neither the URL nor the request
// id it named.
func TestRequestsAreTimedCountedByStatusAndTraced(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var parents []string
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		first := n == 1
		parents = append(parents, r.Header.Get("traceparent"))
		mu.Unlock()
		if !first {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"title":"Service Unavailable","detail":"pod busy"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"items":[{"RequestStatus":"SUCCEEDED","ReqstId":"4711"}]}`))
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	c, err := New(Config{BaseURL: srv.URL, Username: "u", Password: "p", Metrics: reg, Tracer: tp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := tp.Tracer("test").Start(context.Background(), "handler")
	if st, err := c.JobStatus(ctx, "4711"); err != nil || st != StatusSucceeded {
		t.Fatalf("first status %q, %v", st, err)
	}
	if _, err := c.JobStatus(ctx, "4712"); err == nil {
		t.Fatal("503 not an error")
	}
	parent.End()

	if got := testutil.CollectAndCount(reg, MetricRequestSeconds); got != 1 {
		t.Errorf("%d latency series, want 1 (op getESSJobStatus)", got)
	}
	want := `
# HELP sinew_fusion_responses_total Fusion REST answers by operation and HTTP status code (0: no answer: timeout, refused).
# TYPE sinew_fusion_responses_total counter
sinew_fusion_responses_total{code="200",op="getESSJobStatus"} 1
sinew_fusion_responses_total{code="503",op="getESSJobStatus"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), MetricResponses); err != nil {
		t.Error(err)
	}
	spans := rec.Ended()
	var clients []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanKind() == trace.SpanKindClient {
			clients = append(clients, s)
		}
	}
	if len(clients) != 2 {
		t.Fatalf("%d client spans, want 2", len(clients))
	}
	for i, s := range clients {
		if s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %s: parent %v, want the handler's", s.Name(), s.Parent().SpanID())
		}
		if s.Name() != "GET getESSJobStatus" {
			t.Errorf("span name %q", s.Name())
		}
		if !strings.Contains(parents[i], s.SpanContext().SpanID().String()) {
			t.Errorf("Fusion saw traceparent %q, not span %s", parents[i], s.SpanContext().SpanID())
		}
		attrs := map[string]string{}
		for _, a := range s.Attributes() {
			attrs[string(a.Key)] = a.Value.String()
			if strings.Contains(a.Value.String(), "471") || strings.Contains(a.Value.String(), "?") {
				t.Errorf("attribute %s = %q names the request", a.Key, a.Value.String())
			}
		}
		wantCode := []string{"200", "503"}[i]
		if attrs["http.response.status_code"] != wantCode || attrs["http.request.method"] != "GET" || attrs["server.address"] != "127.0.0.1" {
			t.Errorf("span %d attributes %v", i, attrs)
		}
		if i == 1 && (s.Status().Code != codes.Error || s.Status().Description != "HTTP 503") {
			t.Errorf("503 span status %+v", s.Status())
		}
		if i == 0 && s.Status().Code == codes.Error {
			t.Errorf("200 span status %+v", s.Status())
		}
	}
}
