package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/track"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

func trackVerbs() []verb {
	return []verb{{name: "track", args: "ID", summary: "the timeline of a message by any business id (control id, prescription, batch id, GROUP_ID, REFERENCE21, Fusion request id, event id; --patient for a patient id)", setup: func(fs *flag.FlagSet) runFunc {
		conn := addConnFlags(fs)
		asJSON := fs.Bool("json", false, "one JSON object per hop")
		patient := fs.Bool("patient", false, "ID is a patient identifier (PID-3): looked up by its keyed hash; the lookup is audited")
		authority := fs.String("authority", "", "with --patient: the identifier's assigning authority (PID-3-4), e.g. the facility")
		actor := fs.String("actor", actorDefault(), "who looks (audit record of a --patient lookup)")
		return func(ctx context.Context, e *env, pos []string) error {
			if len(pos) != 1 {
				return usageError{errors.New("track: one ID")}
			}
			if *patient && *authority == "" {
				return usageError{errors.New("track --patient: --authority is required (PID-3-4)")}
			}
			c, err := conn.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			id := pos[0]
			if *patient {
				secret, err := cliAuditSecret(conn.dataDir)
				if err != nil {
					return err
				}
				id = audit.PatientRef(secret, "PID-3:"+*authority, id)
				// Patient-level access is recorded before it happens.
				if err := cliAudit(ctx, c.js, secret, *actor, &sinewv1.AuditEvent{Action: "track", Hop: "track", Outcome: "ok",
					PatientRefs: []string{id}, Detail: "patient timeline looked up"}); err != nil {
					return err
				}
			}
			return printTrack(ctx, c.nc, id, *asJSON, e.stdout)
		}
	}}}
}

// cliAudit writes one audit record as actor on a chain of its own.
func cliAudit(ctx context.Context, js jetstream.JetStream, secret []byte, actor string, ev *sinewv1.AuditEvent) error {
	ev.Actor = actor
	w := audit.NewWriter(js, "cli:"+actor+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)).Keyed(secret)
	return w.Write(ctx, ev)
}

// printTrack asks a console for id's timeline: by its key (the hash),
// computed here, so the identifier itself never goes over NATS.
func printTrack(ctx context.Context, nc *nats.Conn, id string, asJSON bool, stdout io.Writer) error {
	t0 := time.Now()
	hops, err := track.Ask(ctx, nc, track.Key(id))
	if errors.Is(err, track.ErrNotFound) {
		return fmt.Errorf("%w (the index follows the audit trail by a moment; the id is matched exactly)", err)
	}
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		for _, h := range hops {
			if err := enc.Encode(h); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tFLOW\tHOP\tOUTCOME\tRETRIES\tSUBJECT\tSEQ\tTRACE\tFOUND BY\tDETAIL")
	for _, h := range hops {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\n", h.At.UTC().Format("2006-01-02T15:04:05.000Z"), dash(h.Flow), h.Hop, h.Outcome,
			h.Retries, dash(h.Subject), h.StreamSeq, dash(h.TraceID), h.Kind, trimDetail(h.Detail))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d hops in %s\n", len(hops), time.Since(t0).Round(time.Millisecond))
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func trimDetail(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
