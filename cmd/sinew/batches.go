package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/batchstate"
)

func batchesVerbs() []verb {
	// list, show and resolve share the selection; each parses only its own flags.
	common := func(fs *flag.FlagSet) (*connFlags, *string, *string) {
		return addConnFlags(fs), fs.String("flow", "", "only this flow's batches"),
			fs.String("flows", "", "flows.yaml: which flows are reconciled batch by batch (default $SINEW_FLOWS, <data dir>/flows.yaml, ./flows.yaml)")
	}
	run := func(conn *connFlags, flowsFile *string, o *batchesOptions, sub string) runFunc {
		return func(ctx context.Context, e *env, pos []string) error {
			want := 0
			if sub != "" {
				want = 1
			}
			if len(pos) != want {
				if sub == "" {
					return usageError{fmt.Errorf("batches: unexpected argument %q", pos[0])}
				}
				return usageError{fmt.Errorf("batches %s: one batch id (or file hash or name) expected", sub)}
			}
			if sub == "resolve" && o.Reason == "" {
				return usageError{errors.New("batches resolve: --reason is required")}
			}
			c, err := conn.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			if sub != "" {
				pos = append([]string{sub}, pos...)
			}
			if sub == "resolve" {
				o.AuditKey = cliAuditKey(conn.dataDir)
			}
			o.PerBatch = perBatchFlows(*flowsFile, conn.dataDir)
			return batches(ctx, c.js, *o, pos, e.stdout)
		}
	}
	return []verb{
		{name: "batches", summary: "every batch's step (received → reconciled), groups and Fusion load request", setup: func(fs *flag.FlagSet) runFunc {
			var o batchesOptions
			conn, flow, flowsFile := common(fs)
			fs.BoolVar(&o.JSON, "json", false, "JSON lines")
			fs.DurationVar(&o.StuckAfter, "stuck-after", batchstate.DefaultStuckAfter, "a batch with no progress for longer is marked stuck")
			r := run(conn, flowsFile, &o, "")
			return func(ctx context.Context, e *env, pos []string) error { o.Flow = *flow; return r(ctx, e, pos) }
		}},
		{name: "batches show", args: "ID", summary: "one batch's state: upload, groups, findings, Fusion's line errors, history (JSON)", setup: func(fs *flag.FlagSet) runFunc {
			var o batchesOptions
			conn, flow, flowsFile := common(fs)
			r := run(conn, flowsFile, &o, "show")
			return func(ctx context.Context, e *env, pos []string) error { o.Flow = *flow; return r(ctx, e, pos) }
		}},
		{name: "batches resolve", args: "ID", summary: "record that a rejected, failed or stuck batch needs nothing more (audited)", setup: func(fs *flag.FlagSet) runFunc {
			var o batchesOptions
			conn, flow, flowsFile := common(fs)
			fs.StringVar(&o.Reason, "reason", "", "why the batch needs nothing more (required; goes to the audit trail)")
			fs.StringVar(&o.Actor, "actor", actorDefault(), "who is acting, for the audit trail")
			r := run(conn, flowsFile, &o, "resolve")
			return func(ctx context.Context, e *env, pos []string) error { o.Flow = *flow; return r(ctx, e, pos) }
		}},
	}
}

type batchesOptions struct {
	Flow string
	// PerBatch: see reportOptions.
	PerBatch   []string
	JSON       bool
	StuckAfter time.Duration
	Reason     string
	Actor      string
	AuditKey   []byte    // the audit secret, for the records' MAC
	Now        time.Time // time.Now when zero
}

func batches(ctx context.Context, js jetstream.JetStream, o batchesOptions, pos []string, stdout io.Writer) error {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	st, err := batchstate.Open(ctx, js)
	if err != nil {
		return err
	}
	ids, err := perBatch(ctx, st, o.PerBatch, o.Flow)
	if err != nil {
		return err
	}
	all, err := st.Arrived(ctx, js, o.Flow, ids)
	if err != nil {
		return err
	}
	if len(pos) == 2 {
		b, err := batchstate.Find(all, pos[1])
		if err != nil {
			return err
		}
		if pos[0] == "resolve" {
			if b, err = resolveBatch(ctx, js, st, b, o.Actor, o.Reason, o.AuditKey); err != nil {
				return err
			}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(b)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Updated.Before(all[j].Updated) })
	problem := map[*batchstate.State]batchstate.Problem{}
	for _, p := range batchstate.Review(all, batchstate.ReviewOptions{Now: o.Now, StuckAfter: o.StuckAfter}) {
		problem[p.State] = p
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		for _, b := range all {
			out := struct {
				*batchstate.State
				Problem string `json:"problem,omitempty"`
				Why     string `json:"why,omitempty"`
			}{State: b, Problem: problem[b].Kind, Why: problem[b].Why}
			if err := enc.Encode(out); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLOW\tBATCH\tSTEP\tGROUPS\tLOAD REQUEST\tVERDICT\tPROBLEM\tUPDATED\tDETAIL")
	for _, b := range all {
		done := 0
		for _, g := range b.Groups {
			if g.Step == batchstate.GroupImported {
				done++
			}
		}
		verdict, prob := b.Verdict, problem[b].Kind
		if b.IsResolved() {
			prob = "resolved"
		}
		detail := b.Detail
		if p, ok := problem[b]; ok && p.Kind != batchstate.ProblemPending {
			detail = p.Why
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d imported\t%s\t%s\t%s\t%s\t%s\n", b.Flow, b.Name(), b.Step, done, len(b.Groups),
			b.Upload.RequestID, verdict, prob, b.Updated.UTC().Format("2006-01-02T15:04:05Z"), detail)
	}
	return tw.Flush()
}

// resolveBatch records the operator's resolution and its audit record.
func resolveBatch(ctx context.Context, js jetstream.JetStream, st *batchstate.Store, b *batchstate.State, actor, reason string, key []byte) (*batchstate.State, error) {
	if b.IsResolved() {
		return b, errors.New("batch " + b.Name() + " is already resolved by " + b.Resolved.By)
	}
	was := b.Step
	if b.Verdict != "" {
		was += " (" + b.Verdict + ")"
	}
	w := audit.NewWriter(js, "cli:"+actor+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)).Keyed(key)
	// Audited first: a resolution nobody can trace must not exist.
	if err := w.Write(ctx, &sinewv1.AuditEvent{Actor: actor, Action: "resolve-batch", Flow: b.Flow, Hop: "batches", Outcome: "resolved",
		EventId: b.SHA256, Detail: fmt.Sprintf("batch %s at step %s resolved: %s", b.Name(), was, reason)}); err != nil {
		return nil, err
	}
	return st.Resolve(ctx, b, actor, reason)
}
