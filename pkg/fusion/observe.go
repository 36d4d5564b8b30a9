package fusion

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sinewhq/sinew/pkg/telemetry"
)

// Series of every Fusion request (Config.Metrics). Labels are the
// operation's name in this package (importBulkData, batch, findItem...) and
// the HTTP status code ("0" when no answer came): never a path, a query or
// anything Fusion or a message said.
const (
	MetricRequestSeconds = "sinew_fusion_request_duration_seconds"
	MetricResponses      = "sinew_fusion_responses_total"
)

// observer times each request, counts its answer and traces it.
type observer struct {
	latency   *prometheus.HistogramVec
	responses *prometheus.CounterVec
	tracer    trace.Tracer
	server    string
	port      int
}

func newObserver(reg prometheus.Registerer, tp trace.TracerProvider, base string) (*observer, error) {
	o := &observer{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricRequestSeconds, Help: "Fusion REST request latency (sending to the answer's headers), by operation.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14), // 5 ms … 41 s
		}, []string{"op"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricResponses, Help: "Fusion REST answers by operation and HTTP status code (0: no answer: timeout, refused).",
		}, []string{"op", "code"}),
	}
	if reg != nil {
		var err error
		if o.latency, err = telemetry.Register(reg, o.latency); err != nil {
			return nil, err
		}
		if o.responses, err = telemetry.Register(reg, o.responses); err != nil {
			return nil, err
		}
	}
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	o.tracer = tp.Tracer("github.com/sinewhq/sinew/pkg/fusion")
	if u, err := url.Parse(base); err == nil {
		o.server = u.Hostname()
		o.port, _ = strconv.Atoi(u.Port())
	}
	return o, nil
}

// start begins req's span and returns its context (carried to Fusion as
// traceparent) and the func that records the answer's status code (0 for
// none) and ends the span. Span attributes are the method, the
// operation, the server and the status: no URL (a query names business
// values), no body.
func (o *observer) start(ctx context.Context, op string, req *http.Request) (context.Context, func(code int)) {
	label := telemetry.SafeLabel(strings.ReplaceAll(op, " ", "_"))
	began := time.Now()
	ctx, span := o.tracer.Start(ctx, req.Method+" "+label, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("http.request.method", req.Method),
			attribute.String("server.address", o.server),
			attribute.String("sinew.fusion.operation", label),
		)
		if o.port > 0 {
			span.SetAttributes(attribute.Int("server.port", o.port))
		}
	}
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	return ctx, func(code int) {
		o.latency.WithLabelValues(label).Observe(time.Since(began).Seconds())
		o.responses.WithLabelValues(label, strconv.Itoa(code)).Inc()
		if span.IsRecording() {
			if code > 0 {
				span.SetAttributes(attribute.Int("http.response.status_code", code))
			}
			switch {
			case code == 0:
				span.SetStatus(codes.Error, "no answer")
			case code >= 400:
				// The status line only: Fusion's texts may quote values.
				span.SetStatus(codes.Error, "HTTP "+strconv.Itoa(code))
			}
		}
		span.End()
	}
}
