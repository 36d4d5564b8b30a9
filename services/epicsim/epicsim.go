// Package epicsim simulates Epic's published interfaces (MLLP sender and receiver, FHIR R4 server, Resolute journal files) for make run, the cutover drill and the e2e tests.
//
// This is the service's frame on the shared runtime; its flows arrive with
// their own changes.
package epicsim

import "github.com/sinewhq/sinew/pkg/bus"

// Config is the epicsim service's configuration.
type Config struct {
	bus.ServiceConfig `yaml:",inline"`
	// Where synthetic HL7 traffic is sent.
	MLLPTarget string `yaml:"mllp_target"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{ServiceConfig: bus.DefaultServiceConfig(), MLLPTarget: "127.0.0.1:2575"}
	c.HTTPAddr = "127.0.0.1:9107"
	return c
}

// Service is the running epicsim service.
type Service struct {
	bus.Placeholder
	cfg Config
}

// New returns the service on bus b.
func New(cfg Config, b *bus.Bus) (*Service, error) {
	return &Service{Placeholder: bus.Placeholder{Bus: b}, cfg: cfg}, nil
}
