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

func cmdFBDI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: sinew fbdi build|check")
		return exitError(2)
	}
	fs := flag.NewFlagSet("sinew fbdi "+args[0], flag.ContinueOnError)
	source := fs.String("resolute", "", "build: the Resolute journal file")
	xwFile := fs.String("crosswalk", "", "build: the COA crosswalk CSV")
	flowsFile := fs.String("flows", "flows.yaml", "build: the integration inventory (layout, ledger, source, category)")
	out := fs.String("out", "GlInterface.zip", "build: the FBDI zip to write")
	chartFile := fs.String("chart", "", "build: Fusion's valid account combinations (CSV); not checked when empty")
	stats := fs.Bool("stats", false, "print elapsed time and peak memory to stderr")
	pos, err := parse(fs, args[1:], stderr)
	if err != nil {
		return err
	}
	start := time.Now()
	defer func() {
		if *stats {
			fmt.Fprintf(stderr, "elapsed %s, peak RSS %s\n", time.Since(start).Round(time.Millisecond), peakRSS())
		}
	}()
	switch args[0] {
	case "build":
		return fbdiBuild(ctx, *source, *xwFile, *chartFile, *flowsFile, *out, stdout)
	case "check":
		if len(pos) != 1 {
			return errors.New("fbdi check: want one file (GlInterface.csv or a zip holding it)")
		}
		f, err := os.Open(pos[0])
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
	default:
		fmt.Fprintf(stderr, "sinew fbdi: unknown verb %q\n", args[0])
		return exitError(2)
	}
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

func cmdResolute(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "generate" {
		fmt.Fprintln(stderr, "usage: sinew resolute generate [--journals N] [--lines-per-journal N] [--date YYYY-MM-DD] > FILE")
		return exitError(2)
	}
	fs := flag.NewFlagSet("sinew resolute generate", flag.ContinueOnError)
	journals := fs.Int("journals", 10, "journals (each balanced)")
	per := fs.Int("lines-per-journal", 100, "lines per journal")
	date := fs.String("date", time.Now().Format("2006-01-02"), "posting date")
	kind := fs.String("kind", "HB", "HB or PB")
	seed := fs.Uint64("seed", 1, "random seed")
	if _, err := parse(fs, args[1:], stderr); err != nil {
		return err
	}
	d, err := time.Parse("2006-01-02", *date)
	if err != nil {
		return fmt.Errorf("resolute generate: --date: %w", err)
	}
	_, _, err = resolute.Generate(stdout, resolute.GenerateOptions{
		BatchID: fmt.Sprintf("%s-%s-%03d", *kind, d.Format("20060102"), *seed), Kind: *kind, PostingDate: d,
		Journals: *journals, LinesPerJournal: *per, ServiceAreas: []string{"10", "20"},
		CostCenters: []string{"6010", "6020"}, RevenueAccounts: []string{"40100", "40200"}, ARAccount: "11010", Seed: *seed,
	})
	return err
}
