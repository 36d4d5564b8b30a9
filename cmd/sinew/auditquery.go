package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/streams"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// auditQuery selects audit events for the privacy officer.
type auditQuery struct {
	patient, authority, user, flow string
	from, to                       time.Time
	limit                          int
}

func auditQueryVerb() verb {
	return verb{name: "audit query", summary: "the privacy officer's search: events of a patient (by keyed hash), a user or a flow in a time range, as JSON lines; the query itself is audited", setup: func(fs *flag.FlagSet) runFunc {
		conn := addConnFlags(fs)
		var q auditQuery
		var from, to string
		fs.StringVar(&q.patient, "patient", "", "a patient identifier (PID-3); hashed with the audit secret, never sent or stored")
		fs.StringVar(&q.authority, "authority", "", "with --patient: its assigning authority (PID-3-4)")
		fs.StringVar(&q.user, "user", "", "events whose actor is this user or service (prefix match: loader matches loader@host)")
		fs.StringVar(&q.flow, "flow", "", "events of this flow")
		fs.StringVar(&from, "from", "", "from this time: RFC 3339, a date, or a duration before now (24h)")
		fs.StringVar(&to, "to", "", "up to this time (default now)")
		fs.IntVar(&q.limit, "limit", 0, "at most this many events (0 = all)")
		actor := fs.String("actor", actorDefault(), "who asks (audit record of the query)")
		return func(ctx context.Context, e *env, _ []string) error {
			var err error
			now := time.Now()
			if q.from, err = parseWhen(from, now); err != nil {
				return usageError{fmt.Errorf("audit query --from: %w", err)}
			}
			if q.to, err = parseWhen(to, now); err != nil {
				return usageError{fmt.Errorf("audit query --to: %w", err)}
			}
			if q.patient == "" && q.user == "" && q.flow == "" {
				return usageError{errors.New("audit query: give --patient, --user or --flow")}
			}
			if q.patient != "" && q.authority == "" {
				return usageError{errors.New("audit query --patient: --authority is required (PID-3-4)")}
			}
			c, err := conn.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			secret, err := cliAuditSecret(conn.dataDir)
			if err != nil {
				return err
			}
			return runAuditQuery(ctx, c, secret, *actor, q, e.stdout)
		}
	}}
}

// runAuditQuery records the query, then prints the matching events.
func runAuditQuery(ctx context.Context, c *client, secret []byte, actor string, q auditQuery, stdout io.Writer) error {
	ref := ""
	if q.patient != "" {
		ref = audit.PatientRef(secret, "PID-3:"+q.authority, q.patient)
	}
	var crit []string
	for _, kv := range [][2]string{{"user", q.user}, {"flow", q.flow}, {"from", stamp(q.from)}, {"to", stamp(q.to)}} {
		if kv[1] != "" {
			crit = append(crit, kv[0]+"="+kv[1])
		}
	}
	if ref != "" {
		crit = append(crit, "patient="+ref)
	}
	ev := &sinewv1.AuditEvent{Action: "audit-query", Hop: "audit-query", Outcome: "ok", Detail: strings.Join(crit, " ")}
	if ref != "" {
		ev.PatientRefs = []string{ref}
	}
	// Asked before answered: a query nobody can trace must not run.
	if err := cliAudit(ctx, c.js, secret, actor, ev); err != nil {
		return err
	}
	filter := "audit.>"
	if q.flow != "" {
		filter = streams.AuditSubject(q.flow, "*")
	}
	n := 0
	stop := errors.New("limit")
	err := audit.ReadSince(ctx, c.js, filter, q.from, func(e audit.Entry) error {
		for _, ev := range e.Events {
			at := ev.GetAt().AsTime()
			switch {
			case !q.from.IsZero() && at.Before(q.from), !q.to.IsZero() && at.After(q.to):
				continue
			case q.user != "" && !strings.HasPrefix(ev.GetActor(), q.user):
				continue
			case ref != "" && !slices.Contains(ev.GetPatientRefs(), ref):
				continue
			}
			b, err := protojson.Marshal(ev)
			if err != nil {
				return err
			}
			line, _ := json.Marshal(struct {
				StreamSeq uint64          `json:"stream_seq"`
				Writer    string          `json:"writer"`
				Event     json.RawMessage `json:"event"`
			}{e.StreamSeq, e.Record.GetWriter(), b})
			fmt.Fprintln(stdout, string(line))
			if n++; q.limit > 0 && n >= q.limit {
				return stop
			}
		}
		return nil
	})
	if errors.Is(err, stop) {
		return nil
	}
	return err
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
