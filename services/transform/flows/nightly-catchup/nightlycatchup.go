// Package nightlycatchup is the nightly-catchup flow: a scheduled batch
// (flows.yaml schedule, run by pkg/schedule in transform, one run at a time
// across replicas) that catches up each active inventory flow's day of
// transactions Fusion lacks (inventory.go) and reports its last run as the
// flow's reconciliation (Check).
package nightlycatchup

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/flowstate"
	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/schedule"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// Flow is the flow's id in flows.yaml.
const Flow = "nightly-catchup"

// CatchUpHeader marks the commands a run re-sends (pkg/schedule).
const CatchUpHeader = schedule.CatchUpHeader

// ParamDay is the run parameter naming the day caught up (YYYY-MM-DD);
// default: the day before the run (UTC).
const ParamDay = "day"

// Entry registers the flow.
func Entry() registry.Entry {
	return registry.Entry{ID: Flow, NewPoller: NewPoller, Check: Check}
}

// busLike is what transform's bus offers beyond publishing protos.
type busLike interface {
	Audit() *audit.Writer
	PublishRaw(ctx context.Context, m *nats.Msg, msgID string) (*jetstream.PubAck, error)
}

// NewPoller builds the flow's scheduler.
func NewPoller(ctx context.Context, f *flows.Flow, env registry.Env) (registry.Poller, error) {
	st, err := schedule.Open(ctx, env.JS)
	if err != nil {
		return nil, err
	}
	states, err := flowstate.Open(ctx, env.JS)
	if err != nil {
		return nil, err
	}
	var cr *schedule.Cron
	if f.Schedule != "" {
		c, err := schedule.Parse(f.Schedule)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.ID, err)
		}
		cr = &c
	}
	host, _ := os.Hostname()
	cfg := schedule.Config{Flow: f.ID, Cron: cr, Holder: host + ":" + strconv.Itoa(os.Getpid()) + ":" + strconv.FormatInt(time.Now().UnixNano(), 36),
		Log: env.Log, Active: func(ctx context.Context) bool {
			r, ok, err := states.Get(ctx, f.ID)
			if err != nil {
				return false
			}
			if !ok {
				return f.State == flows.Active
			}
			return r.State == flows.Active
		}}
	ic := InventoryConfig{JS: env.JS, Fusion: env.Fusion}
	if b, ok := env.Publisher.(busLike); ok {
		cfg.Audit = b.Audit()
		ic.Publish = func(ctx context.Context, m *nats.Msg, id string) error {
			_, err := b.PublishRaw(ctx, m, id)
			return err
		}
	}
	return schedule.New(st, cfg, WithRefresh(Job(ic, env.Inventory, states), refreshConfig(env, states))), nil
}

// Job is one run: each active inventory flow's day caught up, one step each.
func Job(ic InventoryConfig, inv *flows.Inventory, states *flowstate.Store) schedule.Job {
	return func(ctx context.Context, p *schedule.Progress) error {
		day, err := runDay(p)
		if err != nil {
			return err
		}
		var errs []error
		for _, f := range inventoryFlows(ctx, inv, states) {
			p.Step(ctx, "inventory "+f.ID+" "+day.Format(time.DateOnly))
			if err := CatchUpInventory(ctx, ic, f.ID, f.FusionSource, day, p); err != nil {
				p.Fail(ctx, err.Error())
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%d inventory flow(s) not caught up: %w", len(errs), errs[0])
		}
		return nil
	}
}

func runDay(p *schedule.Progress) (time.Time, error) {
	if d := p.Param(ParamDay); d != "" {
		t, err := time.Parse(time.DateOnly, d)
		if err != nil {
			return time.Time{}, fmt.Errorf("parameter day: want YYYY-MM-DD")
		}
		return t, nil
	}
	at := p.Run().Scheduled
	if at.IsZero() {
		at = time.Now()
	}
	return at.UTC().Truncate(24*time.Hour).AddDate(0, 0, -1), nil
}

// inventoryFlows are the active flows reconciled as inventory.
func inventoryFlows(ctx context.Context, inv *flows.Inventory, states *flowstate.Store) []*flows.Flow {
	var out []*flows.Flow
	if inv == nil {
		return nil
	}
	for i := range inv.Flows {
		f := &inv.Flows[i]
		if f.Reconcile.Kind != flows.ReconcileInventory || f.FusionSource == "" {
			continue
		}
		state := f.State
		if states != nil {
			if r, ok, err := states.Get(ctx, f.ID); err == nil && ok {
				state = r.State
			}
		}
		if state == flows.Active {
			out = append(out, f)
		}
	}
	return out
}

// Check reports the flow's latest run as its reconciliation: one row per
// step with the missing transactions found and re-posted; the run passes
// when it succeeded with nothing still missing.
func Check(ctx context.Context, f *flows.Flow, env registry.CheckEnv) (*recon.Result, error) {
	st, err := schedule.Open(ctx, env.JS)
	if err != nil {
		return nil, err
	}
	r, err := st.Latest(ctx, f.ID)
	if err != nil || r == nil || !r.Done() {
		return nil, err
	}
	scope := "run/" + r.ID
	res := &recon.Result{Summary: recon.Summary{Scope: scope, Verdict: recon.VerdictPass}}
	for _, s := range r.Steps {
		if row, ok := refreshRow(scope, s); ok {
			res.Rows = append(res.Rows, row)
			if row.Verdict != recon.VerdictPass {
				res.Summary.Variances++
			}
			continue
		}
		missing, posted := s.Counts[CountMissing], s.Counts[CountPosted]
		v := recon.VerdictPass
		if s.State != schedule.Succeeded || s.Counts[CountStill] > 0 {
			v = recon.VerdictVariance
			res.Summary.Variances++
		}
		res.Summary.Lines += s.Counts[CountSource]
		res.Summary.Missing += s.Counts[CountStill]
		res.Rows = append(res.Rows, recon.Row{Tier: recon.TierTotals, Scope: scope, Key: s.Name, Hop: "catch-up", Unit: recon.UnitLines,
			Source: money.Amount(missing), Target: money.Amount(posted), Variance: money.Amount(posted - missing), Verdict: v,
			Explanation: fmt.Sprintf("%d source transactions, %d in Fusion, %d refused (triage), %d missing, %d re-posted once, %d still missing; step %s",
				s.Counts[CountSource], s.Counts[CountInFusion], s.Counts[CountRejected], missing, posted, s.Counts[CountStill], s.State)})
	}
	if r.Outcome != schedule.Succeeded || res.Summary.Variances > 0 {
		res.Summary.Verdict = recon.VerdictVariance
	}
	return res, nil
}
