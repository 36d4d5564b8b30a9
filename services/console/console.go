// Package console is the web console and HTTP API for operations, finance and privacy officers.
//
// Besides the web pages it keeps the tracking index (pkg/track) in its own
// directory, filing every audit record under its business identifiers, and
// answers `sinew track` from it over NATS; and it runs the triage opener
// (pkg/triage), which opens an item for every variance beyond tolerance and
// every dead letter that needs a person.
package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/track"
	"github.com/sinewhq/sinew/pkg/triage"
)

// Config is the console service's configuration.
type Config struct {
	bus.ServiceConfig `yaml:",inline"`
	// Console listener address of its own (empty: only on the host's
	// listener through Routes, as under sinew up).
	Addr string `yaml:"addr"`
	// UsersFile lists the console's password users with bcrypt hashes
	// (users: [{name, role, password_hash}]). When it does not exist, demo
	// users (operator, finance, privacy) are written there with their
	// passwords in passwords.txt beside it, both 0600.
	UsersFile string `yaml:"users_file"`
	// FlowsFile is the integration inventory (flows.yaml): the flows the
	// console stages, activates and pauses.
	FlowsFile string `yaml:"flows_file"`
	// OIDC is sign-in through an OpenID Connect provider where configured
	// (issuer set), beside the users file's password users.
	OIDC OIDCConfig `yaml:"oidc"`
	// TrackDir is the tracking index's directory (pkg/track): a derived
	// view of AUDIT, rebuilt from it when missing or wiped ("track" in the
	// working directory when empty; <data dir>/track under sinew up).
	TrackDir string `yaml:"track_dir"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{ServiceConfig: bus.DefaultServiceConfig(), Addr: "127.0.0.1:8088", FlowsFile: "flows.yaml"}
	c.HTTPAddr = "127.0.0.1:9106"
	return c
}

// Service is the running console service.
type Service struct {
	bus     *bus.Bus
	cfg     Config
	started bus.Started
	handler atomic.Pointer[http.Handler] // the web console, once its users are loaded
}

// consolePaths are the web console's routes on a shared listener.
var consolePaths = []string{"GET /{$}", "/login", "/login/", "/logout", "/api/", "/track", "/triage", "/triage/", "/dlq", "/dlq/", "/audit", "/static/",
	"/flows", "/flows/", "/recon", "/recon/"}

// Routes serves the web console on a host's listener (sinew up's
// --http-addr) beside its /readyz, /metrics and the loader's callbacks;
// until the users are loaded the console's pages answer 503.
func (s *Service) Routes(mux *http.ServeMux) {
	h := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if p := s.handler.Load(); p != nil {
			(*p).ServeHTTP(rw, r)
			return
		}
		http.Error(rw, "console starting", http.StatusServiceUnavailable)
	})
	for _, p := range consolePaths {
		mux.Handle(p, h)
	}
}

// New returns the service on bus b.
func New(cfg Config, b *bus.Bus) (*Service, error) {
	return &Service{bus: b, cfg: cfg}, nil
}

// Run indexes the audit trail, answers lookups and opens triage items
// until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	js := s.bus.JetStream()
	st, err := triage.Open(ctx, js, triage.Config{Audit: s.bus.Audit()})
	if err != nil {
		return err
	}
	idx, err := track.OpenIndex(cmp.Or(s.cfg.TrackDir, "track"), track.IndexConfig{Log: *s.bus.Logger()})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	defer idx.Close()
	if err := track.Serve(ctx, s.bus.Conn(), js, idx); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	x := track.NewIndexer(js, idx, track.IndexerConfig{Log: *s.bus.Logger()})
	g := newGauges(s.bus.Metrics())
	g.index = idx
	errs := make(chan error, 5)
	go func() { errs <- s.serve(ctx, st, idx) }()
	go func() { errs <- g.run(ctx, js, st, 10*time.Second) }()
	go func() { errs <- x.Run(ctx, s.started.Mark) }()
	go func() { errs <- triage.NewOpener(js, st, *s.bus.Logger(), 0).Run(ctx) }()
	go func() { errs <- s.expiry(ctx) }()
	return errors.Join(<-errs, <-errs, <-errs, <-errs, <-errs)
}

// serve runs the web console on cfg.Addr until ctx ends.
func (s *Service) serve(ctx context.Context, st *triage.Store, idx *track.Index) error {
	if s.cfg.UsersFile == "" && s.cfg.OIDC.Issuer == "" {
		s.bus.Logger().Warn().Msg("console: no users_file and no oidc: the web console is off")
		return nil
	}
	users := map[string]User{} // OIDC only: no password users
	if s.cfg.UsersFile != "" {
		wrote, err := EnsureDemoUsers(s.cfg.UsersFile)
		if err != nil {
			return fmt.Errorf("console: users: %w", err)
		}
		if wrote {
			s.bus.Logger().Info().Str("users_file", s.cfg.UsersFile).Msg("console: demo users written; their passwords are in passwords.txt beside it")
		}
		if users, err = LoadUsers(s.cfg.UsersFile); err != nil {
			return err
		}
	}
	var err error
	var inv *flows.Inventory
	if s.cfg.FlowsFile != "" {
		if inv, err = flows.Load(s.cfg.FlowsFile); err != nil {
			// Without the inventory the console still serves; only flow
			// activation is off, and its page says why.
			s.bus.Logger().Warn().Err(err).Str("flows_file", s.cfg.FlowsFile).Msg("console: flows.yaml not loaded: flow activation is off")
		}
	}
	w := newWeb(s.bus.JetStream(), s.bus.Audit(), st, users, inv)
	w.index = idx
	if s.cfg.OIDC.Issuer != "" {
		if w.oidc, err = newOIDC(s.cfg.OIDC); err != nil {
			return err
		}
	}
	h := w.handler()
	s.handler.Store(&h)
	if s.cfg.Addr == "" {
		return nil // served on the host's listener only (Routes)
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		// A busy port (a second sinew up on this machine) costs the web
		// console, not the pipeline: the index and triage go on.
		s.bus.Logger().Error().Err(err).Str("addr", s.cfg.Addr).Msg("console: web console not started (set console.addr)")
		return nil
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	s.bus.Logger().Info().Str("addr", ln.Addr().String()).Msg("console: web console listening")
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// expiry writes, once a day, which audit records the retention removes
// within the next 30 days (audit.RecordExpiry): an expiry is never silent.
func (s *Service) expiry(ctx context.Context) error {
	for {
		x, err := audit.RecordExpiry(ctx, s.bus.JetStream(), s.bus.Audit(), 30*24*time.Hour, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			s.bus.Logger().Warn().Err(err).Msg("audit retention check")
		case x.Records > 0:
			s.bus.Logger().Warn().Int("records", x.Records).Uint64("first_seq", x.FirstSeq).Uint64("last_seq", x.LastSeq).
				Msg("audit records reach their retention within 30 days (recorded on the trail)")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(24 * time.Hour):
		}
	}
}

// Ready is nil once the index answers lookups and the indexer reads AUDIT.
func (s *Service) Ready() error { return s.started.Ready(s.bus, "console") }
