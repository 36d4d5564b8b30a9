// Package console is the web console and HTTP API for operations, finance and privacy officers.
//
// Today it runs the tracking indexer (pkg/track), which files every audit
// record under its business identifiers for `sinew track`, and the triage
// opener (pkg/triage), which opens an item for every variance beyond
// tolerance and every dead letter that needs a person.
package console

import (
	"context"
	"errors"
	"time"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/track"
	"github.com/sinewhq/sinew/pkg/triage"
)

// Config is the console service's configuration.
type Config struct {
	bus.ServiceConfig `yaml:",inline"`
	// Console listener address.
	Addr string `yaml:"addr"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{ServiceConfig: bus.DefaultServiceConfig(), Addr: "127.0.0.1:8088"}
	c.HTTPAddr = "127.0.0.1:9106"
	return c
}

// Service is the running console service.
type Service struct {
	bus     *bus.Bus
	cfg     Config
	started bus.Started
}

// New returns the service on bus b.
func New(cfg Config, b *bus.Bus) (*Service, error) {
	return &Service{bus: b, cfg: cfg}, nil
}

// Run indexes the audit trail and opens triage items until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	js := s.bus.JetStream()
	st, err := triage.Open(ctx, js, triage.Config{Audit: s.bus.Audit()})
	if err != nil {
		return err
	}
	x := track.NewIndexer(js, track.IndexerConfig{Log: *s.bus.Logger()})
	errs := make(chan error, 3)
	go func() { errs <- x.Run(ctx, s.started.Mark) }()
	go func() { errs <- triage.NewOpener(js, st, *s.bus.Logger(), 0).Run(ctx) }()
	go func() { errs <- s.expiry(ctx) }()
	return errors.Join(<-errs, <-errs, <-errs)
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

// Ready is nil once the indexer has bound its consumer.
func (s *Service) Ready() error { return s.started.Ready(s.bus, "console") }
