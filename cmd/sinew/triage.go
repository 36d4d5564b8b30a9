package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/triage"
)

func triageVerbs() []verb {
	store := func(ctx context.Context, c *client, dataDir, actor string) (*triage.Store, error) {
		w := audit.NewWriter(c.js, "cli:"+actor+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)).Keyed(cliAuditKey(dataDir))
		return triage.Open(ctx, c.js, triage.Config{Audit: w})
	}
	return []verb{
		{name: "triage list", aliases: []string{"ls"}, summary: "triage items, oldest first (default: unresolved)", setup: func(fs *flag.FlagSet) runFunc {
			conn := addConnFlags(fs)
			var f triage.Filter
			fs.StringVar(&f.Flow, "flow", "", "only this flow")
			fs.StringVar(&f.State, "state", "unresolved", "open, acknowledged, resolved, unresolved or all")
			fs.StringVar(&f.Owner, "owner", "", "only this owner's")
			asJSON := fs.Bool("json", false, "one JSON object per item")
			return func(ctx context.Context, e *env, _ []string) error {
				if f.State == "all" {
					f.State = ""
				}
				c, err := conn.dial()
				if err != nil {
					return err
				}
				defer c.Close()
				st, err := triage.Open(ctx, c.js, triage.Config{})
				if err != nil {
					return err
				}
				items, err := st.List(ctx, f)
				if err != nil {
					return err
				}
				return printTriage(items, *asJSON, e.stdout)
			}
		}},
		{name: "triage show", args: "ID", summary: "one triage item: evidence and history", setup: func(fs *flag.FlagSet) runFunc {
			conn := addConnFlags(fs)
			asJSON := fs.Bool("json", false, "the item as JSON")
			return func(ctx context.Context, e *env, pos []string) error {
				if len(pos) != 1 {
					return usageError{errors.New("triage show: one ID")}
				}
				c, err := conn.dial()
				if err != nil {
					return err
				}
				defer c.Close()
				st, err := triage.Open(ctx, c.js, triage.Config{})
				if err != nil {
					return err
				}
				it, err := st.Get(ctx, pos[0])
				if err != nil {
					return err
				}
				return showTriage(it, *asJSON, e.stdout)
			}
		}},
		{name: "triage assign", args: "ID", summary: "give an item an owner (and a due date); an open item becomes acknowledged; audited", setup: func(fs *flag.FlagSet) runFunc {
			conn := addConnFlags(fs)
			owner := fs.String("owner", "", "who owns it (required)")
			due := fs.String("due", "", "due date, YYYY-MM-DD or RFC 3339 (default: unchanged)")
			actor := fs.String("actor", actorDefault(), "who assigns (audit record)")
			return func(ctx context.Context, e *env, pos []string) error {
				if len(pos) != 1 || *owner == "" {
					return usageError{errors.New("triage assign: one ID and --owner")}
				}
				var d time.Time
				if *due != "" {
					var err error
					if d, err = parseWhen(*due, time.Now()); err != nil {
						return usageError{fmt.Errorf("triage assign --due: %w", err)}
					}
				}
				c, err := conn.dial()
				if err != nil {
					return err
				}
				defer c.Close()
				st, err := store(ctx, c, conn.dataDir, *actor)
				if err != nil {
					return err
				}
				it, err := st.Assign(ctx, *actor, pos[0], *owner, d)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s %s, owner %s, due %s\n", it.ID, it.State, it.Owner, it.Due.Format(time.DateOnly))
				return nil
			}
		}},
		{name: "triage resolve", args: "ID", summary: "close an item with a note; audited", setup: func(fs *flag.FlagSet) runFunc {
			conn := addConnFlags(fs)
			note := fs.String("note", "", "what was done (required)")
			actor := fs.String("actor", actorDefault(), "who resolves (audit record)")
			return func(ctx context.Context, e *env, pos []string) error {
				if len(pos) != 1 || strings.TrimSpace(*note) == "" {
					return usageError{errors.New("triage resolve: one ID and --note")}
				}
				c, err := conn.dial()
				if err != nil {
					return err
				}
				defer c.Close()
				st, err := store(ctx, c, conn.dataDir, *actor)
				if err != nil {
					return err
				}
				it, err := st.Resolve(ctx, *actor, pos[0], *note)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s resolved: %s\n", it.ID, it.Note)
				return nil
			}
		}},
	}
}

func printTriage(items []*triage.Item, asJSON bool, w io.Writer) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, it := range items {
			if err := enc.Encode(it); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFLOW\tKIND\tREASON\tSTATE\tOWNER\tDUE\tSUMMARY")
	now := time.Now()
	for _, it := range items {
		due := it.Due.Format(time.DateOnly)
		if it.Overdue(now) {
			due += " (overdue)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.ID, it.Flow, it.Kind, it.Reason, it.State, ownerOrNobody(it.Owner), due, trimDetail(it.Summary))
	}
	return tw.Flush()
}

func showTriage(it *triage.Item, asJSON bool, w io.Writer) error {
	if asJSON {
		return json.NewEncoder(w).Encode(it)
	}
	fmt.Fprintf(w, "%s  %s  %s  %s\nflow %s, reason %s, owner %s, due %s\nsource %s\n%s\n", it.ID, it.Kind, it.State, it.Opened.Format(time.RFC3339),
		it.Flow, it.Reason, ownerOrNobody(it.Owner), it.Due.Format(time.RFC3339), it.Source, it.Summary)
	if len(it.Evidence) > 0 {
		fmt.Fprintln(w, "evidence:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, k := range slices.Sorted(maps.Keys(it.Evidence)) {
			fmt.Fprintf(tw, "  %s\t%s\n", k, it.Evidence[k])
		}
		_ = tw.Flush()
	}
	fmt.Fprintln(w, "history:")
	for _, h := range it.History {
		fmt.Fprintf(w, "  %s  %s  %s  %s\n", h.At.Format(time.RFC3339), h.Actor, h.Action, h.Detail)
	}
	if it.Note != "" {
		fmt.Fprintf(w, "note: %s\n", it.Note)
	}
	return nil
}

func ownerOrNobody(o string) string {
	if o == "" {
		return "unassigned"
	}
	return o
}

// blockingTriage is what `recon report` counts against a flow: its
// unresolved variance and ambiguous-match items (none on a deployment
// without the triage bucket).
func blockingTriage(ctx context.Context, js jetstream.JetStream, flow string) ([]*triage.Item, error) {
	st, err := triage.Open(ctx, js, triage.Config{})
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return st.Blocking(ctx, flow)
}
