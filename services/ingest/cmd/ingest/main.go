// Command ingest runs Sinew's ingest service on its own.
package main

import (
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/services/ingest"
)

func main() {
	cfg := ingest.DefaultConfig()
	bus.Main("ingest", &cfg, func(c *ingest.Config, b *bus.Bus) (bus.Service, error) {
		return ingest.New(*c, b)
	})
}
