package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/schedule"
)

// flowRunVerb is `sinew flows run FLOW`: a run asked for by hand, begun by
// the flow's scheduler (in transform) under the same lease as scheduled
// runs, followed until it ends.
func flowRunVerb() verb {
	return verb{name: "flows run", args: "FLOW", summary: "run a scheduled flow now (same lease as its schedule) and show its steps and counts until done", setup: func(fs *flag.FlagSet) runFunc {
		conn := addConnFlags(fs)
		day := fs.String("day", "", "the day to catch up, YYYY-MM-DD (default: yesterday, UTC)")
		asJSON := fs.Bool("json", false, "progress and the final record as JSON lines")
		wait := fs.Bool("wait", false, "when another run holds the flow's lease, wait for it instead of refusing")
		timeout := fs.Duration("timeout", 30*time.Minute, "give up following after this long")
		actor := fs.String("actor", actorDefault(), "who asked, for the run record ($SINEW_ACTOR)")
		return func(ctx context.Context, e *env, pos []string) error {
			if len(pos) != 1 {
				return usageError{errors.New("flows run: one flow id expected")}
			}
			if *day != "" {
				if _, err := time.Parse(time.DateOnly, *day); err != nil {
					return usageError{errors.New("flows run: --day wants YYYY-MM-DD")}
				}
			}
			c, err := conn.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(ctx, *timeout)
			defer cancel()
			_, err = runFlow(ctx, c.js, pos[0], *day, *actor, *wait, *asJSON, e.stdout)
			return err
		}
	}}
}

// runFlow asks flow's scheduler for a run of day ("" its default) and
// follows it to its end, returning its record.
func runFlow(ctx context.Context, js jetstream.JetStream, flow, day, actor string, wait, asJSON bool, out io.Writer) (*schedule.Run, error) {
	st, err := schedule.Open(ctx, js)
	if err != nil {
		return nil, err
	}
	if l, _, err := st.Lease(ctx, flow); err != nil {
		return nil, err
	} else if l != nil && time.Now().Before(l.Until) && !wait {
		return nil, fmt.Errorf("flows run: run %s of %s holds the lease (until %s); --wait to queue behind it", l.Run, flow, l.Until.Format(time.RFC3339))
	}
	req := schedule.Request{ID: schedule.ManualID(time.Now()), By: actor, At: time.Now().UTC()}
	if day != "" {
		req.Params = map[string]string{"day": day}
	}
	if err := st.Ask(ctx, flow, req); err != nil {
		return nil, fmt.Errorf("flows run: %w", err)
	}
	last := ""
	for {
		r, err := st.Run(ctx, flow, req.ID)
		if err != nil {
			return nil, err
		}
		line := "waiting for the flow's scheduler (transform) to begin run " + req.ID
		if r != nil {
			line = progressLine(r)
		}
		if line != last {
			if asJSON {
				b, _ := json.Marshal(map[string]any{"run": req.ID, "progress": line, "record": r})
				fmt.Fprintln(out, string(b))
			} else {
				fmt.Fprintln(out, line)
			}
			last = line
		}
		if r != nil && r.Done() {
			if r.Outcome != schedule.Succeeded {
				return r, fmt.Errorf("flows run: %s run %s failed: %s", flow, r.ID, r.Error)
			}
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("flows run: %s run %s: %w (the run goes on; see `sinew recon report`)", flow, req.ID, ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func progressLine(r *schedule.Run) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s run %s %s", r.Flow, r.ID, r.Outcome)
	for _, s := range r.Steps {
		fmt.Fprintf(&b, " | %s: %s", s.Name, s.State)
		for _, k := range slices.Sorted(maps.Keys(s.Counts)) {
			fmt.Fprintf(&b, " %s=%d", k, s.Counts[k])
		}
	}
	if r.Error != "" {
		b.WriteString(" | " + r.Error)
	}
	return b.String()
}
