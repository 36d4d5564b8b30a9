// Package bus is the runtime every Sinew service stands on: the NATS
// connection, publishing with deterministic message ids, and the one
// consumer loop (decode, typed handler, ack; retry by redelivery with
// exponential delay; dead letters; audit per hop; a span and metrics per
// delivery; graceful drain).
package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/telemetry"
)

// Config is how a service reaches NATS.
type Config struct {
	// URL of the NATS server or cluster (comma-separated).
	URL string `yaml:"url"`
	// CredsFile is a NATS credentials file (JWT + nkey); optional.
	CredsFile string `yaml:"creds_file"`
	// User and Password for plain authentication; optional.
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// PublishTimeout bounds a publish waiting for its ack.
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// TLS to the servers (deploy/compose: tls:// URLs, the demo CA).
	TLS TLSConfig `yaml:"tls"`
}

// TLSConfig names PEM files; all optional. CAFile verifies the servers;
// CertFile and KeyFile are a client certificate for servers that ask one.
type TLSConfig struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Options are the nats.go options of c; none when c is empty.
func (c TLSConfig) Options() []nats.Option {
	var o []nats.Option
	if c.CAFile != "" {
		o = append(o, nats.RootCAs(c.CAFile))
	}
	if c.CertFile != "" {
		o = append(o, nats.ClientCert(c.CertFile, c.KeyFile))
	}
	return o
}

// DefaultConfig connects to the local `sinew up` server.
func DefaultConfig() Config {
	return Config{URL: nats.DefaultURL, PublishTimeout: 10 * time.Second}
}

// Options are a process's gifts to the bus: identity, logs, traces, metrics.
type Options struct {
	// Service name: client name, audit actor, metrics label.
	Service string
	// Logger, already carrying the service field (telemetry.NewLogger).
	Logger zerolog.Logger
	// Tracer provider; spans go nowhere when nil.
	Tracer trace.TracerProvider
	// Metrics registerer; a private registry when nil.
	Metrics prometheus.Registerer
	// AuditSecret keys patient references (audit.PatientRef).
	AuditSecret []byte
}

// Bus is a service's connection to JetStream.
type Bus struct {
	reg     prometheus.Registerer
	tp      trace.TracerProvider
	nc      *nats.Conn
	js      jetstream.JetStream
	opts    Options
	log     zerolog.Logger
	tracer  trace.Tracer
	audit   *audit.Writer
	metrics *metrics
	pubWait time.Duration
	ownConn bool
}

// Connect dials NATS as cfg says; reconnects forever.
func Connect(ctx context.Context, cfg Config, opts Options) (*Bus, error) {
	no := []nats.Option{
		nats.Name("sinew-" + opts.Service),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
	}
	if cfg.CredsFile != "" {
		no = append(no, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.User != "" {
		// Its own inbox prefix: the only subjects the user may subscribe to.
		no = append(no, nats.UserInfo(cfg.User, cfg.Password), nats.CustomInboxPrefix(streams.InboxPrefix(cfg.User)))
	}
	no = append(no, cfg.TLS.Options()...)
	log := opts.Logger
	no = append(no,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil when we closed it ourselves
				log.Warn().Err(err).Msg("nats disconnected")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("nats reconnected")
		}),
	)
	url := cfg.URL
	if url == "" {
		url = nats.DefaultURL
	}
	var nc *nats.Conn
	var err error
	// The server may still be starting (compose, sinew up): retry until ctx ends.
	for delay := 100 * time.Millisecond; ; delay = min(delay*2, 2*time.Second) {
		nc, err = nats.Connect(url, no...)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bus: connect %s: %w", url, err)
		case <-time.After(delay):
		}
	}
	b, err := New(nc, cfg, opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	b.ownConn = true
	return b, nil
}

// New wraps an existing connection.
func New(nc *nats.Conn, cfg Config, opts Options) (*Bus, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	if opts.Service == "" {
		opts.Service = "sinew"
	}
	tp := opts.Tracer
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	reg := opts.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	wait := cfg.PublishTimeout
	if wait <= 0 {
		wait = DefaultConfig().PublishTimeout
	}
	return &Bus{
		reg:     reg,
		tp:      tp,
		nc:      nc,
		js:      js,
		opts:    opts,
		log:     opts.Logger,
		tracer:  tp.Tracer("github.com/sinewhq/sinew/pkg/bus"),
		audit:   audit.NewWriter(js, writerID(opts.Service)).Keyed(opts.AuditSecret),
		metrics: m,
		pubWait: wait,
	}, nil
}

// writerID names this process's audit chain: service, host, a random suffix.
func writerID(service string) string {
	host, _ := os.Hostname()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return service + "@" + host + "-" + hex.EncodeToString(b[:])
}

// Conn is the NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream is the JetStream context.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Audit is this process's audit writer.
func (b *Bus) Audit() *audit.Writer { return b.audit }

// Metrics is where the service registers its own metrics.
func (b *Bus) Metrics() prometheus.Registerer { return b.reg }

// Tracer returns a tracer of the service's provider.
func (b *Bus) Tracer(name string) trace.Tracer { return b.tp.Tracer(name) }

// TracerProvider is the service's provider, for clients that make their
// own spans (pkg/fusion).
func (b *Bus) TracerProvider() trace.TracerProvider { return b.tp }

// Logger is the service's logger.
func (b *Bus) Logger() *zerolog.Logger { return &b.log }

// Service is the service name.
func (b *Bus) Service() string { return b.opts.Service }

// PatientRef is audit.PatientRef under this deployment's secret.
func (b *Bus) PatientRef(system, id string) string {
	return audit.PatientRef(b.opts.AuditSecret, system, id)
}

// Ready reports whether the connection is up.
func (b *Bus) Ready() error {
	if s := b.nc.Status(); s != nats.CONNECTED {
		return fmt.Errorf("nats %s", s)
	}
	return nil
}

// Close drains the connection if the bus opened it.
func (b *Bus) Close() {
	if b.ownConn {
		_ = b.nc.Drain()
	}
}

// ErrNoMsgID is returned when a publish has no message id.
var ErrNoMsgID = errors.New("bus: publish without a message id")

// Publish encodes msg, sends it with Nats-Msg-Id msgID and the trace context
// of ctx (lowercase traceparent), and waits for JetStream's ack. The id must
// be deterministic — derived from the source, not the clock — so that a
// handler that runs twice publishes once. An envelope without a traceparent
// gets the current one.
func (b *Bus) Publish(ctx context.Context, subject, msgID string, msg proto.Message) (*jetstream.PubAck, error) {
	m, err := b.encode(ctx, subject, msgID, msg)
	if err != nil {
		return nil, err
	}
	return b.PublishRaw(ctx, m, msgID)
}

// encode is msg as the message Publish sends, with the trace context in
// its headers and envelope.
func (b *Bus) encode(ctx context.Context, subject, msgID string, msg proto.Message) (*nats.Msg, error) {
	if msgID == "" {
		return nil, ErrNoMsgID
	}
	hdr := nats.Header{}
	telemetry.Inject(ctx, hdr)
	if ev, ok := msg.(interface{ GetEnvelope() *sinewv1.Envelope }); ok {
		if env := ev.GetEnvelope(); env != nil && env.Traceparent == "" {
			env.Traceparent = hdr.Get("traceparent")
			env.Tracestate = hdr.Get("tracestate")
		}
	}
	data, err := proto.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("bus: encode for %s: %w", subject, err)
	}
	return &nats.Msg{Subject: subject, Data: data, Header: hdr}, nil
}

// PublishRaw sends an already encoded message with Nats-Msg-Id msgID and
// waits for the ack.
func (b *Bus) PublishRaw(ctx context.Context, m *nats.Msg, msgID string) (*jetstream.PubAck, error) {
	if err := b.stamp(ctx, m, msgID); err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.pubWait)
		defer cancel()
	}
	ack, err := streams.Publish(ctx, b.nc, m)
	if err != nil {
		return nil, fmt.Errorf("bus: publish %s: %w", m.Subject, err)
	}
	return ack, nil
}

// stamp sets m's Nats-Msg-Id (and trace context, when it has none).
func (b *Bus) stamp(ctx context.Context, m *nats.Msg, msgID string) error {
	if msgID == "" {
		return ErrNoMsgID
	}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	if m.Header.Get("traceparent") == "" {
		telemetry.Inject(ctx, m.Header)
	}
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	return nil
}
