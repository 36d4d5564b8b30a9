// Command fusionsim runs Sinew's fusionsim service on its own.
package main

import (
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/services/fusionsim"
)

func main() {
	cfg := fusionsim.DefaultConfig()
	bus.Main("fusionsim", &cfg, func(c *fusionsim.Config, b *bus.Bus) (bus.Service, error) {
		return fusionsim.New(*c, b)
	})
}
