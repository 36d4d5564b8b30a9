// Command transform runs Sinew's transform service on its own.
package main

import (
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/services/transform"
)

func main() {
	cfg := transform.DefaultConfig()
	bus.Main("transform", &cfg, func(c *transform.Config, b *bus.Bus) (bus.Service, error) {
		return transform.New(*c, b)
	})
}
