package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/dlq"
)

func cmdDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: sinew dlq list|show|replay")
		return exitError(2)
	}
	fs := flag.NewFlagSet("sinew dlq "+args[0], flag.ContinueOnError)
	url := natsFlags(fs)
	asJSON := fs.Bool("json", false, "JSON output")
	filter := fs.String("subject", "", "only dead letters on this DLQ subject filter (e.g. dlq.HL7_IN.>)")
	payload := fs.Bool("payload", false, "show: print the original payload (PHI: the access is audited)")
	actor := fs.String("actor", actorDefault(), "who is acting, for the audit trail")
	reason := fs.String("reason", "", "replay: why (goes to the audit trail)")
	force := fs.Bool("force", false, "replay: replay again a letter replayed before")
	pos, err := parse(fs, args[1:], stderr)
	if err != nil {
		return err
	}
	c, err := dial(url)
	if err != nil {
		return err
	}
	defer c.Close()
	w := audit.NewWriter(c.js, "cli:"+*actor+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)).Keyed(cliAuditKey(url.dataDir))
	st, err := dlq.Open(ctx, c.js, w)
	if err != nil {
		return err
	}
	seqArg := func() (uint64, error) {
		if len(pos) != 1 {
			return 0, fmt.Errorf("dlq %s: want one DLQ sequence number", args[0])
		}
		return strconv.ParseUint(pos[0], 10, 64)
	}
	switch args[0] {
	case "list", "ls":
		return dlqList(ctx, st, *filter, *asJSON, stdout)
	case "show":
		seq, err := seqArg()
		if err != nil {
			return err
		}
		e, err := st.Get(ctx, seq)
		if err != nil {
			return err
		}
		if *payload {
			if err := w.Write(ctx, &sinewv1.AuditEvent{
				Actor: *actor, Action: "view-payload", Flow: e.Letter.Flow, Hop: "dlq", Outcome: "ok",
				Subject: e.Letter.Subject, Stream: e.Letter.Stream, StreamSeq: e.Letter.StreamSeq,
				Detail: fmt.Sprintf("dlq seq %d payload shown", seq),
			}); err != nil {
				return err
			}
			_, err = stdout.Write(e.Letter.Payload)
			return err
		}
		return dlqShow(e, *asJSON, stdout)
	case "replay":
		seq, err := seqArg()
		if err != nil {
			return err
		}
		ri, err := st.Replay(ctx, seq, *actor, *reason, *force)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "replayed dlq seq %d to %s (stream seq %d, replay #%d) by %s\n", seq, ri.Subject, ri.StreamSeq, ri.Count, ri.Actor)
		return nil
	default:
		fmt.Fprintf(stderr, "sinew dlq: unknown verb %q\n", args[0])
		return exitError(2)
	}
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
		Reason: d.Reason, RecordedBy: d.RecordedBy, PayloadAvailable: d.PayloadAvailable,
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

func dlqList(ctx context.Context, st *dlq.Store, filter string, asJSON bool, stdout io.Writer) error {
	enc := json.NewEncoder(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintln(tw, "SEQ\tDEAD AT\tKIND\tSTREAM/CONSUMER\tSUBJECT\tDELIVERIES\tREPLAYED\tREASON")
	}
	err := st.List(ctx, filter, func(e *dlq.Entry) error {
		v := view(e)
		if asJSON {
			return enc.Encode(v)
		}
		replayed := "-"
		if v.Replay != nil {
			replayed = fmt.Sprintf("%s by %s", v.Replay.At.Format(time.RFC3339), v.Replay.Actor)
		}
		reason := v.Reason
		if len(reason) > 80 {
			reason = reason[:77] + "..."
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s/%s\t%s\t%d\t%s\t%s\n", v.Seq, v.DeadAt.Format(time.RFC3339), v.Kind,
			v.Stream, v.Consumer, v.Subject, v.Deliveries, replayed, reason)
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
	row("origin", fmt.Sprintf("%s seq %d via consumer %s", v.Stream, v.StreamSeq, v.Consumer))
	row("subject", v.Subject)
	row("deliveries", v.Deliveries)
	row("flow", v.Flow)
	row("event id", v.EventID)
	row("recorded by", v.RecordedBy)
	if v.PayloadAvailable {
		row("payload", fmt.Sprintf("%d bytes, sha256 %s (sinew dlq show %d --payload)", v.PayloadBytes, v.PayloadSHA256, v.Seq))
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
