package main

import (
	"context"
	"flag"
	"time"

	"github.com/sinewhq/sinew/pkg/telemetry"
)

// healthVerbs: the probe of a FROM scratch container (no shell, no curl),
// e.g. a NATS node's monitoring /healthz in deploy/compose.
func healthVerbs() []verb {
	return []verb{
		{name: "health", summary: "exit 0 when a health URL (a service's /readyz, a NATS node's /healthz) answers 200", setup: func(fs *flag.FlagSet) runFunc {
			url := fs.String("url", "http://127.0.0.1:8080/readyz", "URL to GET")
			timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
			show := fs.Bool("print", false, "write the answer's body to stdout (e.g. a container's /metrics)")
			return func(ctx context.Context, e *env, _ []string) error {
				body, err := telemetry.Probe(ctx, *url, *timeout)
				if err == nil && *show {
					_, err = e.stdout.Write(body)
				}
				return err
			}
		}},
	}
}
