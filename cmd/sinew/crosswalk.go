package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/streams"
)

func cmdCrosswalk(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: sinew crosswalk [--kind coa|item|department|uom] load FILE | show [--version V] | versions | diff V1 [V2]\n       sinew crosswalk chart pull --fusion-url URL | chart load FILE | chart show")
		return exitError(2)
	}
	if args[0] == "chart" {
		return cmdChart(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("sinew crosswalk "+args[0], flag.ContinueOnError)
	url := natsFlags(fs)
	name := fs.String("name", crosswalk.COA, "which crosswalk (same as --kind)")
	kind := fs.String("kind", "", "which crosswalk: "+strings.Join(crosswalk.Kinds(), ", ")+" (default coa)")
	version := fs.String("version", "", "load: name the version (default: content hash); show: which version (default: current)")
	pos, err := parse(fs, args[1:], stderr)
	if err != nil {
		return err
	}
	st, done, err := openCrosswalks(ctx, url)
	if err != nil {
		return err
	}
	defer done()
	if *kind != "" {
		*name = *kind
	}
	if crosswalk.IsCodes(*name) {
		return codesVerb(ctx, st, args[0], *name, *version, pos, stdout, stderr)
	}
	switch args[0] {
	case "load":
		if len(pos) != 1 {
			return errors.New("crosswalk load: want one CSV file")
		}
		data, err := os.ReadFile(pos[0])
		if err != nil {
			return err
		}
		t, err := st.Load(ctx, *name, data, *version)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s version %s is current: %d rules, segments %s\n", *name, t.Version, len(t.Rules()), strings.Join(t.SegmentNames, ","))
		return nil
	case "show":
		var t *crosswalk.Table
		if *version != "" {
			t, err = st.Version(ctx, *name, *version)
		} else {
			t, err = st.Current(ctx, *name)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s version %s\n", *name, t.Version)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "LINE\tSERVICE AREA\tCOST CENTER\tACCOUNT\tFIN CLASS\tPAYOR\tFROM\tTO\t%s\n", strings.ToUpper(strings.Join(t.SegmentNames, "\t")))
		for _, r := range t.Rules() {
			to := ""
			if !r.To.IsZero() {
				to = r.To.Format("2006-01-02")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Line, r.ServiceArea, r.CostCenter, r.GLAccount, r.FinClass, r.Payor,
				r.From.Format("2006-01-02"), to, strings.Join(r.Segments, "\t"))
		}
		return tw.Flush()
	case "versions":
		vs, err := st.Versions(ctx, *name)
		if err != nil {
			return err
		}
		cur, _ := st.Current(ctx, *name)
		for _, v := range vs {
			mark := ""
			if cur != nil && cur.Version == v {
				mark = " (current)"
			}
			fmt.Fprintln(stdout, v+mark)
		}
		return nil
	case "diff":
		if len(pos) < 1 || len(pos) > 2 {
			return errors.New("crosswalk diff: want V1 [V2] (V2 defaults to the current version)")
		}
		a, err := st.Version(ctx, *name, pos[0])
		if err != nil {
			return err
		}
		var b *crosswalk.Table
		if len(pos) == 2 {
			b, err = st.Version(ctx, *name, pos[1])
		} else {
			b, err = st.Current(ctx, *name)
		}
		if err != nil {
			return err
		}
		printChanges(stdout, crosswalk.Diff(a, b), a.Version, b.Version)
		return nil
	default:
		fmt.Fprintf(stderr, "sinew crosswalk: unknown verb %q\n", args[0])
		return exitError(2)
	}
}

// codesVerb runs a verb on a code-table kind (item, department, uom).
func codesVerb(ctx context.Context, st *crosswalk.Store, verb, kind, version string, pos []string, stdout, stderr io.Writer) error {
	switch verb {
	case "load":
		if len(pos) != 1 {
			return errors.New("crosswalk load: want one CSV file")
		}
		data, err := os.ReadFile(pos[0])
		if err != nil {
			return err
		}
		c, err := st.LoadCodes(ctx, kind, data, version)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s version %s is current: %d rows\n", kind, c.Version, c.Len())
		return nil
	case "show":
		var c *crosswalk.Codes
		var err error
		if version != "" {
			c, err = st.VersionCodes(ctx, kind, version)
		} else {
			c, err = st.CurrentCodes(ctx, kind)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s version %s\n", kind, c.Version)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "LINE\t%s\n", strings.ToUpper(strings.Join(c.Schema.Columns, "\t")))
		for _, r := range c.Rows() {
			fmt.Fprintf(tw, "%d\t%s\n", r.Line, strings.Join(r.Values, "\t"))
		}
		return tw.Flush()
	case "versions":
		vs, err := st.Versions(ctx, kind)
		if err != nil {
			return err
		}
		cur, _ := st.CurrentVersion(ctx, kind)
		for _, v := range vs {
			mark := ""
			if cur == v {
				mark = " (current)"
			}
			fmt.Fprintln(stdout, v+mark)
		}
		return nil
	case "diff":
		if len(pos) < 1 || len(pos) > 2 {
			return errors.New("crosswalk diff: want V1 [V2] (V2 defaults to the current version)")
		}
		a, err := st.VersionCodes(ctx, kind, pos[0])
		if err != nil {
			return err
		}
		var b *crosswalk.Codes
		if len(pos) == 2 {
			b, err = st.VersionCodes(ctx, kind, pos[1])
		} else {
			b, err = st.CurrentCodes(ctx, kind)
		}
		if err != nil {
			return err
		}
		printChanges(stdout, crosswalk.DiffCodes(a, b), a.Version, b.Version)
		return nil
	default:
		fmt.Fprintf(stderr, "sinew crosswalk: unknown verb %q\n", verb)
		return exitError(2)
	}
}

// cmdChart keeps the valid account combinations mapped journal lines are
// checked against: pulled from Fusion (accountCombinationsLOV), or loaded
// from an exported CSV, into the crosswalk bucket.
func cmdChart(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sinew crosswalk chart", flag.ContinueOnError)
	url := natsFlags(fs)
	fusionURL := fs.String("fusion-url", os.Getenv("SINEW_FUSION_URL"), "pull: Fusion's base URL")
	user := fs.String("fusion-user", os.Getenv("SINEW_FUSION_USER"), "pull: Basic user ($SINEW_FUSION_USER)")
	password := os.Getenv("SINEW_FUSION_PASSWORD") // not a flag: it would show in ps
	pos, err := parse(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return errors.New("usage: sinew crosswalk chart pull --fusion-url URL | load FILE | show")
	}
	st, done, err := openCrosswalks(ctx, url)
	if err != nil {
		return err
	}
	defer done()
	var data []byte
	switch pos[0] {
	case "show":
		ch, err := st.Chart(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d valid combinations of %d segments\n", ch.Len(), ch.Segments)
		return nil
	case "load":
		if len(pos) != 2 {
			return errors.New("crosswalk chart load: want one CSV file")
		}
		if data, err = os.ReadFile(pos[1]); err != nil {
			return err
		}
	case "pull":
		if *fusionURL == "" {
			return errors.New("crosswalk chart pull: --fusion-url (or $SINEW_FUSION_URL) is required")
		}
		fc, err := fusion.New(fusion.Config{BaseURL: *fusionURL, Username: *user, Password: password})
		if err != nil {
			return err
		}
		combos, err := fc.AccountCombinations(ctx)
		if err != nil {
			return err
		}
		if data, err = crosswalk.ChartCSV(combos); err != nil {
			return err
		}
	default:
		return fmt.Errorf("crosswalk chart: unknown verb %q", pos[0])
	}
	ch, err := st.SaveChart(ctx, data)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "chart stored: %d valid combinations of %d segments; batches are checked against it from now on\n", ch.Len(), ch.Segments)
	return nil
}

// printChanges prints a crosswalk diff, a line per key, then a count.
func printChanges(w io.Writer, changes []crosswalk.Change, from, to string) {
	for _, ch := range changes {
		switch ch.Op {
		case "added":
			fmt.Fprintf(w, "+ %s -> %s\n", ch.Key, ch.To)
		case "removed":
			fmt.Fprintf(w, "- %s -> %s\n", ch.Key, ch.From)
		default:
			fmt.Fprintf(w, "~ %s: %s -> %s\n", ch.Key, ch.From, ch.To)
		}
	}
	fmt.Fprintf(w, "%d changes from %s to %s\n", len(changes), from, to)
}

// openCrosswalks connects to NATS at url and returns the crosswalk store
// and the function that disconnects.
func openCrosswalks(ctx context.Context, url *connFlags) (*crosswalk.Store, func(), error) {
	c, err := dial(url)
	if err != nil {
		return nil, nil, err
	}
	kv, err := c.js.KeyValue(ctx, streams.KVCrosswalk)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return crosswalk.NewStore(kv), c.Close, nil
}
