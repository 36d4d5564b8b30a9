// Command reconciler runs Sinew's reconciler service on its own.
package main

import (
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/services/reconciler"
)

func main() {
	cfg := reconciler.DefaultConfig()
	bus.Main("reconciler", &cfg, func(c *reconciler.Config, b *bus.Bus) (bus.Service, error) {
		return reconciler.New(*c, b)
	})
}
