package registry

import (
	"context"
	"time"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/flowstate"
)

// PollLoop runs a poller's read every interval while its flow is active
// (flow_state, else flows.yaml's state), until ctx ends. A failed read is
// reported and retried at the next tick from the same cursor.
func PollLoop(ctx context.Context, f *flows.Flow, states *flowstate.Store, interval time.Duration, log func(error, string), poll func(context.Context) error) error {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if active(ctx, f, states) {
			if err := poll(ctx); err != nil && ctx.Err() == nil && log != nil {
				log(err, f.ID+" poll failed; the next poll retries from the same cursor")
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func active(ctx context.Context, f *flows.Flow, states *flowstate.Store) bool {
	r, ok, err := states.Get(ctx, f.ID)
	if err != nil {
		return false
	}
	if !ok {
		return f.State == flows.Active
	}
	return r.State == flows.Active
}
