// Package transform maps ingested events to canonical commands, one mapper per flow, with crosswalks from KV.
//
// This is the service's frame on the shared runtime; its flows arrive with
// their own changes.
package transform

import "github.com/sinewhq/sinew/pkg/bus"

// Config is the transform service's configuration.
type Config struct {
	bus.ServiceConfig `yaml:",inline"`
	// Deliveries handled concurrently per consumer.
	Workers int `yaml:"workers"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{ServiceConfig: bus.DefaultServiceConfig(), Workers: 4}
	c.HTTPAddr = "127.0.0.1:9102"
	return c
}

// Service is the running transform service.
type Service struct {
	bus.Placeholder
	cfg Config
}

// New returns the service on bus b.
func New(cfg Config, b *bus.Bus) (*Service, error) {
	return &Service{Placeholder: bus.Placeholder{Bus: b}, cfg: cfg}, nil
}
