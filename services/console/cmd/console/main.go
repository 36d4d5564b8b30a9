// Command console runs Sinew's console service on its own.
package main

import (
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/services/console"
)

func main() {
	cfg := console.DefaultConfig()
	bus.Main("console", &cfg, func(c *console.Config, b *bus.Bus) (bus.Service, error) {
		return console.New(*c, b)
	})
}
