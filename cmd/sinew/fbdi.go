package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/fbdi"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/resolute"
	resolutegl "github.com/sinewhq/sinew/services/transform/flows/resolute-gl"
)

func fbdiVerbs() []verb {
	stats := func(fs *flag.FlagSet) func(stderr io.Writer) func() {
		on := fs.Bool("stats", false, "print elapsed time and peak memory to stderr")
		return func(stderr io.Writer) func() {
			start := time.Now()
			return func() {
				if *on {
					fmt.Fprintf(stderr, "elapsed %s, peak RSS %s\n", time.Since(start).Round(time.Millisecond), peakRSS())
				}
			}
		}
	}
	return []verb{
		{name: "fbdi build", summary: "validate, map and write a Journal Import file (rejects bad batches whole)", setup: func(fs *flag.FlagSet) runFunc {
			source := fs.String("resolute", "", "the Resolute journal file (required)")
			xwFile := fs.String("crosswalk", "", "the COA crosswalk CSV (required)")
			flowsFile := fs.String("flows", "", "the integration inventory (default $SINEW_FLOWS, else <data dir>/flows.yaml, else ./flows.yaml)")
			dataDir := fs.String("data-dir", dataDirDefault(), "sinew up's data dir, searched for flows.yaml ($SINEW_DATA_DIR)")
			out := fs.String("out", "GlInterface.zip", "the FBDI zip to write")
			chartFile := fs.String("chart", "", "Fusion's valid account combinations (CSV); not checked when empty")
			report := stats(fs)
			return func(ctx context.Context, e *env, pos []string) error {
				if len(pos) > 0 {
					return fmt.Errorf("fbdi build: unexpected argument %q (the files are flags: --resolute, --crosswalk)", pos[0])
				}
				defer report(e.stderr)()
				path, err := findFlows(*flowsFile, os.Getenv("SINEW_FLOWS"), *dataDir)
				if err != nil {
					return err
				}
				return fbdiBuild(ctx, *source, *xwFile, *chartFile, path, *out, e.stdout)
			}
		}},
		{name: "fbdi check", args: "FILE", summary: "columns, dates, amounts and balance of a GlInterface.csv or zip; exits 1 on a problem", setup: func(fs *flag.FlagSet) runFunc {
			report := stats(fs)
			return func(ctx context.Context, e *env, pos []string) error {
				if len(pos) != 1 {
					return errors.New("fbdi check: want one file (GlInterface.csv or a zip holding it)")
				}
				defer report(e.stderr)()
				return fbdiCheck(ctx, pos[0], e.stdout)
			}
		}},
		{name: "resolute generate", summary: "a synthetic, balanced Resolute journal file on stdout", setup: func(fs *flag.FlagSet) runFunc {
			journals := fs.Int("journals", 10, "journals (each balanced)")
			per := fs.Int("lines-per-journal", 100, "lines per journal")
			date := fs.String("date", time.Now().Format("2006-01-02"), "posting date")
			kind := fs.String("kind", "HB", "HB or PB")
			seed := fs.Uint64("seed", 1, "random seed")
			return func(_ context.Context, e *env, _ []string) error {
				d, err := time.Parse("2006-01-02", *date)
				if err != nil {
					return fmt.Errorf("resolute generate: --date: %w", err)
				}
				_, _, err = resolute.Generate(e.stdout, resolute.GenerateOptions{
					BatchID: fmt.Sprintf("%s-%s-%03d", *kind, d.Format("20060102"), *seed), Kind: *kind, PostingDate: d,
					Journals: *journals, LinesPerJournal: *per, ServiceAreas: []string{"10", "20"},
					CostCenters: []string{"6010", "6020"}, RevenueAccounts: []string{"40100", "40200"}, ARAccount: "11010", Seed: *seed,
				})
				return err
			}
		}},
	}
}

// findFlows returns the flows.yaml to read: the flag's, else the
// environment's, else the data dir's, else the working directory's.
func findFlows(flagPath, envPath, dataDir string) (string, error) {
	for _, given := range []struct{ what, path string }{{"--flows", flagPath}, {"$SINEW_FLOWS", envPath}} {
		if given.path == "" {
			continue
		}
		if _, err := os.Stat(given.path); err != nil {
			return "", fmt.Errorf("fbdi build: flows.yaml from %s: %w", given.what, err)
		}
		return given.path, nil
	}
	var looked []string
	for _, p := range []string{filepath.Join(dataDir, "flows.yaml"), "flows.yaml"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		abs, _ := filepath.Abs(p)
		looked = append(looked, abs)
	}
	return "", fmt.Errorf("fbdi build: no flows.yaml: --flows and $SINEW_FLOWS are not set, and none at %s; give --flows FILE", strings.Join(looked, " or "))
}

func fbdiCheck(ctx context.Context, file string, stdout io.Writer) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	rep, err := fbdi.Check(ctx, f, st.Size(), fbdi.Options{})
	if err != nil {
		return err
	}
	for _, p := range rep.Findings {
		fmt.Fprintln(stdout, p)
	}
	fmt.Fprintf(stdout, "%d lines, debits %s, credits %s, %d groups: ", rep.Totals.Lines, rep.Totals.DR, rep.Totals.CR, len(rep.Totals.Groups))
	if !rep.OK() {
		fmt.Fprintf(stdout, "%d problems\n", len(rep.Findings)+rep.Omitted)
		return exitError(1)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

func fbdiBuild(ctx context.Context, source, xwFile, chartFile, flowsFile, out string, stdout io.Writer) error {
	if source == "" || xwFile == "" {
		return errors.New("fbdi build: --resolute and --crosswalk are required")
	}
	inv, err := flows.Load(flowsFile)
	if err != nil {
		return err
	}
	flow, ok := inv.Get(resolutegl.Flow)
	if !ok || flow.GL == nil {
		return fmt.Errorf("fbdi build: %s has no %s flow with gl settings", flowsFile, resolutegl.Flow)
	}
	xf, err := os.Open(xwFile)
	if err != nil {
		return err
	}
	xw, err := crosswalk.Parse(xf, "")
	xf.Close()
	if err != nil {
		return err
	}
	src, err := os.Open(source)
	if err != nil {
		return err
	}
	defer src.Close()
	layout := resolute.DefaultLayout()
	if flow.Resolute != nil {
		layout = *flow.Resolute
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".fbdi-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	opts := resolutegl.Options{Layout: layout, GL: *flow.GL, Crosswalk: xw}
	if chartFile != "" {
		if opts.Chart, err = crosswalk.ReadChart(chartFile); err != nil {
			return err
		}
	}
	res, err := resolutegl.Build(ctx, src, tmp, opts)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if !res.Accepted {
		all := res.AllFindings()
		fmt.Fprintf(stdout, "batch %s rejected; nothing written (%d findings):\n", res.BatchID, len(all)+res.Report.FindingsDropped)
		for i, f := range all {
			if i == 50 {
				fmt.Fprintf(stdout, "  ... and %d more\n", len(all)-50+res.Report.FindingsDropped)
				break
			}
			fmt.Fprintln(stdout, "  "+f.String())
		}
		return exitError(1)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "batch %s: %d lines, debits %s = credits %s, %d journals (groups), crosswalk %s -> %s\n",
		res.BatchID, res.Lines, res.Debit, res.Credit, len(res.Groups), res.CrosswalkVersion, out)
	return nil
}

// peakRSS is the process's high-water resident set (VmHWM), Linux only.
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
