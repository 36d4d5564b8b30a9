// Package loader posts commands to Fusion (REST, FBDI) and Epic idempotently and publishes what they answered to RESULTS.
//
// This is the service's frame on the shared runtime; its flows arrive with
// their own changes.
package loader

import "github.com/sinewhq/sinew/pkg/bus"

// Config is the loader service's configuration.
type Config struct {
	bus.ServiceConfig `yaml:",inline"`
	// Base URL of Fusion (or fusionsim).
	FusionURL string `yaml:"fusion_url"`
	// Deliveries handled concurrently per consumer.
	Workers int `yaml:"workers"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{ServiceConfig: bus.DefaultServiceConfig(), FusionURL: "http://127.0.0.1:8090", Workers: 4}
	c.HTTPAddr = "127.0.0.1:9103"
	return c
}

// Service is the running loader service.
type Service struct {
	bus.Placeholder
	cfg Config
}

// New returns the service on bus b.
func New(cfg Config, b *bus.Bus) (*Service, error) {
	return &Service{Placeholder: bus.Placeholder{Bus: b}, cfg: cfg}, nil
}
