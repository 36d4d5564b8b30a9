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
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/streams"
)

// inventoryFlows are the active flows whose commands are inventory or
// materials transactions.
func (s *Service) inventoryFlows() []string {
	var out []string
	for _, f := range s.inv.Flows {
		if f.State == "active" && (strings.HasPrefix(f.Target, "fusion.inventory") || strings.HasPrefix(f.Target, "fusion.materials")) {
			out = append(out, f.ID)
		}
	}
	return out
}

// runInventory reconciles today and yesterday (UTC) of every inventory flow
// every InventoryEvery, until ctx ends.
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
		for _, flow := range s.inventoryFlows() {
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
func (s *Service) ReconcileInventoryDay(ctx context.Context, flow string, day time.Time) error {
	day = day.UTC().Truncate(24 * time.Hour)
	dayKey := day.Format(time.DateOnly)
	// Commands and results are stored after the transactions they carry;
	// start a day early so a late day's first transactions are seen.
	since := day.Add(-24 * time.Hour)
	in := &recon.InventoryInput{Scope: dayKey}
	keys := map[string]bool{}
	js := s.bus.JetStream()
	err := streams.Scan(ctx, js, streams.FusionCmd, streams.FusionCmdSubject(flow, "inventory"), since, func(m jetstream.Msg) error {
		var c sinewv1.InventoryTransaction
		if proto.Unmarshal(m.Data(), &c) != nil || c.GetTransactionDate().AsTime().UTC().Format(time.DateOnly) != dayKey {
			return nil
		}
		if k := c.GetEnvelope().GetIdempotencyKey(); !keys[k] {
			keys[k] = true
			in.Commands++
		}
		return nil
	})
	if err != nil {
		return err
	}
	latest := map[string]int{} // idempotency key → index in Sent
	err = streams.Scan(ctx, js, streams.Results, "result."+streams.Token(flow)+".*", since, func(m jetstream.Msg) error {
		var r sinewv1.LoadResult
		if proto.Unmarshal(m.Data(), &r) != nil {
			return nil
		}
		bk := sinewv1.KeyMap(r.GetEnvelope().GetBusinessKeys())
		if bk["source_header_id"] == "" || !strings.HasPrefix(bk["transaction_date"], dayKey) {
			return nil // an item or supplier, or another day
		}
		q, err := recon.ParseQty(bk["quantity"])
		if err != nil {
			return nil
		}
		l := recon.InventoryLine{Key: bk["source_header_id"] + "/" + bk["source_line_id"], Organization: bk["organization"],
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
		return err
	}
	if in.Commands == 0 && in.Results == 0 {
		return nil // nothing of this flow that day
	}
	rows, err := s.fusion.InventoryTransactions(ctx, fusion.InventoryQuery{SourceCode: flows.SourceCode(flow), From: day, To: day.Add(24 * time.Hour)})
	if err != nil {
		return fmt.Errorf("inventoryStagedTransactions: %w", err)
	}
	for _, r := range rows {
		q, err := recon.ParseQty(string(r.TransactionQuantity))
		if err != nil {
			continue
		}
		l := recon.InventoryLine{Key: strconv.FormatInt(r.SourceHeaderID, 10) + "/" + strconv.FormatInt(r.SourceLineID, 10),
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
	res := recon.ReconcileInventory(in)
	return s.publish(ctx, flow, res)
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
	return nil
}
