// Package fusionsim simulates Oracle Fusion Cloud's ERP integration side
// for Journal Import: erpintegrations (importBulkData, submitESSJobRequest,
// ESS job chains and states, execution details, log and output downloads,
// callbacks), Journal Import's semantics on an in-memory GL_INTERFACE, the
// journalBatches and ledgerBalances read-back resources; the SCM and
// procurement side (inventoryStagedTransactions, itemsV2, suppliers,
// inventoryOnhandBalances, the batch endpoint) over master data from
// deploy/demo/fusion_scm.yaml; Basic, bearer and OAuth JWT-assertion auth;
// and injectable faults. docs/fusionsim.md describes it.
//
// The core, Server, needs no NATS: end-to-end tests run it in its own
// process (cmd/fusionsim) while they kill Sinew's loader. Service wraps it
// for `sinew up`.
package fusionsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sinewhq/sinew/pkg/bus"
)

// Config is the fusionsim service's configuration.
type Config struct {
	bus.ServiceConfig `yaml:",inline"`
	// Simulator listener address.
	Addr string `yaml:"addr"`
	// Sim configures the simulator itself.
	Sim SimConfig `yaml:"sim"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{ServiceConfig: bus.DefaultServiceConfig(), Addr: "127.0.0.1:8090", Sim: DefaultSimConfig()}
	c.HTTPAddr = "127.0.0.1:9108"
	return c
}

// Service is the running fusionsim service.
type Service struct {
	cfg   Config
	bus   *bus.Bus
	srv   *Server
	ready atomic.Bool
}

// New returns the service on bus b (nil when run without NATS).
func New(cfg Config, b *bus.Bus) (*Service, error) {
	if b != nil && cfg.Sim.Logger == nil {
		cfg.Sim.Logger = slogFrom(b)
	}
	srv, err := NewServer(cfg.Sim)
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, bus: b, srv: srv}, nil
}

// Server is the simulator core, for tests that inspect it.
func (s *Service) Server() *Server { return s.srv }

// Run serves on cfg.Addr until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	defer s.srv.Close()
	if d := s.cfg.Sim.DayInterval; d > 0 {
		go s.srv.RunDay(ctx, d)
	}
	return Serve(ctx, s.cfg.Addr, s.srv, func(addr net.Addr) { s.ready.Store(true) })
}

// Ready is nil once the listener is up (and the bus connected).
func (s *Service) Ready() error {
	if !s.ready.Load() {
		return errors.New("fusionsim: not listening yet")
	}
	if s.bus != nil {
		return s.bus.Ready()
	}
	return nil
}

// Serve runs srv's handler on addr until ctx ends; listening is called
// with the bound address once it accepts connections.
func Serve(ctx context.Context, addr string, srv *Server, listening func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("fusionsim: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	if listening != nil {
		listening(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("fusionsim: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	srv.Close() // ends hanging fault handlers and job chains first
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	return nil
}

// slogFrom logs through the bus's zerolog logger.
func slogFrom(b *bus.Bus) *slog.Logger { return slog.New(zlHandler{l: b.Logger()}) }

type zlHandler struct {
	l     *zerolog.Logger
	attrs []slog.Attr
}

func (h zlHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h zlHandler) Handle(_ context.Context, r slog.Record) error {
	ev := h.l.Info()
	if r.Level >= slog.LevelWarn {
		ev = h.l.Warn()
	}
	for _, a := range h.attrs {
		ev = ev.Interface(a.Key, a.Value.Any())
	}
	r.Attrs(func(a slog.Attr) bool {
		ev = ev.Interface(a.Key, a.Value.Any())
		return true
	})
	ev.Msg(r.Message)
	return nil
}

func (h zlHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return zlHandler{l: h.l, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h zlHandler) WithGroup(string) slog.Handler { return h }
