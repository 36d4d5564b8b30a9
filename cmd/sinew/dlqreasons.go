package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/reason"
)

// dlqReasonsVerb counts dead letters per reason code, with the
// catalogue's text and what the operator should do.
func dlqReasonsVerb() verb {
	return dlqReadVerb("dlq reasons", nil, "dead letters counted per reason code, with what to do (pkg/reason catalogue)",
		func(ctx context.Context, st *dlq.Store, filter string, s dlq.Selector, asJSON bool, w io.Writer) error {
			counts, err := dlqReasonCounts(ctx, st, filter, s)
			if err != nil {
				return err
			}
			return printReasonCounts(counts, asJSON, w)
		})
}

// reasonCount is one code's dead letters.
type reasonCount struct {
	Code     string    `json:"code"` // "" for letters from before the codes
	Count    int       `json:"count"`
	Replayed int       `json:"replayed"`
	Oldest   time.Time `json:"oldest"`
	Newest   time.Time `json:"newest"`
	Text     string    `json:"text"`
	Action   string    `json:"action"`
}

// dlqReasonCounts counts the selected letters per code, most first.
func dlqReasonCounts(ctx context.Context, st *dlq.Store, filter string, sel dlq.Selector) ([]*reasonCount, error) {
	by := map[string]*reasonCount{}
	err := st.List(ctx, filter, func(e *dlq.Entry) error {
		if !sel.Match(e) {
			return nil
		}
		code := e.Letter.GetReasonCode()
		c := by[code]
		at := e.Letter.GetDeadAt().AsTime()
		if c == nil {
			c = &reasonCount{Code: code, Oldest: at, Newest: at}
			if en, ok := reason.Lookup(reason.Code(code)); ok {
				c.Text, c.Action = en.Text, en.Action
			} else if code == "" {
				c.Text, c.Action = "no code: recorded before reason codes", "read the reason text (sinew dlq list --code -)"
			} else {
				c.Text, c.Action = "not in this version's catalogue", "upgrade sinew, or read the reason text"
			}
			by[code] = c
		}
		c.Count++
		if e.Replay != nil {
			c.Replayed++
		}
		c.Oldest, c.Newest = minTime(c.Oldest, at), maxTime(c.Newest, at)
		return nil
	})
	out := make([]*reasonCount, 0, len(by))
	for _, c := range by {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Code < out[j].Code
	})
	return out, err
}

func printReasonCounts(counts []*reasonCount, asJSON bool, w io.Writer) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, c := range counts {
			if err := enc.Encode(c); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CODE\tCOUNT\tREPLAYED\tNEWEST\tWHAT HAPPENED\tWHAT TO DO")
	for _, c := range counts {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", orDash(c.Code), c.Count, c.Replayed, c.Newest.Format(time.RFC3339), c.Text, c.Action)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
