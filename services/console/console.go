// Package console is the web console and HTTP API for operations, finance and privacy officers.
//
// This is the service's frame on the shared runtime; its flows arrive with
// their own changes.
package console

import "github.com/sinewhq/sinew/pkg/bus"

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
	bus.Placeholder
	cfg Config
}

// New returns the service on bus b.
func New(cfg Config, b *bus.Bus) (*Service, error) {
	return &Service{Placeholder: bus.Placeholder{Bus: b}, cfg: cfg}, nil
}
