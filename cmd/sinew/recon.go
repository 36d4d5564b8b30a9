package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/streams"
)

func cmdRecon(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "report" {
		fmt.Fprintln(stderr, "usage: sinew recon report [--flow F] [--batch ID] [--json]")
		return exitError(2)
	}
	fs := flag.NewFlagSet("sinew recon report", flag.ContinueOnError)
	url := natsFlags(fs)
	flow := fs.String("flow", "", "only this flow")
	batch := fs.String("batch", "", "only this batch id")
	asJSON := fs.Bool("json", false, "one JSON object per row")
	pos, err := parse(fs, args[1:], stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "sinew recon report: unexpected argument %q\n", pos[0])
		return exitError(2)
	}
	c, err := dial(url)
	if err != nil {
		return err
	}
	defer c.Close()
	return reconReport(ctx, c.js, *flow, *batch, *asJSON, stdout, stderr)
}

// reconReport prints the current state of every selected batch and exits
// non-zero (exitError 1) when one is not pass, or when none is selected.
func reconReport(ctx context.Context, js jetstream.JetStream, flow, batch string, asJSON bool, stdout, stderr io.Writer) error {
	board, err := readRecon(ctx, js, flow, batch)
	if err != nil {
		return err
	}
	batches := board.Batches()
	if len(batches) == 0 {
		fmt.Fprintf(stderr, "sinew recon: nothing reconciled matches%s\n", selection(flow, batch))
		return exitError(1)
	}
	if asJSON {
		err = reconJSON(batches, stdout)
	} else {
		err = reconTables(batches, stdout)
	}
	if err != nil {
		return err
	}
	failed := 0
	for _, b := range batches {
		if b.Fails() {
			failed++
			v := b.Verdict()
			if v == "" {
				v = "no summary yet"
			}
			fmt.Fprintf(stderr, "sinew recon: %s batch %s: %s\n", b.Flow, b.Scope, v)
		}
	}
	if failed > 0 {
		return exitError(1)
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

// readRecon reads RECON from the start to its current end with an ordered
// consumer, keeping the latest row per (flow, batch, tier, key).
func readRecon(ctx context.Context, js jetstream.JetStream, flow, batch string) (*recon.Board, error) {
	board := recon.NewBoard()
	err := streams.Scan(ctx, js, streams.Recon, recon.SubjectFilter(flow), time.Time{}, func(m jetstream.Msg) error {
		var p sinewv1.ReconRow
		if err := proto.Unmarshal(m.Data(), &p); err != nil {
			return fmt.Errorf("recon: %s: not a ReconRow: %w", m.Subject(), err)
		}
		if batch == "" || p.GetScope() == batch {
			if err := board.AddProto(&p); err != nil {
				return fmt.Errorf("recon: %s: %w", m.Subject(), err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return board, nil
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
