package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/sinewhq/sinew/pkg/batchstate"
)

// cmdBatches lists batches and where each stands (batch_state), or shows
// one with its Fusion request ids, groups and history.
func cmdBatches(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sinew batches", flag.ContinueOnError)
	url := natsFlags(fs)
	flow := fs.String("flow", "", "only this flow's batches")
	asJSON := fs.Bool("json", false, "JSON lines")
	pos, err := parse(fs, args, stderr)
	if err != nil {
		return err
	}
	c, err := dial(url)
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := batchstate.Open(ctx, c.js)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		if len(pos) != 2 || pos[0] != "show" {
			return errors.New("usage: sinew batches [--flow F] [--json] | sinew batches show BATCH_ID --flow F")
		}
		if *flow == "" {
			*flow = "resolute-gl"
		}
		b, err := st.Get(ctx, *flow, pos[1])
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(b)
	}
	all, err := st.List(ctx, *flow)
	if err != nil {
		return err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Updated.Before(all[j].Updated) })
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, b := range all {
			if err := enc.Encode(b); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLOW\tBATCH\tSTEP\tGROUPS\tLOAD REQUEST\tVERDICT\tUPDATED\tDETAIL")
	for _, b := range all {
		done := 0
		for _, g := range b.Groups {
			if g.Step == batchstate.GroupImported {
				done++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d imported\t%s\t%s\t%s\t%s\n", b.Flow, b.BatchID, b.Step, done, len(b.Groups),
			b.Upload.RequestID, b.Verdict, b.Updated.Format("2006-01-02T15:04:05Z"), b.Detail)
	}
	return tw.Flush()
}
