package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/batchstate"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/recon"
)

func reconVerbs() []verb {
	return []verb{{name: "recon report", summary: "reconciliation verdicts; exits 1 on a variance, a rejected, stuck or unreconciled batch, pending or nothing", setup: func(fs *flag.FlagSet) runFunc {
		var o reportOptions
		conn := addConnFlags(fs)
		fs.StringVar(&o.Flow, "flow", "", "only this flow")
		fs.StringVar(&o.Batch, "batch", "", "only this batch id")
		fs.BoolVar(&o.JSON, "json", false, "one JSON object per row")
		fs.DurationVar(&o.StuckAfter, "stuck-after", batchstate.DefaultStuckAfter, "a batch with no progress for longer is reported stuck")
		flowsFile := fs.String("flows", "", "flows.yaml: which flows are reconciled batch by batch (default $SINEW_FLOWS, <data dir>/flows.yaml, ./flows.yaml; none: the flows batch_state records)")
		return func(ctx context.Context, e *env, pos []string) error {
			o.PerBatch = perBatchFlows(*flowsFile, conn.dataDir)
			if len(pos) > 0 {
				return usageError{fmt.Errorf("recon report: unexpected argument %q", pos[0])}
			}
			c, err := conn.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			return reconReport(ctx, c.js, o, e.stdout, e.stderr)
		}
	}}}
}

// reportOptions select and judge what `sinew recon report` shows.
type reportOptions struct {
	Flow, Batch string
	// PerBatch are the flows reconciled batch by batch (perBatchFlows);
	// nil: the flows batch_state records.
	PerBatch   []string
	JSON       bool
	StuckAfter time.Duration // batchstate.DefaultStuckAfter when 0
	Now        time.Time     // the clock (tests); time.Now when zero
}

// perBatchFlows are the flows reconciled batch by batch (flows.yaml
// reconcile.kind gl-batch), whose every arrival is tracked in batch_state:
// from the flows.yaml found as findFlows looks (--flows, $SINEW_FLOWS, the
// data dir's, ./flows.yaml); without one, nil (perBatch then takes the
// flows batch_state records).
func perBatchFlows(flowsFlag, dataDir string) []string {
	path, err := findFlows(flowsFlag, os.Getenv("SINEW_FLOWS"), dataDir)
	if err != nil {
		return nil
	}
	inv, err := flows.Load(path)
	if err != nil {
		return nil
	}
	ids := []string{}
	for _, f := range inv.ByReconcile(flows.ReconcileGLBatch) {
		ids = append(ids, f.ID)
	}
	return ids
}

// perBatch is given (flows.yaml's per-batch flows) or, when nil, the
// selected flow and every flow batch_state records.
func perBatch(ctx context.Context, st *batchstate.Store, given []string, flow string) ([]string, error) {
	if given != nil {
		return given, nil
	}
	all, err := st.List(ctx, flow)
	if err != nil {
		return nil, err
	}
	var ids []string
	if flow != "" {
		ids = append(ids, flow)
	}
	for _, s := range all {
		if !slices.Contains(ids, s.Flow) {
			ids = append(ids, s.Flow)
		}
	}
	return ids, nil
}

// reconReport prints the current state of every selected batch and exits
// non-zero (exitError 1) when one is not pass, or when none is selected.
// Besides RECON's rows it reads batch_state and BATCH_IN: a batch that
// arrived and is rejected, failed, stuck, dead-lettered or not reconciled
// yet fails the report too, until it is reconciled with verdict pass or
// an operator resolves it (`sinew batches resolve`); a resolved batch's
// failing verdict is shown and not counted.
func reconReport(ctx context.Context, js jetstream.JetStream, o reportOptions, stdout, stderr io.Writer) error {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	board, err := recon.ReadBoard(ctx, js, o.Flow, o.Batch)
	if err != nil {
		return err
	}
	states, err := arrivedBatches(ctx, js, o.Flow, o.PerBatch)
	if err != nil {
		return err
	}
	resolved := map[string]*batchstate.State{}
	for _, s := range states {
		if s.IsResolved() && !s.ByFile {
			resolved[s.Flow+"/"+s.BatchID] = s
		}
	}
	var problems []batchstate.Problem
	for _, p := range batchstate.Review(states, batchstate.ReviewOptions{Now: o.Now, StuckAfter: o.StuckAfter}) {
		if o.Batch == "" || p.State.BatchID == o.Batch || strings.HasPrefix(p.State.SHA256, strings.TrimPrefix(o.Batch, "file:")) && len(o.Batch) >= 8 {
			problems = append(problems, p)
		}
	}
	batches := board.Batches()
	// Unresolved variance items hold the flow's verdict whatever RECON says.
	open, err := blockingTriage(ctx, js, o.Flow)
	if err != nil {
		return err
	}
	if len(batches) == 0 && len(problems) == 0 && len(open) == 0 {
		fmt.Fprintf(stderr, "sinew recon: nothing reconciled matches%s\n", selection(o.Flow, o.Batch))
		return exitError(1)
	}
	if o.JSON {
		err = reconJSON(batches, stdout)
		if err == nil {
			err = problemsJSON(problems, o.Now, stdout)
		}
	} else {
		err = reconTables(batches, stdout)
		if err == nil {
			err = problemsTable(problems, len(batches) > 0, stdout)
		}
	}
	if err != nil {
		return err
	}
	failed := 0
	for _, b := range batches {
		if b.Fails() {
			v := b.Verdict()
			if v == "" {
				v = "no summary yet"
			}
			if r := resolved[b.Flow+"/"+b.Scope]; r != nil && v == r.Verdict {
				fmt.Fprintf(stderr, "sinew recon: %s batch %s: %s, resolved by %s: %s\n", b.Flow, b.Scope, v, r.Resolved.By, r.Resolved.Reason)
				continue
			}
			failed++
			fmt.Fprintf(stderr, "sinew recon: %s batch %s: %s\n", b.Flow, b.Scope, v)
		}
	}
	for _, p := range problems {
		failed++
		fmt.Fprintf(stderr, "sinew recon: %s batch %s: %s: %s\n", p.State.Flow, p.State.Name(), p.Kind, p.Why)
	}
	for _, it := range open {
		failed++
		fmt.Fprintf(stderr, "sinew recon: %s: triage item %s %s (%s, %s): %s\n", it.Flow, it.ID, it.State, it.Reason, ownerOrNobody(it.Owner), it.Summary)
	}
	if failed > 0 {
		return exitError(1)
	}
	return nil
}

// arrivedBatches is every batch of the per-batch flows (of flow, when
// set) that arrived: batch_state and the manifests on BATCH_IN.
func arrivedBatches(ctx context.Context, js jetstream.JetStream, flow string, given []string) ([]*batchstate.State, error) {
	if flow != "" && given != nil && !slices.Contains(given, flow) {
		return nil, nil
	}
	st, err := batchstate.Open(ctx, js)
	if err != nil {
		return nil, err
	}
	ids, err := perBatch(ctx, st, given, flow)
	if err != nil {
		return nil, err
	}
	return st.Arrived(ctx, js, flow, ids)
}

func problemsTable(problems []batchstate.Problem, gap bool, w io.Writer) error {
	if len(problems) == 0 {
		return nil
	}
	if gap {
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "batches not reconciled:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLOW\tBATCH\tSTEP\tPROBLEM\tUPDATED\tWHY")
	for _, p := range problems {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.State.Flow, p.State.Name(), p.State.Step, p.Kind,
			p.State.Updated.UTC().Format(time.RFC3339), p.Why)
	}
	return tw.Flush()
}

// problemsJSON writes a tier-0 row per batch not reconciled: key
// "batch-state", verdict the problem kind.
func problemsJSON(problems []batchstate.Problem, now time.Time, w io.Writer) error {
	enc := json.NewEncoder(w)
	for _, p := range problems {
		if err := enc.Encode(rowJSON{Flow: p.State.Flow, Batch: p.State.Name(), Tier: recon.SummaryTier, Key: "batch-state",
			Hop: p.State.Step, Verdict: p.Kind, Explanation: p.Why, CheckedAt: now.UTC()}); err != nil {
			return err
		}
	}
	return nil
}

func selection(flow, batch string) string {
	var s []string
	if flow != "" {
		s = append(s, "flow "+flow)
	}
	if batch != "" {
		s = append(s, "batch "+batch)
	}
	if len(s) == 0 {
		return " (RECON holds no rows)"
	}
	return " " + strings.Join(s, ", ")
}

func reconTables(batches []*recon.BatchState, w io.Writer) error {
	for i, b := range batches {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if b.Summary == nil {
			fmt.Fprintf(w, "%s batch %s: no summary yet\n", b.Flow, b.Scope)
		} else {
			s := b.Summary
			fmt.Fprintf(w, "%s batch %s: %s (checked %s)\n  %s\n", b.Flow, b.Scope, strings.ToUpper(s.Row.Verdict),
				s.CheckedAt.UTC().Format(time.RFC3339), s.Row.Explanation)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIER\tKEY\tHOP\tSOURCE\tTARGET\tVARIANCE\tVERDICT\tEXPLANATION")
		for _, e := range b.Rows() {
			r := e.Row
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Tier, r.Key, r.Hop, value(r, r.Source), value(r, r.Target),
				value(r, r.Variance), r.Verdict, r.Explanation)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// value is an amount with its currency, or a count.
func value(r recon.Row, v money.Amount) string {
	s := r.FormatValue(v)
	if r.Unit != "" && r.Unit != recon.UnitLines {
		s += " " + r.Unit
	}
	return s
}

// rowJSON is one row of `sinew recon report --json`. Values are exact
// decimals as strings: counts when unit is "lines", else amounts.
type rowJSON struct {
	Flow        string    `json:"flow"`
	Batch       string    `json:"batch"`
	Tier        int       `json:"tier"`
	Key         string    `json:"key"`
	Hop         string    `json:"hop,omitempty"`
	Unit        string    `json:"unit,omitempty"`
	Source      string    `json:"source"`
	Target      string    `json:"target"`
	Variance    string    `json:"variance"`
	Verdict     string    `json:"verdict"`
	Explanation string    `json:"explanation,omitempty"`
	CheckedAt   time.Time `json:"checked_at"`
}

func reconJSON(batches []*recon.BatchState, w io.Writer) error {
	enc := json.NewEncoder(w)
	for _, b := range batches {
		entries := b.Rows()
		if b.Summary != nil {
			entries = append([]recon.Entry{*b.Summary}, entries...)
		}
		for _, e := range entries {
			r := e.Row
			if err := enc.Encode(rowJSON{Flow: e.Flow, Batch: r.Scope, Tier: r.Tier, Key: r.Key, Hop: r.Hop, Unit: r.Unit,
				Source: r.FormatValue(r.Source), Target: r.FormatValue(r.Target), Variance: r.FormatValue(r.Variance),
				Verdict: r.Verdict, Explanation: r.Explanation, CheckedAt: e.CheckedAt.UTC()}); err != nil {
				return err
			}
		}
	}
	return nil
}
