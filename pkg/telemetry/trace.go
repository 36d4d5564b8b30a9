package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// TracerProvider is a trace.TracerProvider whose Shutdown flushes the
// spans not yet exported.
type TracerProvider interface {
	trace.TracerProvider
	Shutdown(context.Context) error
}

// NewTracerProvider returns a tracer provider for service. With
// cfg.OTLPEndpoint set, spans (with the resource attribute service.name)
// are batched to that OTLP/HTTP collector. Otherwise they are recorded
// nowhere, but are still sampled, so trace IDs are created and propagated
// and a collector added later sees whole traces from the other services.
//
// The provider is not installed globally; pass it (or tracers from it) to
// whatever needs it. Call its Shutdown method on exit to flush spans.
func NewTracerProvider(ctx context.Context, cfg Config, service string) (TracerProvider, error) {
	if service == "" {
		return nil, errors.New("telemetry: tracer provider: empty service name")
	}
	if cfg.OTLPEndpoint == "" {
		return idProvider{}, nil
	}
	expOpts, err := exporterOptions(cfg)
	if err != nil {
		return nil, err
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(semconv.ServiceName(service)),
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: tracer provider for %s: %w", service, err)
	}
	// otlptracehttp does not connect until the first export, so an
	// unreachable collector does not stop the service from starting.
	exp, err := otlptracehttp.New(ctx, expOpts...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter for %s: %w", cfg.OTLPEndpoint, err)
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
		sdktrace.WithBatcher(exp),
	), nil
}

// exporterOptions turns cfg.OTLPEndpoint into exporter options. The
// exporter itself ignores a URL it cannot parse, so it is checked here.
func exporterOptions(cfg Config) ([]otlptracehttp.Option, error) {
	ep := cfg.OTLPEndpoint
	if ep == "" {
		return nil, nil
	}
	if !strings.Contains(ep, "://") {
		if strings.ContainsAny(ep, "/?#") {
			return nil, fmt.Errorf("telemetry: otlp_endpoint %q: want host:port or a URL", ep)
		}
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(ep)}
		if cfg.OTLPInsecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		return opts, nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return nil, fmt.Errorf("telemetry: otlp_endpoint: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("telemetry: otlp_endpoint %q: want an http or https URL with a host", ep)
	}
	// A bare collector URL means its standard traces path, not "/".
	if u.Path == "" || u.Path == "/" {
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host)}
		if u.Scheme == "http" {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		return opts, nil
	}
	return []otlptracehttp.Option{otlptracehttp.WithEndpointURL(ep)}, nil
}

// HeaderCarrier adapts NATS message headers to OpenTelemetry propagation.
// nats.Header, unlike http.Header, is case-sensitive and does not
// canonicalise keys, so the carrier lower-cases every key it is given:
// W3C trace context travels as "traceparent" and "tracestate".
type HeaderCarrier nats.Header

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string {
	v := c[strings.ToLower(key)]
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// Set replaces the values of key with value.
func (c HeaderCarrier) Set(key, value string) {
	c[strings.ToLower(key)] = []string{value}
}

// Keys lists the header keys.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes the span context of ctx into h as W3C trace context. h must
// not be nil (create it with nats.Header{} first); a nil h is left alone.
func Inject(ctx context.Context, h nats.Header) {
	if h == nil {
		return
	}
	propagation.TraceContext{}.Inject(ctx, HeaderCarrier(h))
}

// Extract returns ctx carrying the remote span context found in h, if any.
func Extract(ctx context.Context, h nats.Header) context.Context {
	return propagation.TraceContext{}.Extract(ctx, HeaderCarrier(h))
}
