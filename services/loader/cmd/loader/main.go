// Command loader runs Sinew's loader service on its own.
package main

import (
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/services/loader"
)

func main() {
	cfg := loader.DefaultConfig()
	bus.Main("loader", &cfg, func(c *loader.Config, b *bus.Bus) (bus.Service, error) {
		return loader.New(*c, b)
	})
}
