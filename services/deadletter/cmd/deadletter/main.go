// Command deadletter runs Sinew's deadletter service on its own.
package main

import (
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/services/deadletter"
)

func main() {
	cfg := deadletter.DefaultConfig()
	bus.Main("deadletter", &cfg, func(c *deadletter.Config, b *bus.Bus) (bus.Service, error) {
		return deadletter.New(*c, b)
	})
}
