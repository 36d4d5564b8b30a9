package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/streams"
)

func crosswalkVerbs() []verb {
	// kindFlags are the flags that choose a crosswalk.
	type kindFlags struct{ name, kind, version *string }
	kinds := func(fs *flag.FlagSet, version string) kindFlags {
		k := kindFlags{
			name: fs.String("name", crosswalk.COA, "which crosswalk (same as --kind)"),
			kind: fs.String("kind", "", "which crosswalk: "+strings.Join(crosswalk.Kinds(), ", ")+" (default coa)"),
		}
		if version != "" {
			k.version = fs.String("version", "", version)
		}
		return k
	}
	// xwRun opens the store and runs verb on the chosen crosswalk.
	xwRun := func(verb string, conn *connFlags, k kindFlags, asJSON *bool) runFunc {
		return func(ctx context.Context, e *env, pos []string) error {
			st, done, err := openCrosswalks(ctx, conn)
			if err != nil {
				return err
			}
			defer done()
			name := *k.name
			if *k.kind != "" {
				name = *k.kind
			}
			version := ""
			if k.version != nil {
				version = *k.version
			}
			j := asJSON != nil && *asJSON
			if crosswalk.IsCodes(name) {
				return codesVerb(ctx, st, verb, name, version, pos, j, e.stdout)
			}
			return coaVerb(ctx, st, verb, name, version, pos, j, e.stdout)
		}
	}
	return []verb{
		{name: "crosswalk load", args: "FILE", summary: "check and store a crosswalk version, make it current", setup: func(fs *flag.FlagSet) runFunc {
			conn := addConnFlags(fs)
			return xwRun("load", conn, kinds(fs, "name the version (default: content hash)"), nil)
		}},
		{name: "crosswalk show", summary: "a crosswalk version's rules or rows (default: the current one)", setup: func(fs *flag.FlagSet) runFunc {
			conn := addConnFlags(fs)
			k := kinds(fs, "which version (default: current)")
			return xwRun("show", conn, k, fs.Bool("json", false, "one JSON object per rule or row"))
		}},
		{name: "crosswalk versions", summary: "a crosswalk's stored versions, the current one marked", setup: func(fs *flag.FlagSet) runFunc {
			conn := addConnFlags(fs)
			k := kinds(fs, "")
			return xwRun("versions", conn, k, fs.Bool("json", false, "one JSON object per version"))
		}},
		{name: "crosswalk diff", args: "V1 [V2]", summary: "what changes from V1 to V2 (default: the current version)", setup: func(fs *flag.FlagSet) runFunc {
			conn := addConnFlags(fs)
			k := kinds(fs, "")
			return xwRun("diff", conn, k, fs.Bool("json", false, "one JSON object per change"))
		}},
		{name: "crosswalk chart pull", summary: "store Fusion's valid account combinations (accountCombinationsLOV)", setup: func(fs *flag.FlagSet) runFunc {
			conn := addConnFlags(fs)
			fusionURL := fs.String("fusion-url", os.Getenv("SINEW_FUSION_URL"), "Fusion's base URL ($SINEW_FUSION_URL)")
			user := fs.String("fusion-user", os.Getenv("SINEW_FUSION_USER"), "Basic user ($SINEW_FUSION_USER; the password from $SINEW_FUSION_PASSWORD)")
			return func(ctx context.Context, e *env, pos []string) error {
				if len(pos) > 0 {
					return fmt.Errorf("crosswalk chart pull: unexpected argument %q", pos[0])
				}
				if *fusionURL == "" {
					return errors.New("crosswalk chart pull: --fusion-url (or $SINEW_FUSION_URL) is required")
				}
				password := os.Getenv("SINEW_FUSION_PASSWORD") // not a flag: it would show in ps
				fc, err := fusion.New(fusion.Config{BaseURL: *fusionURL, Username: *user, Password: password})
				if err != nil {
					return err
				}
				combos, err := fc.AccountCombinations(ctx)
				if err != nil {
					return err
				}
				data, err := crosswalk.ChartCSV(combos)
				if err != nil {
					return err
				}
				return saveChart(ctx, conn, data, e.stdout)
			}
		}},
		{name: "crosswalk chart load", args: "FILE", summary: "store valid account combinations from an exported CSV", setup: func(fs *flag.FlagSet) runFunc {
			conn := addConnFlags(fs)
			return func(ctx context.Context, e *env, pos []string) error {
				if len(pos) != 1 {
					return errors.New("crosswalk chart load: want one CSV file")
				}
				data, err := os.ReadFile(pos[0])
				if err != nil {
					return err
				}
				return saveChart(ctx, conn, data, e.stdout)
			}
		}},
		{name: "crosswalk chart show", summary: "the chart transform checks GL lines against: KV revision, date, combinations", setup: func(fs *flag.FlagSet) runFunc {
			conn := addConnFlags(fs)
			asJSON := fs.Bool("json", false, "one JSON object")
			return func(ctx context.Context, e *env, _ []string) error {
				st, done, err := openCrosswalks(ctx, conn)
				if err != nil {
					return err
				}
				defer done()
				return chartShow(ctx, st, *asJSON, e.stdout)
			}
		}},
	}
}

// coaVerb runs a verb on the chart-of-accounts crosswalk.
func coaVerb(ctx context.Context, st *crosswalk.Store, verb, name, version string, pos []string, asJSON bool, stdout io.Writer) error {
	switch verb {
	case "load":
		if len(pos) != 1 {
			return errors.New("crosswalk load: want one CSV file")
		}
		data, err := os.ReadFile(pos[0])
		if err != nil {
			return err
		}
		t, err := st.Load(ctx, name, data, version)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s version %s is current: %d rules, segments %s\n", name, t.Version, len(t.Rules()), strings.Join(t.SegmentNames, ","))
		return nil
	case "show":
		var t *crosswalk.Table
		var err error
		if version != "" {
			t, err = st.Version(ctx, name, version)
		} else {
			t, err = st.Current(ctx, name)
		}
		if err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(stdout)
			for _, r := range t.Rules() {
				row := map[string]any{"version": t.Version, "line": r.Line, "service_area": r.ServiceArea, "cost_center": r.CostCenter,
					"gl_account": r.GLAccount, "fin_class": r.FinClass, "payor": r.Payor, "from": r.From.Format(time.DateOnly)}
				if !r.To.IsZero() {
					row["to"] = r.To.Format(time.DateOnly)
				}
				segs := map[string]string{}
				for i, n := range t.SegmentNames {
					if i < len(r.Segments) {
						segs[n] = r.Segments[i]
					}
				}
				row["segments"] = segs
				if err := enc.Encode(row); err != nil {
					return err
				}
			}
			return nil
		}
		fmt.Fprintf(stdout, "%s version %s\n", name, t.Version)
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
		vs, err := st.Versions(ctx, name)
		if err != nil {
			return err
		}
		cur := ""
		if t, err := st.Current(ctx, name); err == nil {
			cur = t.Version
		}
		return printVersions(stdout, name, vs, cur, asJSON)
	case "diff":
		if len(pos) < 1 || len(pos) > 2 {
			return errors.New("crosswalk diff: want V1 [V2] (V2 defaults to the current version)")
		}
		a, err := st.Version(ctx, name, pos[0])
		if err != nil {
			return err
		}
		var b *crosswalk.Table
		if len(pos) == 2 {
			b, err = st.Version(ctx, name, pos[1])
		} else {
			b, err = st.Current(ctx, name)
		}
		if err != nil {
			return err
		}
		return printChanges(stdout, crosswalk.Diff(a, b), a.Version, b.Version, asJSON)
	}
	return fmt.Errorf("crosswalk: no verb %q", verb)
}

// printVersions lists versions, oldest first, marking the current one.
func printVersions(stdout io.Writer, kind string, vs []string, current string, asJSON bool) error {
	enc := json.NewEncoder(stdout)
	for _, v := range vs {
		if asJSON {
			if err := enc.Encode(struct {
				Kind    string `json:"kind"`
				Version string `json:"version"`
				Current bool   `json:"current"`
			}{kind, v, v == current}); err != nil {
				return err
			}
			continue
		}
		mark := ""
		if v == current {
			mark = " (current)"
		}
		fmt.Fprintln(stdout, v+mark)
	}
	return nil
}

// codesVerb runs a verb on a code-table kind (item, department, uom).
func codesVerb(ctx context.Context, st *crosswalk.Store, verb, kind, version string, pos []string, asJSON bool, stdout io.Writer) error {
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
		if asJSON {
			enc := json.NewEncoder(stdout)
			for _, r := range c.Rows() {
				row := map[string]any{"version": c.Version, "line": r.Line}
				for i, col := range c.Schema.Columns {
					if i < len(r.Values) {
						row[col] = r.Values[i]
					}
				}
				if err := enc.Encode(row); err != nil {
					return err
				}
			}
			return nil
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
		return printVersions(stdout, kind, vs, cur, asJSON)
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
		return printChanges(stdout, crosswalk.DiffCodes(a, b), a.Version, b.Version, asJSON)
	}
	return fmt.Errorf("crosswalk: no verb %q", verb)
}

// saveChart stores a chart CSV as the one mapped journal lines are
// checked against.
func saveChart(ctx context.Context, conn *connFlags, data []byte, stdout io.Writer) error {
	st, done, err := openCrosswalks(ctx, conn)
	if err != nil {
		return err
	}
	defer done()
	ch, err := st.SaveChart(ctx, data)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "chart stored: %d valid combinations of %d segments; batches are checked against it from now on\n", ch.Len(), ch.Segments)
	return nil
}

// chartShow prints the chart transform uses: the current one in KV.
func chartShow(ctx context.Context, st *crosswalk.Store, asJSON bool, stdout io.Writer) error {
	ci, err := st.ChartInfo(ctx)
	if errors.Is(err, crosswalk.ErrNoVersion) {
		return errors.New("crosswalk chart show: no chart in KV; transform checks GL lines against its configured chart file (transform's chart setting), if any. Store one with sinew crosswalk chart pull or load")
	}
	if err != nil {
		return err
	}
	combos := ci.Chart.Combinations()
	if asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			Bucket       string    `json:"bucket"`
			Key          string    `json:"key"`
			Revision     uint64    `json:"revision"`
			StoredAt     time.Time `json:"stored_at"`
			SHA256       string    `json:"sha256"`
			Segments     int       `json:"segments"`
			Header       []string  `json:"header"`
			Combinations []string  `json:"combinations"`
		}{streams.KVCrosswalk, ci.Key, ci.Revision, ci.Stored.UTC(), ci.SHA256, ci.Chart.Segments, ci.Header, combos})
	}
	fmt.Fprintf(stdout, "chart %s/%s revision %d, stored %s, sha256 %s\n", streams.KVCrosswalk, ci.Key, ci.Revision, ci.Stored.UTC().Format(time.RFC3339), ci.SHA256)
	fmt.Fprintf(stdout, "%d valid combinations of %d segments (%s); transform checks every mapped GL line against it\n",
		ci.Chart.Len(), ci.Chart.Segments, strings.Join(ci.Header, "."))
	for _, c := range combos {
		fmt.Fprintln(stdout, c)
	}
	return nil
}

// printChanges prints a crosswalk diff, a line per key, then a count (or
// a JSON object per change).
func printChanges(w io.Writer, changes []crosswalk.Change, from, to string, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, ch := range changes {
			if err := enc.Encode(struct {
				Op   string `json:"op"`
				Key  string `json:"key"`
				From string `json:"from,omitempty"`
				To   string `json:"to,omitempty"`
			}{ch.Op, ch.Key, ch.From, ch.To}); err != nil {
				return err
			}
		}
		return nil
	}
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
	return nil
}

// openCrosswalks connects to NATS and returns the crosswalk store
// and the function that disconnects.
func openCrosswalks(ctx context.Context, conn *connFlags) (*crosswalk.Store, func(), error) {
	c, err := conn.dial()
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
