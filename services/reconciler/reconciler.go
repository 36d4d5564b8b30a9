// Package reconciler reconciles every flow at three tiers (control totals, balances, lines) and publishes RECON rows.
//
// This is the service's frame on the shared runtime; its flows arrive with
// their own changes.
package reconciler

import "github.com/sinewhq/sinew/pkg/bus"

// Config is the reconciler service's configuration.
type Config struct {
	bus.ServiceConfig `yaml:",inline"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{ServiceConfig: bus.DefaultServiceConfig()}
	c.HTTPAddr = "127.0.0.1:9104"
	return c
}

// Service is the running reconciler service.
type Service struct {
	bus.Placeholder
	cfg Config
}

// New returns the service on bus b.
func New(cfg Config, b *bus.Bus) (*Service, error) {
	return &Service{Placeholder: bus.Placeholder{Bus: b}, cfg: cfg}, nil
}
