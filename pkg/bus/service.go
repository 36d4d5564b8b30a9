package bus

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/config"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/telemetry"
)

// ServiceConfig is the part of every service's configuration that the
// runtime reads. Services embed it inline in their own Config.
type ServiceConfig struct {
	NATS Config `yaml:"nats"`
	// Topology tunes streams and consumers (AckWait, retry bases...); it
	// must match what was ensured on the server.
	Topology  streams.Options  `yaml:"topology"`
	Telemetry telemetry.Config `yaml:"telemetry"`
	Audit     audit.Config     `yaml:"audit"`
	// HTTPAddr serves /metrics, /healthz and /readyz when the service runs
	// as its own binary.
	HTTPAddr string `yaml:"http_addr"`
}

// DefaultServiceConfig is the runtime's defaults.
func DefaultServiceConfig() ServiceConfig {
	return ServiceConfig{NATS: DefaultConfig(), Topology: streams.DefaultOptions(), Telemetry: telemetry.DefaultConfig(), HTTPAddr: "127.0.0.1:8081"}
}

// Check completes and validates the runtime settings: the audit secret may
// come from SINEW_AUDIT_SECRET (shared by every service of a deployment) and
// must be set — unkeyed patient hashes could be reversed by brute force.
func (c *ServiceConfig) Check(service string) error {
	if c.Audit.Secret == "" {
		c.Audit.Secret = os.Getenv("SINEW_AUDIT_SECRET")
	}
	if c.Audit.Secret == "" {
		return fmt.Errorf("config: audit.secret is empty: set %s_AUDIT_SECRET or SINEW_AUDIT_SECRET", EnvPrefix(service))
	}
	// One collector for the whole deployment, so every service's spans
	// join one trace: SINEW_OTLP_ENDPOINT unless a service names its own.
	if c.Telemetry.OTLPEndpoint == "" {
		c.Telemetry.OTLPEndpoint = os.Getenv(telemetry.EnvOTLPEndpoint)
	}
	return c.Telemetry.Validate()
}

// WithFlows fills the topology's per-flow lists from the flows.yaml at
// path (flows.Inventory.Topology), unless they are set already (sinew up
// passes its own): a service run on its own consumes the per-flow
// consumers `sinew streams ensure --flows` made from the same file.
func (c *ServiceConfig) WithFlows(path string) error {
	t := c.Topology
	if path == "" || len(t.HL7Flows)+len(t.BatchFlows)+len(t.LoadFlows)+len(t.ReconcileFlows) > 0 {
		return nil
	}
	inv, err := flows.Load(path)
	if err != nil {
		return err
	}
	c.Topology = inv.Topology(c.Topology)
	return nil
}

// FlowsConfig is a service configuration that names its flows.yaml: the
// runtime fills its per-flow topology from it (WithFlows).
type FlowsConfig interface{ FlowsPath() string }

// Base gives the runtime its part of a service's configuration.
func (c *ServiceConfig) Base() *ServiceConfig { return c }

// Service is what each Sinew service provides; its own binary and `sinew
// up` run it the same way.
type Service interface {
	// Run works until ctx ends, then drains and returns.
	Run(ctx context.Context) error
	// Ready is nil once the service is doing its job.
	Ready() error
}

// Configurable is a service configuration that embeds ServiceConfig.
type Configurable interface{ Base() *ServiceConfig }

// EnvPrefix is the environment prefix of a service's settings: SINEW_<NAME>.
func EnvPrefix(service string) string {
	return "SINEW_" + strings.ToUpper(strings.ReplaceAll(service, "-", "_"))
}

// Main runs one service as its own binary: -config FILE (YAML, then
// SINEW_<NAME>_* environment overrides), JSON logs, traces, metrics, the
// bus, the health endpoints and SIGINT/SIGTERM for a graceful stop.
//
// "NAME health" loads the same configuration and exits 0 when the
// service's /readyz on its http_addr answers 200, else 1: the container
// healthcheck of a FROM scratch image (deploy/compose).
func Main[C Configurable](name string, cfg C, build func(C, *Bus) (Service, error)) {
	health := len(os.Args) > 1 && os.Args[1] == "health"
	if health {
		os.Args = append(os.Args[:1], os.Args[2:]...)
	}
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	path := fs.String("config", os.Getenv(EnvPrefix(name)+"_CONFIG"), "YAML configuration file")
	_ = fs.Parse(os.Args[1:])
	if err := config.Load(*path, EnvPrefix(name), cfg); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	if health {
		if err := probe(cfg.Base().HTTPAddr); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			os.Exit(1)
		}
		return
	}
	if err := cfg.Base().Check(name); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runMain(ctx, name, cfg, build); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// probe is the health verb: the service's own /readyz.
func probe(httpAddr string) error {
	url, err := telemetry.ProbeURL(httpAddr, "/readyz")
	if err != nil {
		return err
	}
	_, err = telemetry.Probe(context.Background(), url, 3*time.Second)
	return err
}

func runMain[C Configurable](ctx context.Context, name string, cfg C, build func(C, *Bus) (Service, error)) error {
	base := cfg.Base()
	log := telemetry.NewLogger(os.Stderr, base.Telemetry, name)
	tp, err := telemetry.NewTracerProvider(ctx, base.Telemetry, name)
	if err != nil {
		return err
	}
	defer func() { _ = tp.Shutdown(context.WithoutCancel(ctx)) }()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every series carries the service, as under sinew up (one registry).
	b, err := Connect(ctx, base.NATS, Options{
		Service: name, Logger: log, Tracer: tp, Metrics: prometheus.WrapRegistererWith(prometheus.Labels{"service": name}, reg),
		AuditSecret: []byte(base.Audit.Secret),
	})
	if err != nil {
		return err
	}
	defer b.Close()
	if fc, ok := any(cfg).(FlowsConfig); ok {
		if err := base.WithFlows(fc.FlowsPath()); err != nil {
			log.Warn().Err(err).Msg("flows not read: no per-flow consumers")
		}
	}
	svc, err := build(cfg, b)
	if err != nil {
		return err
	}
	ready := func() error {
		if err := b.Ready(); err != nil {
			return err
		}
		return svc.Ready()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	httpErr := make(chan error, 1)
	go func() {
		err := telemetry.Serve(ctx, base.HTTPAddr, telemetry.Handler(reg, ready))
		if err != nil {
			cancel() // no health endpoint: stop rather than run unobserved
		}
		httpErr <- err
	}()
	log.Info().Str("http", base.HTTPAddr).Msg("started")
	err = svc.Run(ctx)
	if herr := <-httpErr; err == nil && herr != nil && !errors.Is(herr, context.Canceled) {
		err = herr
	}
	log.Info().Msg("stopped")
	return err
}

// Placeholder is the Run and Ready of a service whose job a later change
// fills in: it holds its connection and is ready while connected.
type Placeholder struct{ Bus *Bus }

// Run waits for ctx to end.
func (p Placeholder) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Ready is nil while the bus is connected.
func (p Placeholder) Ready() error { return p.Bus.Ready() }

// Started records that a service's loop has started (its consume loop's
// ConsumeOptions.Ready, or its listener): the part of Ready the bus
// cannot know. The zero value is not started.
type Started struct{ ok atomic.Bool }

// Set marks the service started (true) or stopped (false).
func (s *Started) Set(ok bool) { s.ok.Store(ok) }

// Mark is Set(true), for ConsumeOptions.Ready.
func (s *Started) Mark() { s.ok.Store(true) }

// Ready is nil once started while b is connected; service names the
// service in the error.
func (s *Started) Ready(b *Bus, service string) error {
	if err := b.Ready(); err != nil {
		return err
	}
	if !s.ok.Load() {
		return fmt.Errorf("%s: not started yet", service)
	}
	return nil
}
