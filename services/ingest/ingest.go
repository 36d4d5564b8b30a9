// Package ingest accepts HL7 v2 over MLLP, FHIR R4 and batch files, commits them to JetStream (HL7_IN, FHIR_IN, BATCH_IN) and only then acknowledges the sender.
//
// This is the service's frame on the shared runtime; its flows arrive with
// their own changes.
package ingest

import "github.com/sinewhq/sinew/pkg/bus"

// Config is the ingest service's configuration.
type Config struct {
	bus.ServiceConfig `yaml:",inline"`
	// MLLP listener address.
	MLLPAddr string `yaml:"mllp_addr"`
	// Batch drop folder.
	DropDir string `yaml:"drop_dir"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{ServiceConfig: bus.DefaultServiceConfig(), MLLPAddr: "127.0.0.1:2575", DropDir: "var/drop"}
	c.HTTPAddr = "127.0.0.1:9101"
	return c
}

// Service is the running ingest service.
type Service struct {
	bus.Placeholder
	cfg Config
}

// New returns the service on bus b.
func New(cfg Config, b *bus.Bus) (*Service, error) {
	return &Service{Placeholder: bus.Placeholder{Bus: b}, cfg: cfg}, nil
}
