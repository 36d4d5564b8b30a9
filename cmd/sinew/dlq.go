package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/streams"
)

func dlqVerbs() []verb {
	return []verb{
		dlqReadVerb("dlq list", []string{"ls"}, "dead letters, oldest first (never the payload)",
			func(ctx context.Context, st *dlq.Store, filter string, s dlq.Selector, asJSON bool, w io.Writer) error {
				return dlqList(ctx, st, filter, s, asJSON, w)
			}),
		{name: "dlq show", args: "SEQ", summary: "one dead letter; --payload: its original bytes as received, --envelope: the stored event (audited)", setup: func(fs *flag.FlagSet) runFunc {
			conn := addConnFlags(fs)
			asJSON := fs.Bool("json", false, "JSON output")
			payload := fs.Bool("payload", false, "print the original bytes exactly as received, e.g. the HL7 text (PHI: the access is audited)")
			envelope := fs.Bool("envelope", false, "print the stored event (receipt or envelope) as protojson, without the original bytes (audited)")
			actor := fs.String("actor", actorDefault(), "who is acting, for the audit trail ($SINEW_ACTOR)")
			return func(ctx context.Context, e *env, pos []string) error {
				seq, err := seqArgs("dlq show", pos, true)
				if err != nil {
					return err
				}
				if *payload && *envelope {
					return errors.New("dlq show: --payload or --envelope, not both")
				}
				st, w, done, err := openDLQ(ctx, conn, *actor)
				if err != nil {
					return err
				}
				defer done()
				ent, err := st.Get(ctx, seq[0])
				if err != nil {
					return err
				}
				if !*payload && !*envelope {
					return dlqShow(ent, *asJSON, e.stdout)
				}
				return dlqShowContent(ctx, st, w, ent, *actor, *payload, e.stdout)
			}
		}},
		{name: "dlq replay", args: "[SEQ...]", summary: "republish dead letters, by SEQ or in bulk by a selection (--dry-run first); --reason required", setup: func(fs *flag.FlagSet) runFunc {
			conn := addConnFlags(fs)
			actor := fs.String("actor", actorDefault(), "who is acting, for the audit trail ($SINEW_ACTOR)")
			reason := fs.String("reason", "", "why (required; recorded in each replay's audit record)")
			force := fs.Bool("force", false, "replay again letters replayed before")
			sel := addSelectFlags(fs)
			all := fs.Bool("all", false, "bulk: select every dead letter (with the selection flags: all that match)")
			dryRun := fs.Bool("dry-run", false, "bulk: print how many would be replayed and the first of them; replay nothing")
			yes := fs.Bool("yes", false, "bulk: replay without asking to confirm the count")
			return func(ctx context.Context, e *env, pos []string) error {
				filter, s, err := sel.selector()
				if err != nil {
					return err
				}
				bulk := *all || filter != "" || !s.Empty()
				if bulk == (len(pos) > 0) {
					return errors.New("dlq replay: want SEQ..., or a selection (--flow, --kind, --error, --code, --subject, --stream, --consumer, --since, --until, --all)")
				}
				if strings.TrimSpace(*reason) == "" && !*dryRun {
					return errors.New("dlq replay: --reason is required: say why, for the audit trail")
				}
				st, w, done, err := openDLQ(ctx, conn, *actor)
				if err != nil {
					return err
				}
				defer done()
				if !bulk {
					seqs, err := seqArgs("dlq replay", pos, false)
					if err != nil {
						return err
					}
					return dlqReplaySeqs(ctx, st, seqs, *actor, *reason, *force, *dryRun, e.stdout)
				}
				s.Replayed = *force
				return dlqReplayBulk(ctx, st, w, filter, s, bulkOptions{actor: *actor, reason: *reason, force: *force, dryRun: *dryRun, yes: *yes, desc: sel.describe(*all)}, e)
			}
		}},
		{name: "dlq discard", args: "SEQ...", summary: "mark dead letters as needing nothing more (kept in the DLQ, audited); --reason required", setup: func(fs *flag.FlagSet) runFunc {
			conn := addConnFlags(fs)
			actor := fs.String("actor", actorDefault(), "who is acting, for the audit trail ($SINEW_ACTOR)")
			reason := fs.String("reason", "", "why (required; recorded with the discard and in its audit record)")
			return func(ctx context.Context, e *env, pos []string) error {
				seqs, err := seqArgs("dlq discard", pos, false)
				if err != nil {
					return err
				}
				if strings.TrimSpace(*reason) == "" {
					return errors.New("dlq discard: --reason is required: say why, for the audit trail")
				}
				st, _, done, err := openDLQ(ctx, conn, *actor)
				if err != nil {
					return err
				}
				defer done()
				for _, seq := range seqs {
					if _, err := st.Discard(ctx, seq, *actor, *reason); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "discarded dlq seq %d by %s\n", seq, *actor)
				}
				return nil
			}
		}},
		dlqReasonsVerb(),
	}
}

// dlqReadVerb is a verb that reads the selected dead letters (dlq list,
// dlq reasons): the connection, --json and selection flags, and the
// store opened without an actor.
func dlqReadVerb(name string, aliases []string, summary string, run func(ctx context.Context, st *dlq.Store, filter string, s dlq.Selector, asJSON bool, w io.Writer) error) verb {
	return verb{name: name, aliases: aliases, summary: summary, setup: func(fs *flag.FlagSet) runFunc {
		conn := addConnFlags(fs)
		asJSON := fs.Bool("json", false, "one JSON object per line")
		sel := addSelectFlags(fs)
		return func(ctx context.Context, e *env, pos []string) error {
			if len(pos) > 0 {
				return fmt.Errorf("%s: unexpected argument %q", name, pos[0])
			}
			filter, s, err := sel.selector()
			if err != nil {
				return err
			}
			s.Replayed = true
			st, _, done, err := openDLQ(ctx, conn, "")
			if err != nil {
				return err
			}
			defer done()
			return run(ctx, st, filter, s, *asJSON, e.stdout)
		}
	}}
}

// selectFlags choose dead letters (dlq list, dlq replay).
type selectFlags struct {
	flow, kind, reason, code, subject, stream, consumer, since, until string
}

// addSelectFlags adds the selection flags. The reason code is --code
// (--reason-code, the older spelling, is kept): --reason is why an operator
// acts, on replay as on every verb that changes something, so no verb
// takes it for a code.
func addSelectFlags(fs *flag.FlagSet) *selectFlags {
	f := &selectFlags{}
	fs.StringVar(&f.flow, "flow", "", "only dead letters of this flow")
	fs.StringVar(&f.kind, "kind", "", "only this kind: "+dlq.KindPermanent+", "+dlq.KindExhausted+", "+dlq.KindMaxDeliveries+", "+dlq.KindTerminated)
	fs.StringVar(&f.reason, "error", "", "only dead letters whose reason contains this text, ignoring case (an error code such as EF04, or words)")
	fs.StringVar(&f.code, "code", "", "only dead letters with this reason code, e.g. SINEW-HL7-103 (sinew dlq reasons lists them; - for none)")
	fs.StringVar(&f.code, "reason-code", "", "the same as --code")
	fs.StringVar(&f.subject, "subject", "", "only dead letters whose original subject matches this filter (wildcards * and >, e.g. 'hl7.in.*.RDS.>')")
	fs.StringVar(&f.stream, "stream", "", "only dead letters from this stream (e.g. HL7_IN)")
	fs.StringVar(&f.consumer, "consumer", "", "only dead letters of this consumer (e.g. transform-hl7; with --stream)")
	fs.StringVar(&f.since, "since", "", "only dead letters dead at or after this time (RFC 3339, YYYY-MM-DD, or a duration ago such as 2h)")
	fs.StringVar(&f.until, "until", "", "only dead letters dead before this time (same forms as --since)")
	return f
}

// selector is the DLQ subject filter ("" for all) and the selection.
func (f *selectFlags) selector() (string, dlq.Selector, error) {
	s := dlq.Selector{Flow: f.flow, Kind: f.kind, Reason: f.reason, Code: f.code, Subject: f.subject}
	if strings.HasPrefix(f.subject, "dlq.") {
		return "", s, fmt.Errorf("--subject %s: it matches the original subject; choose a stream or consumer with --stream and --consumer", f.subject)
	}
	var err error
	if s.Since, err = parseWhen(f.since, time.Now()); err != nil {
		return "", s, fmt.Errorf("--since: %w", err)
	}
	if s.Until, err = parseWhen(f.until, time.Now()); err != nil {
		return "", s, fmt.Errorf("--until: %w", err)
	}
	filter := ""
	switch {
	case f.consumer != "" && f.stream == "":
		return "", s, errors.New("--consumer needs --stream")
	case f.consumer != "":
		filter = "dlq." + streams.Token(f.stream) + "." + streams.Token(f.consumer) + ".>"
	case f.stream != "":
		filter = "dlq." + streams.Token(f.stream) + ".>"
	}
	return filter, s, nil
}

// describe is the selection in words, for the audit record of a bulk replay.
func (f *selectFlags) describe(all bool) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+strconv.Quote(v))
		}
	}
	add("flow", f.flow)
	add("kind", f.kind)
	add("error", f.reason)
	add("code", f.code)
	add("subject", f.subject)
	add("stream", f.stream)
	add("consumer", f.consumer)
	add("since", f.since)
	add("until", f.until)
	if len(parts) == 0 && all {
		return "all"
	}
	return strings.Join(parts, " ")
}

// parseWhen reads a point in time: RFC 3339, a date (UTC midnight), or a
// duration before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2026-11-26T20:00:00Z), a date (2026-11-26) or a duration ago (90m)", s)
}

// seqArgs reads DLQ sequence numbers (exactly one when one is set).
func seqArgs(verb string, pos []string, one bool) ([]uint64, error) {
	if len(pos) == 0 || (one && len(pos) != 1) {
		return nil, fmt.Errorf("%s: want one DLQ sequence number (the SEQ column of sinew dlq list)", verb)
	}
	seqs := make([]uint64, len(pos))
	for i, p := range pos {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%s: %q is not a DLQ sequence number", verb, p)
		}
		seqs[i] = n
	}
	return seqs, nil
}

// openDLQ connects and opens the DLQ; actor names the audit writer ("" for
// a read-only verb, which writes no audit record).
func openDLQ(ctx context.Context, conn *connFlags, actor string) (*dlq.Store, *audit.Writer, func(), error) {
	c, err := conn.dial()
	if err != nil {
		return nil, nil, nil, err
	}
	var w *audit.Writer
	if actor != "" {
		w = audit.NewWriter(c.js, "cli:"+actor+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)).Keyed(cliAuditKey(conn.dataDir))
	}
	st, err := dlq.Open(ctx, c.js, w)
	if err != nil {
		c.Close()
		return nil, nil, nil, err
	}
	return st, w, c.Close, nil
}

// dlqShowContent prints a letter's original bytes (payload) or its stored
// event, after the audit record of the access: no record, nothing shown.
func dlqShowContent(ctx context.Context, st *dlq.Store, w *audit.Writer, ent *dlq.Entry, actor string, payload bool, stdout io.Writer) error {
	d := ent.Letter
	var out []byte
	var err error
	action, what := "view-envelope", "stored event"
	if payload {
		action, what = "view-payload", "original payload"
		out, err = st.Original(ctx, d)
	} else {
		var ev proto.Message
		if ev, err = dlq.Event(d); err == nil {
			out, err = protojson.MarshalOptions{Multiline: true}.Marshal(ev)
			out = append(out, '\n')
		}
	}
	if err != nil {
		return fmt.Errorf("dlq show %d: %w", ent.Seq, err)
	}
	if err := w.Write(ctx, &sinewv1.AuditEvent{
		Actor: actor, Action: action, Flow: d.Flow, Hop: "dlq", Outcome: "ok",
		Subject: d.Subject, Stream: d.Stream, StreamSeq: d.StreamSeq,
		Detail: fmt.Sprintf("dlq seq %d %s shown (%d bytes)", ent.Seq, what, len(out)),
	}); err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

func dlqReplaySeqs(ctx context.Context, st *dlq.Store, seqs []uint64, actor, reason string, force, dryRun bool, stdout io.Writer) error {
	for _, seq := range seqs {
		if dryRun {
			ent, err := st.Get(ctx, seq)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "would replay dlq seq %d to %s\n", seq, ent.Letter.Subject)
			continue
		}
		ri, err := st.Replay(ctx, seq, actor, reason, force)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "replayed dlq seq %d to %s (stream seq %d, replay #%d) by %s\n", seq, ri.Subject, ri.StreamSeq, ri.Count, ri.Actor)
	}
	return nil
}

type bulkOptions struct {
	actor, reason, desc string
	force, dryRun, yes  bool
}

// dryRunShown is how many selected letters a bulk replay lists first.
const dryRunShown = 20

// dlqReplayBulk replays every selected letter, after a dry run's count
// and --yes or a typed confirmation of that count.
func dlqReplayBulk(ctx context.Context, st *dlq.Store, w *audit.Writer, filter string, sel dlq.Selector, o bulkOptions, e *env) error {
	// One scan: letters replayed before are counted apart, so the
	// operator sees them, and replayed again only when forced.
	all := sel
	all.Replayed = true
	every, err := st.Select(ctx, filter, all)
	if err != nil {
		return err
	}
	var entries []*dlq.Entry
	for _, ent := range every {
		if sel.Match(ent) {
			entries = append(entries, ent)
		}
	}
	skipped := len(every) - len(entries)
	fmt.Fprintf(e.stdout, "%d dead letters selected", len(entries))
	if skipped > 0 {
		fmt.Fprintf(e.stdout, " (%d more replayed before, skipped; --force includes them)", skipped)
	}
	fmt.Fprintln(e.stdout)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for i, ent := range entries {
		if i == dryRunShown {
			fmt.Fprintf(tw, "... and %d more\n", len(entries)-dryRunShown)
			break
		}
		if i == 0 {
			fmt.Fprintln(tw, "SEQ\tDEAD AT\tFLOW\tSUBJECT\tREASON")
		}
		d := ent.Letter
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", ent.Seq, d.DeadAt.AsTime().Format(time.RFC3339), d.Flow, d.Subject, shorten(d.Reason, 80))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if o.dryRun || len(entries) == 0 {
		return nil
	}
	if !o.yes {
		fmt.Fprintf(e.stdout, "type %d to replay them all: ", len(entries))
		line, _ := bufio.NewReader(e.stdin).ReadString('\n')
		if strings.TrimSpace(line) != strconv.Itoa(len(entries)) {
			fmt.Fprintln(e.stderr, "sinew dlq replay: not confirmed; nothing replayed (--yes skips the question)")
			return exitError(1)
		}
	}
	if err := w.Write(ctx, &sinewv1.AuditEvent{
		Actor: o.actor, Action: "bulk-replay", Hop: "replay", Outcome: "started",
		Detail: fmt.Sprintf("%d dead letters selected by %s: %s", len(entries), o.desc, o.reason),
	}); err != nil {
		return err
	}
	replayed, failed := 0, 0
	err = st.ReplayAll(ctx, entries, o.actor, o.reason, o.force, func(ent *dlq.Entry, ri *dlq.ReplayInfo, err error) error {
		if err != nil {
			failed++
			fmt.Fprintf(e.stderr, "dlq seq %d: %v\n", ent.Seq, err)
			return ctx.Err()
		}
		replayed++
		fmt.Fprintf(e.stdout, "replayed dlq seq %d to %s (stream seq %d, replay #%d)\n", ent.Seq, ri.Subject, ri.StreamSeq, ri.Count)
		return nil
	})
	fmt.Fprintf(e.stdout, "%d replayed, %d failed\n", replayed, failed)
	if err != nil {
		return err
	}
	if failed > 0 {
		return exitError(1)
	}
	return nil
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

// letterView is a dead letter as the CLI shows it: everything but the payload.
type letterView struct {
	Seq              uint64              `json:"seq"`
	DeadAt           time.Time           `json:"dead_at"`
	Kind             string              `json:"kind"`
	Stream           string              `json:"stream"`
	Consumer         string              `json:"consumer"`
	Subject          string              `json:"subject"`
	StreamSeq        uint64              `json:"stream_seq"`
	Deliveries       uint64              `json:"deliveries"`
	Flow             string              `json:"flow,omitempty"`
	EventID          string              `json:"event_id,omitempty"`
	Reason           string              `json:"reason"`
	ReasonCode       string              `json:"reason_code,omitempty"`
	RecordedBy       string              `json:"recorded_by"`
	PayloadAvailable bool                `json:"payload_available"`
	PayloadBytes     int                 `json:"payload_bytes"`
	PayloadSHA256    string              `json:"payload_sha256,omitempty"`
	Headers          map[string][]string `json:"headers,omitempty"`
	Replay           *dlq.ReplayInfo     `json:"replay,omitempty"`
}

func view(e *dlq.Entry) letterView {
	d := e.Letter
	v := letterView{
		Seq: e.Seq, DeadAt: d.DeadAt.AsTime(), Kind: d.Kind, Stream: d.Stream, Consumer: d.Consumer,
		Subject: d.Subject, StreamSeq: d.StreamSeq, Deliveries: d.Deliveries, Flow: d.Flow, EventID: d.EventId,
		Reason: d.Reason, ReasonCode: d.ReasonCode, RecordedBy: d.RecordedBy, PayloadAvailable: d.PayloadAvailable,
		PayloadBytes: len(d.Payload), Replay: e.Replay,
	}
	if d.PayloadAvailable {
		sum := sha256.Sum256(d.Payload)
		v.PayloadSHA256 = hex.EncodeToString(sum[:])
	}
	if len(d.Headers) > 0 {
		v.Headers = map[string][]string{}
		for k, hv := range d.Headers {
			v.Headers[k] = hv.Values
		}
	}
	return v
}

func dlqList(ctx context.Context, st *dlq.Store, filter string, sel dlq.Selector, asJSON bool, stdout io.Writer) error {
	enc := json.NewEncoder(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintln(tw, "SEQ\tDEAD AT\tKIND\tSTREAM/CONSUMER\tSUBJECT\tDELIVERIES\tREPLAYED\tCODE\tREASON")
	}
	err := st.List(ctx, filter, func(e *dlq.Entry) error {
		if !sel.Match(e) {
			return nil
		}
		v := view(e)
		if asJSON {
			return enc.Encode(v)
		}
		replayed := "-"
		if v.Replay != nil {
			replayed = fmt.Sprintf("%s by %s", v.Replay.At.Format(time.RFC3339), v.Replay.Actor)
		}
		reason := shorten(v.Reason, 80)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s/%s\t%s\t%d\t%s\t%s\t%s\n", v.Seq, v.DeadAt.Format(time.RFC3339), v.Kind,
			v.Stream, v.Consumer, v.Subject, v.Deliveries, replayed, orDash(v.ReasonCode), reason)
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Flush()
}

func dlqShow(e *dlq.Entry, asJSON bool, stdout io.Writer) error {
	v := view(e)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	row := func(k string, val any) { fmt.Fprintf(tw, "%s:\t%v\n", k, val) }
	row("seq", v.Seq)
	row("dead at", v.DeadAt.Format(time.RFC3339Nano))
	row("kind", v.Kind)
	row("reason", v.Reason)
	row("reason code", orDash(v.ReasonCode))
	row("origin", fmt.Sprintf("%s seq %d via consumer %s", v.Stream, v.StreamSeq, v.Consumer))
	row("subject", v.Subject)
	row("deliveries", v.Deliveries)
	row("flow", v.Flow)
	row("event id", v.EventID)
	row("recorded by", v.RecordedBy)
	if v.PayloadAvailable {
		row("payload", fmt.Sprintf("%d bytes, sha256 %s (sinew dlq show %d --payload: the original bytes; --envelope: the stored event)", v.PayloadBytes, v.PayloadSHA256, v.Seq))
	} else {
		row("payload", "unavailable")
	}
	keys := make([]string, 0, len(v.Headers))
	for k := range v.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		row("header "+k, v.Headers[k])
	}
	if v.Replay != nil {
		row("replayed", fmt.Sprintf("%s by %s (%s), stream seq %d, replay #%d", v.Replay.At.Format(time.RFC3339), v.Replay.Actor, v.Replay.Reason, v.Replay.StreamSeq, v.Replay.Count))
	}
	return tw.Flush()
}
