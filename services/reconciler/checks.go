package reconciler

import (
	"context"
	"fmt"
	"time"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/flowstate"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// checkFlows are the active flows with a reconciliation of their own
// (registry.Entry.Check), active by flow_state, else by flows.yaml.
func (s *Service) checkFlows(ctx context.Context) []*registry.Flow {
	st, err := flowstate.Open(ctx, s.bus.JetStream())
	var out []*registry.Flow
	for _, f := range s.flows.All() {
		if f.Entry.Check == nil {
			continue
		}
		state := f.State
		if err == nil {
			if r, ok, gerr := st.Get(ctx, f.ID); gerr == nil && ok {
				state = r.State
			}
		}
		if state == flows.Active {
			out = append(out, f)
		}
	}
	return out
}

// runChecks runs every active flow's Check for today (UTC) and publishes
// the result; runInventory calls it each run.
func (s *Service) runChecks(ctx context.Context, now time.Time) {
	for _, f := range s.checkFlows(ctx) {
		if err := s.ReconcileCheck(ctx, f.ID, now.UTC().Truncate(24*time.Hour)); err != nil && ctx.Err() == nil {
			s.bus.Logger().Warn().Err(err).Str("flow", f.ID).Msg("flow reconciliation")
		}
	}
}

// ReconcileCheck runs flow's own reconciliation (registry.Entry.Check)
// for day and publishes its rows on RECON, with a triage event when the
// verdict fails; nothing when the flow had nothing to compare.
func (s *Service) ReconcileCheck(ctx context.Context, flow string, day time.Time) error {
	f, ok := s.flows.Get(flow)
	if !ok || f.Entry.Check == nil {
		return fmt.Errorf("flow %s has no reconciliation of its own", flow)
	}
	tol, err := recon.ParseTolerance(f.Tolerances)
	if err != nil {
		return fmt.Errorf("flow %s: %w", flow, err)
	}
	res, err := f.Entry.Check(ctx, f.Flow, registry.CheckEnv{JS: s.bus.JetStream(), Inventory: s.inv, Day: day, Tolerance: tol,
		Now: time.Now().UTC(), Grace: s.cfg.InventoryGrace})
	if err != nil || res == nil {
		return err
	}
	return s.publish(ctx, flow, res)
}
