// Package fusionsim simulates Oracle Fusion Cloud's published interfaces (erpintegrations, Journal Import, REST resources) with injectable faults.
//
// This is the service's frame on the shared runtime; its flows arrive with
// their own changes.
package fusionsim

import "github.com/sinewhq/sinew/pkg/bus"

// Config is the fusionsim service's configuration.
type Config struct {
	bus.ServiceConfig `yaml:",inline"`
	// Simulator listener address.
	Addr string `yaml:"addr"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{ServiceConfig: bus.DefaultServiceConfig(), Addr: "127.0.0.1:8090"}
	c.HTTPAddr = "127.0.0.1:9108"
	return c
}

// Service is the running fusionsim service.
type Service struct {
	bus.Placeholder
	cfg Config
}

// New returns the service on bus b.
func New(cfg Config, b *bus.Bus) (*Service, error) {
	return &Service{Placeholder: bus.Placeholder{Bus: b}, cfg: cfg}, nil
}
