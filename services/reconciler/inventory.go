package reconciler

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/flowstate"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/streams"
)

// inventoryFlows are the active flows reconciled as inventory
// (flows.yaml reconcile.kind inventory); active by flow_state, else by
// flows.yaml when the bucket has no record (or cannot be read).
func (s *Service) inventoryFlows(ctx context.Context) []string {
	return s.activeFlows(ctx, flows.ReconcileInventory)
}

// activeFlows are the active flows whose reconcile.kind is kind, as
// inventoryFlows says.
func (s *Service) activeFlows(ctx context.Context, kind string) []string {
	st, err := flowstate.Open(ctx, s.bus.JetStream())
	var out []string
	for _, f := range s.flows.All() {
		if f.Reconcile.Kind != kind {
			continue
		}
		state := f.State
		if err == nil {
			if r, ok, gerr := st.Get(ctx, f.ID); gerr == nil && ok {
				state = r.State
			}
		}
		if state == flows.Active {
			out = append(out, f.ID)
		}
	}
	return out
}

// runInventory reconciles today and yesterday (UTC) of every inventory flow
// every InventoryEvery, until ctx ends; each run also runs the active
// flows' own reconciliations (checks.go).
func (s *Service) runInventory(ctx context.Context) {
	if s.cfg.InventoryEvery <= 0 {
		return
	}
	// The first run comes within a minute of start, so a day's standing
	// shows soon after a restart; then every InventoryEvery.
	t := time.NewTimer(min(s.cfg.InventoryEvery, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			t.Reset(s.cfg.InventoryEvery)
		}
		now := time.Now().UTC()
		s.runChecks(ctx, now)
		for _, flow := range s.activeFlows(ctx, flows.ReconcileEpicAck) {
			if err := s.ReconcileEpicAck(ctx, flow); err != nil && ctx.Err() == nil {
				s.bus.Logger().Warn().Err(err).Str("flow", flow).Msg("Epic acknowledgement reconciliation")
			}
		}
		for _, flow := range s.inventoryFlows(ctx) {
			for _, day := range []time.Time{now.Truncate(24 * time.Hour).Add(-24 * time.Hour), now.Truncate(24 * time.Hour)} {
				if err := s.ReconcileInventoryDay(ctx, flow, day); err != nil && ctx.Err() == nil {
					s.bus.Logger().Warn().Err(err).Str("flow", flow).Str("day", day.Format(time.DateOnly)).Msg("inventory reconciliation")
				}
			}
		}
	}
}

// ReconcileInventoryDay reconciles one day of an inventory flow and
// publishes its rows: the transactions Sinew commanded (FUSION_CMD), what
// the loader recorded (RESULTS) and what Fusion shows.
//
// It reconciles a consistent cut, so traffic during the run raises no
// variance. The cut is a time T (the run's start less InventoryGrace, the
// loader's time to post a command and publish its result): the day's
// commands stored on FUSION_CMD up to T, their results on RESULTS (read to
// the stream's end) and, of Fusion's rows, those of these commands. A
// Fusion row of a command stored after T — or of one whose result is not
// published yet — is beyond the cut and left to the next run; FUSION_CMD
// is read again after Fusion (to its new end) so that every row Sinew
// posted during the run is known by its command. Only a row no command
// ever asked for is "no source transaction".
func (s *Service) ReconcileInventoryDay(ctx context.Context, flow string, day time.Time) error {
	res, err := s.reconcileInventoryCut(ctx, flow, day, time.Now().Add(-s.cfg.InventoryGrace))
	if err != nil || res == nil {
		return err
	}
	return s.publish(ctx, flow, res)
}

// reconcileInventoryCut reconciles flow's day as of cut (see
// ReconcileInventoryDay); nil when the flow had nothing that day.
func (s *Service) reconcileInventoryCut(ctx context.Context, flow string, day, cut time.Time) (*recon.Result, error) {
	day = day.UTC().Truncate(24 * time.Hour)
	dayKey := day.Format(time.DateOnly)
	// Commands and results are stored after the transactions they carry;
	// start a day early so a late day's first transactions are seen.
	since := day.Add(-24 * time.Hour)
	in := &recon.InventoryInput{Scope: dayKey}
	inCut := map[string]bool{}     // the cut's commands, by source key
	commanded := map[string]bool{} // every command seen, by source key
	keys := map[string]bool{}      // idempotency keys of the cut's commands
	js := s.bus.JetStream()
	cmdFilter := streams.FusionCmdSubject(flow, "inventory")
	command := func(m jetstream.Msg, during bool) {
		var c sinewv1.InventoryTransaction
		if proto.Unmarshal(m.Data(), &c) != nil {
			return
		}
		key := c.GetSourceHeaderId() + "/" + c.GetSourceLineId()
		commanded[key] = true
		if during || c.GetTransactionDate().AsTime().UTC().Format(time.DateOnly) != dayKey {
			return
		}
		if meta, err := m.Metadata(); err != nil || meta.Timestamp.After(cut) {
			return // after the cut: the next run's
		}
		inCut[key] = true
		if k := c.GetEnvelope().GetIdempotencyKey(); !keys[k] {
			keys[k] = true
			in.Commands++
		}
	}
	cmdEnd, err := streams.ScanRange(ctx, js, streams.FusionCmd, streams.ScanOptions{Filter: cmdFilter, Since: since}, func(m jetstream.Msg) error {
		command(m, false)
		return nil
	})
	if err != nil {
		return nil, err
	}
	latest := map[string]int{} // idempotency key → index in Sent
	results := map[string]bool{}
	err = streams.Scan(ctx, js, streams.Results, "result."+streams.Token(flow)+".*", since, func(m jetstream.Msg) error {
		var r sinewv1.LoadResult
		if proto.Unmarshal(m.Data(), &r) != nil {
			return nil
		}
		bk := sinewv1.KeyMap(r.GetEnvelope().GetBusinessKeys())
		if bk["source_header_id"] == "" || !strings.HasPrefix(bk["transaction_date"], dayKey) {
			return nil // an item or supplier, or another day
		}
		key := bk["source_header_id"] + "/" + bk["source_line_id"]
		if !inCut[key] {
			return nil // its command is after the cut (or not of this flow's day)
		}
		q, err := recon.ParseQty(bk["quantity"])
		if err != nil {
			return nil
		}
		l := recon.InventoryLine{Key: key, Organization: bk["organization"],
			Subinventory: bk["subinventory"], Item: bk["item"], UOM: bk["uom"], Quantity: q, Day: dayKey,
			Program340B: bk["program_340b"] == "true", Lot: bk["lot"], Serial: bk["serial"]}
		if r.GetOutcome() != "accepted" {
			for _, e := range r.GetErrors() {
				l.Rejected, l.Detail = e.GetCode(), e.GetMessage()
			}
			if l.Rejected == "" {
				l.Rejected = r.GetOutcome()
			}
		}
		results[key] = true
		k := r.GetEnvelope().GetIdempotencyKey()
		if i, ok := latest[k]; ok {
			in.Sent[i] = l // a replay's later outcome wins
			return nil
		}
		latest[k] = len(in.Sent)
		in.Sent = append(in.Sent, l)
		in.Results++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if in.Commands == 0 && in.Results == 0 {
		return nil, nil // nothing of this flow that day
	}
	for k := range inCut {
		if !results[k] {
			in.InFlight++
		}
	}
	code, ok := s.inv.SourceCode(flow)
	if !ok {
		return nil, fmt.Errorf("flow %s has no fusion_source in %s", flow, s.cfg.FlowsFile)
	}
	rows, err := s.fusion.InventoryTransactions(ctx, fusion.InventoryQuery{SourceCode: code, From: day, To: day.Add(24 * time.Hour)})
	if err != nil {
		return nil, fmt.Errorf("inventoryStagedTransactions: %w", err)
	}
	// Commands stored while Fusion was read: their rows may be in the answer.
	if _, err := streams.ScanRange(ctx, js, streams.FusionCmd, streams.ScanOptions{Filter: cmdFilter, StartSeq: cmdEnd + 1}, func(m jetstream.Msg) error {
		command(m, true)
		return nil
	}); err != nil {
		return nil, err
	}
	for _, r := range rows {
		q, err := recon.ParseQty(string(r.TransactionQuantity))
		if err != nil {
			continue
		}
		key := strconv.FormatInt(r.SourceHeaderID, 10) + "/" + strconv.FormatInt(r.SourceLineID, 10)
		if commanded[key] && !results[key] {
			in.BeyondCut++ // posted during the run, or its result not published yet
			continue
		}
		l := recon.InventoryLine{Key: key,
			Organization: r.OrganizationName, Subinventory: r.SubinventoryCode, Item: r.ItemNumber, UOM: r.TransactionUnitOfMeasure,
			Quantity: q, Day: r.TransactionDate.UTC().Format(time.DateOnly), Program340B: r.Program340B, Lot: r.LotNumber,
			Serial: r.SerialNumber, FusionID: strconv.FormatInt(r.TransactionInterfaceID, 10)}
		if r.ProcessFlag == 3 {
			l.Rejected, l.Detail = r.ErrorCode, r.ErrorExplanation
		}
		in.Fusion = append(in.Fusion, l)
	}
	// Transactions of the last ReadLag may not be readable yet.
	in.Final = time.Since(day.Add(24*time.Hour)) > s.cfg.ReadLag
	return recon.ReconcileInventory(in), nil
}

// publish sends a reconciliation's rows to RECON, summary last, and a
// triage event when the verdict needs a person.
func (s *Service) publish(ctx context.Context, flow string, res *recon.Result) error {
	now := time.Now().UTC()
	run := now.Format(time.RFC3339Nano)
	for _, row := range res.Publishable() {
		if _, err := s.bus.Publish(ctx, recon.Subject(flow, row.Tier), recon.MsgID(flow, row, run), row.Proto(flow, now)); err != nil {
			return err
		}
	}
	sum := res.Summary
	if recon.Fails(sum.Verdict) && sum.Verdict != recon.VerdictPending {
		if _, err := s.bus.Publish(ctx, TriageSubject(flow), "triage:"+recon.MsgID(flow, sum.Row(), run), sum.Row().Proto(flow, now)); err != nil {
			return err
		}
		s.bus.Logger().Warn().Str("flow", flow).Str("scope", sum.Scope).Str("verdict", sum.Verdict).
			Msg("reconciliation needs triage: " + sum.Explain())
	}
	s.metrics.observe(flow, res)
	return nil
}
