// Command epicsim runs Sinew's epicsim service on its own.
package main

import (
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/services/epicsim"
)

func main() {
	cfg := epicsim.DefaultConfig()
	bus.Main("epicsim", &cfg, func(c *epicsim.Config, b *bus.Bus) (bus.Service, error) {
		return epicsim.New(*c, b)
	})
}
