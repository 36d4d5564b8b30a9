package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/flowstate"
	"github.com/sinewhq/sinew/pkg/streams"
)

// flowsVerbs are `sinew flows`: every flow's state and backlog, and the
// audited changes of state (docs/operations.md, Flow state).
func flowsVerbs() []verb {
	common := func(fs *flag.FlagSet) (*connFlags, *string) {
		return addConnFlags(fs), fs.String("flows", "", "the integration inventory (default $SINEW_FLOWS, else <data dir>/flows.yaml, else ./flows.yaml)")
	}
	change := func(state, summary string) verb {
		return verb{name: "flows " + verbOf(state), args: "FLOW", summary: summary, setup: func(fs *flag.FlagSet) runFunc {
			conn, file := common(fs)
			reason := fs.String("reason", "", "why (required; goes to the audit trail)")
			actor := fs.String("actor", actorDefault(), "who is acting, for the audit trail ($SINEW_ACTOR)")
			asJSON := fs.Bool("json", false, "progress and outcome as JSON lines")
			wait := fs.Bool("wait", true, "activate: follow the drain until the backlog is empty; pause, stage: until nothing is in flight")
			every := fs.Duration("every", time.Second, "how often progress is reported")
			return func(ctx context.Context, e *env, pos []string) error {
				if len(pos) != 1 {
					return usageError{fmt.Errorf("flows %s: one flow id expected", verbOf(state))}
				}
				if strings.TrimSpace(*reason) == "" {
					return usageError{fmt.Errorf("flows %s: --reason is required", verbOf(state))}
				}
				f, err := loadFlow(*file, conn.dataDir, pos[0])
				if err != nil {
					return err
				}
				c, err := conn.dial()
				if err != nil {
					return err
				}
				defer c.Close()
				return setFlowState(ctx, c.js, f, state, changeOptions{actor: *actor, reason: *reason, json: *asJSON, wait: *wait,
					every: *every, key: cliAuditKey(conn.dataDir)}, e.stdout)
			}
		}}
	}
	return []verb{
		{name: "flows", summary: "every flow: state, input rate, backlog, oldest waiting, dead letters, last reconciliation", setup: func(fs *flag.FlagSet) runFunc {
			conn, file := common(fs)
			asJSON := fs.Bool("json", false, "one JSON object per flow")
			sample := fs.Duration("sample", time.Second, "how long input is counted for the rate")
			return func(ctx context.Context, e *env, pos []string) error {
				if len(pos) != 0 {
					return usageError{fmt.Errorf("flows: unexpected argument %q", pos[0])}
				}
				path, err := findFlows(*file, os.Getenv("SINEW_FLOWS"), conn.dataDir)
				if err != nil {
					return err
				}
				inv, err := flows.Load(path)
				if err != nil {
					return err
				}
				c, err := conn.dial()
				if err != nil {
					return err
				}
				defer c.Close()
				return listFlows(ctx, c.js, inv, *sample, *asJSON, e.stdout)
			}
		}},
		change(flows.Active, "start processing a flow: drain its backlog (progress, rate, ETA), then follow its input (audited)"),
		change(flows.Paused, "stop processing a flow: its input keeps arriving and waits in JetStream (audited)"),
		change(flows.Staged, "hold a flow before cutover: input is kept, nothing is posted (audited)"),
		flowRunVerb(),
	}
}

func verbOf(state string) string { return flowstate.Verb(state) }

func loadFlow(file, dataDir, id string) (*flows.Flow, error) {
	path, err := findFlows(file, os.Getenv("SINEW_FLOWS"), dataDir)
	if err != nil {
		return nil, err
	}
	inv, err := flows.Load(path)
	if err != nil {
		return nil, err
	}
	f, ok := inv.Get(id)
	if !ok {
		return nil, usageError{fmt.Errorf("flows: no flow %q in %s", id, path)}
	}
	return f, nil
}

// flowRow is one line of `sinew flows`.
type flowRow struct {
	Flow    string `json:"flow"`
	Pattern string `json:"pattern"`
	State   string `json:"state"`
	By      string `json:"state_by,omitempty"`
	Reason  string `json:"state_reason,omitempty"`
	// Held is whether the flow's input is kept back while not active
	// (its own consumer); false for flows whose input is not yet per flow.
	Held bool `json:"held"`
	// RatePerSec is the flow's input while sampled.
	RatePerSec float64 `json:"input_per_sec"`
	Backlog    uint64  `json:"backlog"`
	InFlight   int     `json:"in_flight"`
	// OldestSec is the age of the oldest message not yet processed.
	OldestSec   float64 `json:"oldest_waiting_sec"`
	DeadLetters int     `json:"dead_letters"`
	Recon       string  `json:"last_reconciliation,omitempty"`
	ReconAt     string  `json:"last_reconciliation_at,omitempty"`
}

// inputs are the stream and subject filter of flow f's input ("" when it
// has none Sinew takes in).
func inputs(f *flows.Flow) (stream, filter string) {
	switch {
	case f.HL7 != nil:
		return streams.HL7In, streams.HL7FlowFilter(f.ID)
	case strings.Contains(f.Pattern, "batch"):
		return streams.BatchIn, streams.BatchSubject(f.ID)
	}
	return "", ""
}

func subjectCount(ctx context.Context, js jetstream.JetStream, stream, filter string) (uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}

// waitingLetters counts each flow's dead letters waiting for a person: one
// replayed or discarded is handled (a replay that fails again is a letter
// of its own). Nil when the DLQ cannot be read.
func waitingLetters(ctx context.Context, js jetstream.JetStream) map[string]int {
	d, err := dlq.Open(ctx, js, nil)
	if err != nil {
		return nil
	}
	letters := map[string]int{}
	_ = d.List(ctx, "", func(e *dlq.Entry) error {
		if e.Replay == nil && e.Discard == nil {
			letters[e.Letter.GetFlow()]++
		}
		return nil
	})
	return letters
}

func listFlows(ctx context.Context, js jetstream.JetStream, inv *flows.Inventory, sample time.Duration, asJSON bool, stdout io.Writer) error {
	st, err := flowstate.Open(ctx, js)
	if err != nil {
		return err
	}
	states, err := st.States(ctx, inv)
	if err != nil {
		return err
	}
	rows := make([]flowRow, len(inv.Flows))
	before := make([]uint64, len(inv.Flows))
	for i := range inv.Flows {
		f := &inv.Flows[i]
		r := states[f.ID]
		rows[i] = flowRow{Flow: f.ID, Pattern: f.Pattern, State: r.State, By: r.By, Reason: r.Reason}
		if s, filter := inputs(f); s != "" {
			if before[i], err = subjectCount(ctx, js, s, filter); err != nil {
				return err
			}
		}
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(sample):
	}
	elapsed := time.Since(start).Seconds()
	letters := waitingLetters(ctx, js)
	for i := range inv.Flows {
		f := &inv.Flows[i]
		row := &rows[i]
		row.DeadLetters = letters[f.ID]
		if s, filter := inputs(f); s != "" {
			n, err := subjectCount(ctx, js, s, filter)
			if err != nil {
				return err
			}
			row.RatePerSec = float64(n-min(n, before[i])) / elapsed
		}
		if ins := flowstate.Inputs(f); len(ins) > 0 {
			b, err := flowstate.BacklogOf(ctx, js, ins)
			if err != nil {
				return err
			}
			row.Held = true
			row.Backlog, row.InFlight, row.OldestSec = b.Pending, b.InFlight, b.Oldest.Seconds()
		}
		if m, err := js.Stream(ctx, streams.Recon); err == nil {
			if raw, err := m.GetLastMsgForSubject(ctx, "recon."+streams.Token(f.ID)+".>"); err == nil {
				rr := &sinewv1.ReconRow{}
				if proto.Unmarshal(raw.Data, rr) == nil && rr.GetVerdict() != "" {
					row.Recon = fmt.Sprintf("tier %d %s", rr.GetTier(), rr.GetVerdict())
				} else {
					row.Recon = strings.TrimPrefix(raw.Subject, "recon."+f.ID+".")
				}
				row.ReconAt = raw.Time.UTC().Format(time.RFC3339)
			}
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLOW\tPATTERN\tSTATE\tINPUT/S\tBACKLOG\tOLDEST\tDLQ\tLAST RECON")
	for _, r := range rows {
		bl, oldest := "-", "-"
		if r.Held {
			bl = strconv.FormatUint(r.Backlog, 10)
			if r.Backlog > 0 {
				oldest = (time.Duration(r.OldestSec) * time.Second).String()
			}
		}
		recon := r.Recon
		if recon == "" {
			recon = "-"
		} else {
			recon += " " + r.ReconAt
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%s\t%s\t%d\t%s\n", r.Flow, r.Pattern, r.State, r.RatePerSec, bl, oldest, r.DeadLetters, recon)
	}
	return tw.Flush()
}

type changeOptions struct {
	actor, reason string
	json, wait    bool
	every         time.Duration
	key           []byte
}

// drainEvent is one line of `sinew flows activate --json`.
type drainEvent struct {
	Flow      string  `json:"flow"`
	State     string  `json:"state"`
	Event     string  `json:"event"` // changed, progress, drained, stopped
	Done      uint64  `json:"done"`
	Total     uint64  `json:"total"`
	Remaining uint64  `json:"remaining"`
	InFlight  int     `json:"in_flight"`
	Rate      float64 `json:"rate_per_sec"`
	ETASec    float64 `json:"eta_sec"`
}

// setFlowState records the change (audit first: no record, no change),
// pauses or resumes the flow's consumers, and follows the result.
func setFlowState(ctx context.Context, js jetstream.JetStream, f *flows.Flow, state string, o changeOptions, stdout io.Writer) error {
	st, err := flowstate.Open(ctx, js)
	if err != nil {
		return err
	}
	w := audit.NewWriter(js, "cli:"+o.actor+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)).Keyed(o.key)
	was, err := st.Change(ctx, w, f, state, o.actor, o.reason)
	if err != nil {
		return err
	}
	out := func(ev drainEvent) {
		ev.Flow, ev.State = f.ID, state
		if o.json {
			_ = json.NewEncoder(stdout).Encode(ev)
			return
		}
		switch ev.Event {
		case "changed":
			fmt.Fprintf(stdout, "%s: %s -> %s (%d waiting)\n", f.ID, was, state, ev.Remaining)
		case "progress":
			fmt.Fprintf(stdout, "%s %s\n", bar(ev.Done, ev.Total, 30), progressText(ev))
		case "drained":
			fmt.Fprintf(stdout, "%s drained: %d processed at %.0f msg/s\n", f.ID, ev.Done, ev.Rate)
		case "stopped":
			fmt.Fprintf(stdout, "%s %s: nothing in flight, %d waiting\n", f.ID, state, ev.Remaining)
		}
	}
	ins := flowstate.Inputs(f)
	if len(ins) == 0 {
		out(drainEvent{Event: "changed"})
		return nil
	}
	b, err := flowstate.BacklogOf(ctx, js, ins)
	if err != nil {
		return err
	}
	total := b.Left()
	out(drainEvent{Event: "changed", Total: total, Remaining: total, InFlight: b.InFlight})
	if !o.wait {
		return nil
	}
	drain := flowstate.NewDrain(b, time.Now())
	tick := time.NewTicker(o.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		b, err := flowstate.BacklogOf(ctx, js, ins)
		if err != nil {
			return err
		}
		if state != flows.Active {
			if b.InFlight == 0 {
				out(drainEvent{Event: "stopped", Remaining: b.Left()})
				return nil
			}
			continue
		}
		p := drain.Step(b, time.Now())
		ev := drainEvent{Event: "progress", Done: p.Done, Total: p.Total, Remaining: p.Remaining, InFlight: p.InFlight, Rate: p.Rate, ETASec: p.ETASec}
		if p.Remaining == 0 {
			ev.Event = "drained"
			out(ev)
			return nil
		}
		out(ev)
	}
}

func bar(done, total uint64, width int) string {
	n := width
	if total > 0 {
		n = int(done * uint64(width) / total)
	}
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func progressText(ev drainEvent) string {
	eta := "-"
	if ev.ETASec > 0 {
		eta = (time.Duration(ev.ETASec) * time.Second).String()
	}
	return fmt.Sprintf("%d/%d  %.0f msg/s  ETA %s", ev.Done, ev.Total, ev.Rate, eta)
}
