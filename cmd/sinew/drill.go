package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/decimal"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/services/epicsim"
	"github.com/sinewhq/sinew/services/fusionsim"
)

// drillVerbs is `sinew drill`, the non-prod cutover rehearsal
// (docs/operations.md, The cutover drill).
func drillVerbs() []verb {
	return []verb{{name: "drill", summary: "rehearse a cutover: stage every flow, send a synthetic day, activate, count what arrived in Fusion", setup: func(fs *flag.FlagSet) runFunc {
		var o drillOptions
		fs.Uint64Var(&o.seed, "seed", 1, "the synthetic day's seed: the same seed sends the same messages")
		fs.StringVar(&o.day, "day", "", "the business day (YYYY-MM-DD; default today, UTC)")
		fs.StringVar(&o.volume, "volume", "small", "small, day or peak")
		fs.StringVar(&o.faults, "faults", "", "faults, e.g. fusion.5xx=0.1,fusion.429=burst,kill=sinew:30s")
		fs.BoolVar(&o.json, "json", false, "the result as one JSON object")
		fs.BoolVar(&o.listPatients, "list-patients", false, "print the synthetic patients' identifiers, one a line, and exit")
		fs.StringVar(&o.flowsFile, "flows", "flows.yaml", "the integration inventory")
		fs.StringVar(&o.natsURL, "nats", "", "use a running Sinew at this NATS URL (not yet: the drill starts its own)")
		fs.DurationVar(&o.timeout, "timeout", 0, "how long to wait for quiescence (default scales with the volume)")
		fs.BoolVar(&o.keep, "keep", false, "keep the temporary data dir (its up.log) after the drill")
		return func(ctx context.Context, e *env, pos []string) error {
			if len(pos) != 0 {
				return usageError{fmt.Errorf("drill: unexpected argument %q", pos[0])}
			}
			return drill(ctx, o, e.stdout, e.stderr)
		}
	}}}
}

type drillOptions struct {
	seed                uint64
	day, volume, faults string
	flowsFile, natsURL  string
	json, listPatients  bool
	keep                bool
	timeout             time.Duration
}

// volumes are the messages a synthetic day sends.
var volumes = map[string]int{"small": 200, "day": 5000, "peak": 20000}

// drillFaults is --faults parsed.
type drillFaults struct {
	fusion  []map[string]any // fusionsim's http faults (docs/fusionsim.md, Faults)
	killAt  time.Duration    // kill -9 sinew up this long after activation, then restart it
	killing bool
	// lose and duplicate seed a loss (dispenses counted as sent, never
	// sent) and duplicates (Fusion rows posted again outside Sinew): the
	// drill must fail.
	lose, duplicate int
	// formularyDrift has epicsim's FHIR server seed a Medication whose
	// strength differs from Willow's formulary (epic.formulary_drift=1):
	// the formulary check must report a variance and the drill fail.
	formularyDrift bool
	// clinical are epicsim's clinical faults for the FHIR reconciliations
	// read by search (epic.missing_encounters, epic.uncarted_implants,
	// epic.over_consume): their checks must report a variance.
	clinical epicsim.ClinicalFaults
}

func parseFaults(spec string) (drillFaults, error) {
	var f drillFaults
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return f, fmt.Errorf("fault %q: want NAME=VALUE", part)
		}
		switch k {
		case "fusion.5xx", "fusion.429":
			status := 503
			if k == "fusion.429" {
				status = 429
			}
			if v == "burst" {
				f.fusion = append(f.fusion, map[string]any{"status": status, "count": 5})
				continue
			}
			r, err := strconv.ParseFloat(v, 64)
			if err != nil || r <= 0 || r >= 1 {
				return f, fmt.Errorf("fault %s: want a rate between 0 and 1, or burst", k)
			}
			f.fusion = append(f.fusion, map[string]any{"status": status, "rate": r})
		case "kill":
			svc, d, ok := strings.Cut(v, ":")
			dur, err := time.ParseDuration(d)
			if !ok || err != nil || dur <= 0 {
				return f, fmt.Errorf("fault kill: want SERVICE:DURATION, e.g. kill=sinew:30s")
			}
			if svc != "sinew" {
				// sinew up runs every service in one process (goroutines on
				// one embedded nats-server): one of them cannot be killed alone.
				return f, fmt.Errorf("fault kill=%s: sinew up runs every service in one process; only kill=sinew:DURATION (all of them at once) is supported", svc)
			}
			f.killAt, f.killing = dur, true
		case "drill.lose", "drill.duplicate":
			c, err := strconv.Atoi(v)
			if err != nil || c < 1 {
				return f, fmt.Errorf("fault %s: want a count of at least 1", k)
			}
			if k == "drill.lose" {
				f.lose = c
			} else {
				f.duplicate = c
			}
		case "epic.missing_encounters", "epic.uncarted_implants":
			c, err := strconv.Atoi(v)
			if err != nil || c < 1 {
				return f, fmt.Errorf("fault %s: want a count of at least 1", k)
			}
			if k == "epic.missing_encounters" {
				f.clinical.MissingEncounters = c
			} else {
				f.clinical.UncartedImplants = c
			}
		case "epic.over_consume":
			dev, pct, ok := strings.Cut(v, ":")
			if _, err := decimal.ParsePlain(pct); !ok || dev == "" || err != nil {
				return f, fmt.Errorf("fault %s: want DEVICE:PERCENT, e.g. epic.over_consume=BEAKER-CHEM-01:20", k)
			}
			f.clinical.OverConsume = &epicsim.OverConsume{Device: dev, Percent: pct}
		case "epic.formulary_drift":
			// epicsim seeds one drifted drug (the heparin's strength).
			if v != "1" {
				return f, fmt.Errorf("fault %s: epicsim seeds one drifted Medication; want 1", k)
			}
			f.formularyDrift = true
		default:
			return f, fmt.Errorf("fault %q: unknown (fusion.5xx, fusion.429, kill, drill.lose, drill.duplicate, epic.formulary_drift, epic.missing_encounters, epic.uncarted_implants, epic.over_consume)", k)
		}
	}
	return f, nil
}

// drillMessage is one synthetic message and what it should become.
type drillMessage struct {
	raw []byte
	app string // MSH-3
	typ string
	mrn string
	rx  string // a dispense's prescription number (Fusion's TransactionReference)
	qty string
	// lines are the Fusion rows a message should become, where the drill
	// compares a flow by count (OpTime cases, Beaker results).
	lines int
	// clinical is what Epic charts for the message (an OpTime case, a
	// final Beaker result's tests): the FHIR reconciliations' Epic side.
	clinical epicsim.Clinical
}

// synthDay is the seed's day: n messages spread evenly over the first span
// of day; the same seed, day, span and volume give the same messages.
// overuse is the generator's reagent factors (epic.over_consume; nil: as
// declared per test).
func synthDay(seed uint64, day time.Time, span time.Duration, n int, overuse map[string]recon.Qty) []drillMessage {
	g := epicsim.NewGenerator(seed, "STMARYS")
	g.Overuse = overuse
	out := make([]drillMessage, 0, n)
	step := span / time.Duration(n+1)
	for i := range n {
		raw, typ := g.Next(day.Add(time.Duration(i+1) * step))
		m := drillMessage{raw: raw, typ: typ, clinical: g.Clinical()}
		if p, err := hl7.Parse(raw); err == nil {
			m.app, m.mrn = p.Get("MSH-3"), p.Get("PID-3.1")
			switch {
			case typ == "RDS^O13":
				m.rx, m.qty = p.Get("ORC-2"), p.Get("RXD-4")
			case typ == "DFT^P03" && m.app == "OPTIME":
				// A case completion: one Fusion row per supply line.
				m.lines = bytes.Count(raw, []byte("\rFT1|"))
			case typ == "ORU^R01" && m.app == "BEAKER":
				// A final result: one row per reagent it consumed.
				m.lines = len(g.Consumed())
			}
		}
		out = append(out, m)
	}
	return out
}

// daySpan is how much of day the synthetic messages cover: all of it, but
// of today only what is already past (at least a minute). Epic cannot have
// charted a case dated later than now, so a drill run early in the UTC
// day whose messages were spread over the whole day had nothing for
// ingest's FHIR search to find, and its FHIR checks went unchecked.
func daySpan(day, now time.Time) time.Duration {
	past := now.Sub(day)
	if past < 0 || past >= 24*time.Hour {
		return 24 * time.Hour
	}
	return max(past-time.Second, time.Minute)
}

// drillFlow is one flow's line of the result.
type drillFlow struct {
	Flow    string `json:"flow"`
	Pattern string `json:"pattern"`
	// Kind is what the drill sent the flow ("" when nothing).
	Kind string `json:"source_kind,omitempty"`
	// Messages are the synthetic messages sent to the flow; Sent the
	// source records compared with Fusion (a checked flow's dispenses),
	// else the messages.
	Messages int    `json:"messages"`
	Sent     int    `json:"source_count"`
	SentQty  string `json:"source_quantity,omitempty"`
	Loaded   int    `json:"loaded"`
	// FusionRows are all of Fusion's rows with the flow's SourceCode.
	FusionRows  int    `json:"fusion_rows"`
	LoadedQty   string `json:"loaded_quantity,omitempty"`
	Rejected    int    `json:"rejected"`
	DeadLetters int    `json:"in_dlq"`
	Lost        int    `json:"lost"`
	Duplicated  int    `json:"duplicated"`
	// SettledSec is how long after activation the flow's kind last saw
	// a record arrive at its target (the drain's length for the flow).
	SettledSec float64 `json:"settled_sec,omitempty"`
	// EpicChanges are a two-way flow's Epic-side changes sent back to
	// Sinew, and those Fusion came to hold (a missing one is lost).
	EpicChanges       int `json:"epic_changes,omitempty"`
	EpicChangesLoaded int `json:"epic_changes_loaded,omitempty"`
	// Variance is a quantity difference the DLQ does not explain.
	Variance bool   `json:"unexplained_variance"`
	Recon    string `json:"reconciliation,omitempty"`
	// Variances and ReconVerdict are a FHIR reconciliation's: its check's
	// variances (tier 3) and its latest batch verdict.
	Variances    int    `json:"variances,omitempty"`
	ReconVerdict string `json:"reconciliation_verdict,omitempty"`
	// ReconTiers is the reconciliation verdict per tier ("1", "2", "3";
	// 0 is a batch's summary), the worst of its batches.
	ReconTiers map[string]string `json:"reconciliation_tiers,omitempty"`
	// Checked is whether the drill compares this flow's source with
	// Fusion message by message; unchecked flows say why in Note.
	Checked bool   `json:"checked"`
	Verdict string `json:"verdict"` // pass, fail, not-checked
	Note    string `json:"note,omitempty"`
}

// drillResult is `sinew drill --json`.
type drillResult struct {
	Seed   uint64 `json:"seed"`
	Day    string `json:"day"`
	Volume string `json:"volume"`
	Faults string `json:"faults,omitempty"`
	Sent   int    `json:"messages_sent"`
	// FaultHits are the failures fusionsim injected (by fault, in order).
	FaultHits []int `json:"fusion_fault_hits,omitempty"`
	// Replayed are the dead letters Fusion's faults left (retries
	// exhausted, never acknowledged), replayed once the faults ended.
	Replayed   int         `json:"replayed_after_faults,omitempty"`
	Restarts   int         `json:"restarts,omitempty"`
	Flows      []drillFlow `json:"flows"`
	ElapsedSec float64     `json:"elapsed_sec"`
	Verdict    string      `json:"verdict"` // pass or fail
}

func drill(ctx context.Context, o drillOptions, stdout, stderr io.Writer) error {
	n, ok := volumes[o.volume]
	if !ok {
		return usageError{fmt.Errorf("drill: --volume %q: small, day or peak", o.volume)}
	}
	day := time.Now().UTC().Truncate(24 * time.Hour)
	if o.day != "" {
		d, err := time.Parse(time.DateOnly, o.day)
		if err != nil {
			return usageError{fmt.Errorf("drill: --day: want YYYY-MM-DD")}
		}
		day = d
	}
	faults, err := parseFaults(o.faults)
	if err != nil {
		return usageError{err}
	}
	var overuse map[string]recon.Qty
	if oc := faults.clinical.OverConsume; oc != nil {
		overuse = oc.Factors()
	}
	msgs := synthDay(o.seed, day, daySpan(day, time.Now()), n, overuse)
	if o.listPatients {
		seen := map[string]bool{}
		for _, m := range msgs {
			if m.mrn != "" && !seen[m.mrn] {
				seen[m.mrn] = true
				fmt.Fprintln(stdout, m.mrn)
			}
		}
		return nil
	}
	if o.natsURL != "" {
		return errors.New("drill --nats: not yet; the drill starts its own sinew up (without --nats)")
	}
	inv, err := flows.Load(o.flowsFile)
	if err != nil {
		return err
	}
	start := time.Now()
	dir, err := os.MkdirTemp("", "sinew-drill-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintf(stderr, "drill: data dir %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	// Fusion and Epic's inbound interface are the drill's own, outside
	// sinew up: a kill fault kills Sinew, never the systems of record it
	// counts from.
	fusionAddr, err := startDrillFusion(ctx, o.seed)
	if err != nil {
		return err
	}
	epic, epicAddr, err := startDrillEpic(ctx)
	if err != nil {
		return err
	}
	// Epic's chart of the drill's day exists before Sinew reads Epic.
	chartFile, err := writeDrillChart(dir, day, msgs, faults)
	if err != nil {
		return err
	}
	env := drillEnv(epicAddr, chartFile, faults)
	s, err := startDrillUp(ctx, dir, o.flowsFile, fusionAddr, env)
	if err != nil {
		return err
	}
	defer func() { s.stop() }()

	progress := func(format string, a ...any) { fmt.Fprintf(stderr, "drill: "+format+"\n", a...) }
	progress("sinew up ready (data dir %s)", dir)
	cf := &connFlags{url: "nats://" + s.natsAddr, dataDir: dir, fs: flag.NewFlagSet("drill", flag.ContinueOnError)}
	c, err := cf.dial()
	if err != nil {
		return err
	}
	defer func() { c.Close() }()
	co := changeOptions{actor: "sinew-drill", reason: fmt.Sprintf("cutover drill seed %d", o.seed), every: time.Second, key: cliAuditKey(dir)}
	for i := range inv.Flows {
		if err := setFlowState(ctx, c.js, &inv.Flows[i], flows.Staged, co, io.Discard); err != nil {
			return fmt.Errorf("stage %s: %w", inv.Flows[i].ID, err)
		}
	}
	progress("%d flows staged", len(inv.Flows))

	run := &drillRun{seed: o.seed, day: day, n: n, dir: dir, inv: inv, faults: faults, fusionAddr: fusionAddr, mllpAddr: s.mllpAddr, epic: epic, js: c.js}
	kinds := drillKinds(msgs)
	kindOf := map[string]drillKind{}
	for _, k := range kinds {
		var fs []*flows.Flow
		for i := range inv.Flows {
			f := &inv.Flows[i]
			if kindOf[f.ID] == nil && k.fits(f) {
				kindOf[f.ID] = k
				fs = append(fs, f)
			}
		}
		if len(fs) == 0 {
			continue
		}
		if err := k.send(ctx, run, fs); err != nil {
			return fmt.Errorf("drill: %s: %w", k.name(), err)
		}
		progress("%s sent for %s", k.name(), flowIDs(fs))
	}
	// After the Fusion-side changes (Fusion's users' own, not Sinew's
	// requests), before Sinew posts anything.
	if len(faults.fusion) > 0 {
		if err := s.fusionPost("/sim/faults", map[string]any{"http": faults.fusion}); err != nil {
			return fmt.Errorf("fusionsim faults: %w", err)
		}
	}

	for i := range inv.Flows {
		if err := setFlowState(ctx, c.js, &inv.Flows[i], flows.Active, co, io.Discard); err != nil {
			return fmt.Errorf("activate %s: %w", inv.Flows[i].ID, err)
		}
	}
	progress("%d flows activated: draining", len(inv.Flows))
	activated := time.Now()
	if faults.killing {
		time.Sleep(faults.killAt)
		progress("fault: kill -9 sinew up, restart on the same data dir")
		c.Close()
		if err := s.kill(); err != nil {
			return err
		}
		again, err := startDrillUp(ctx, dir, o.flowsFile, fusionAddr, env, s.addrs()...)
		if err != nil {
			return err
		}
		s = again
		if c, err = cf.dial(); err != nil {
			return err
		}
		run.js = c.js
	}

	timeout := o.timeout
	if timeout == 0 {
		timeout = 2*time.Minute + time.Duration(n)*200*time.Millisecond
	}
	rows, err := quiesce(ctx, c, inv, run, kinds, timeout, progress)
	if err != nil {
		return err
	}
	// Two-way flows: Epic answers what arrived, then quiet again.
	again := false
	for _, k := range kinds {
		if fu, ok := k.(drillFollowUp); ok {
			sent, err := fu.followUp(ctx, run)
			if err != nil {
				return fmt.Errorf("drill: %s: %w", k.name(), err)
			}
			again = again || sent
		}
	}
	if again {
		progress("Epic-side changes sent")
		if rows, err = quiesce(ctx, c, inv, run, kinds, timeout, progress); err != nil {
			return err
		}
	}
	res := drillResult{Seed: o.seed, Day: day.Format(time.DateOnly), Volume: o.volume, Faults: o.faults, Sent: len(msgs)}
	if len(faults.fusion) > 0 {
		var fs struct {
			HTTP []struct {
				Hits int `json:"hits"`
			} `json:"http"`
		}
		if err := s.fusionGet("/sim/faults", &fs); err == nil {
			for _, h := range fs.HTTP {
				res.FaultHits = append(res.FaultHits, h.Hits)
			}
		}
		// Fusion's outage ends, and the operator replays what it
		// dead-lettered: then nothing may be missing.
		n, err := replayFaulted(ctx, c, s, co)
		if err != nil {
			return err
		}
		res.Replayed = n
		if n > 0 {
			progress("Fusion's faults ended: %d dead letters replayed", n)
			if rows, err = quiesce(ctx, c, inv, run, kinds, timeout, progress); err != nil {
				return err
			}
		}
	}
	if faults.duplicate > 0 {
		if err := seedDuplicates(run, faults.duplicate); err != nil {
			return err
		}
		progress("fault: %d of Fusion's rows posted again outside Sinew", faults.duplicate)
	}
	if faults.killing {
		res.Restarts = 1
	}
	tiers, err := waitRecon(ctx, c, inv, kindOf, time.Minute, progress)
	if err != nil {
		return err
	}
	for i := range inv.Flows {
		f := &inv.Flows[i]
		d := drillFlow{Flow: f.ID, Pattern: f.Pattern, Verdict: "not-checked", DeadLetters: rows[f.ID].DeadLetters, Recon: rows[f.ID].Recon,
			Note: "no synthetic records for this flow's pattern and settings yet"}
		if k := kindOf[f.ID]; k != nil {
			if d, err = k.tally(ctx, run, f, rows[f.ID]); err != nil {
				return fmt.Errorf("drill: tally %s: %w", f.ID, err)
			}
			d.Kind = k.name()
			if at, ok := run.settled[k.name()]; ok && at.After(activated) {
				d.SettledSec = at.Sub(activated).Seconds()
			}
		}
		if d.ReconTiers == nil { // a kind that read a fresher board keeps its own
			d.ReconTiers = tiers[f.ID]
		}
		if d.Checked && d.Verdict == "pass" && d.DeadLetters == 0 {
			for _, t := range slices.Sorted(maps.Keys(d.ReconTiers)) {
				if d.ReconTiers[t] == recon.VerdictVariance {
					// The reconciler found a variance nothing explains.
					d.Verdict, d.Variance = "fail", true
					d.Note += "; reconciliation tier " + t + " has a variance with nothing in the DLQ"
					break
				}
			}
		}
		res.Flows = append(res.Flows, d)
	}
	res.ElapsedSec = time.Since(start).Seconds()
	res.Verdict = "pass"
	for _, f := range res.Flows {
		if f.Verdict == "fail" {
			res.Verdict = "fail"
		}
	}
	printDrill(stdout, res, o.json)
	if res.Verdict != "pass" {
		return exitError(1)
	}
	return nil
}

// replayFaulted ends fusionsim's injected faults, as an outage ends, and
// replays what they dead-lettered, as a cutover's operator does: letters
// whose retries were exhausted or that were never acknowledged. A
// permanent refusal stays in the DLQ, and is counted there.
func replayFaulted(ctx context.Context, c *client, s *drillUp, co changeOptions) (int, error) {
	if err := s.fusionPost("/sim/faults", map[string]any{}); err != nil {
		return 0, fmt.Errorf("fusionsim faults: %w", err)
	}
	w := audit.NewWriter(c.js, "cli:"+co.actor+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)).Keyed(co.key)
	st, err := dlq.Open(ctx, c.js, w)
	if err != nil {
		return 0, err
	}
	var letters []*dlq.Entry
	for _, kind := range []string{dlq.KindExhausted, dlq.KindMaxDeliveries} {
		es, err := st.Select(ctx, "", dlq.Selector{Kind: kind})
		if err != nil {
			return 0, err
		}
		letters = append(letters, es...)
	}
	n := 0
	err = st.ReplayAll(ctx, letters, co.actor, co.reason+": Fusion's injected faults ended", false, func(e *dlq.Entry, _ *dlq.ReplayInfo, err error) error {
		if err != nil {
			return fmt.Errorf("drill: replay dlq seq %d: %w", e.Seq, err)
		}
		n++
		return nil
	})
	return n, err
}

func flowIDs(fs []*flows.Flow) string {
	ids := make([]string, len(fs))
	for i, f := range fs {
		ids[i] = f.ID
	}
	return strings.Join(ids, ", ")
}

// drillEnv is sinew up's settings for the drill, by environment (a config
// file would replace the services' defaults): Epic's inbound interface is
// the drill's, and Fusion's pollers and the reconciler run often enough
// for a drill of minutes.
func drillEnv(epicAddr, chartFile string, faults drillFaults) []string {
	env := []string{
		"SINEW_LOADER_EPIC_ADDR=" + epicAddr, "SINEW_LOADER_EPIC_ACK_TIMEOUT=5s", "SINEW_TRANSFORM_POLL_INTERVAL=1s",
		"SINEW_RECONCILER_INVENTORY_EVERY=5s", "SINEW_RECONCILER_INVENTORY_GRACE=2s", "SINEW_RECONCILER_READ_LAG=5s",
		// A Journal Import whose answer a kill lost is submitted again
		// once the first has had time to run: 10 minutes against real
		// Fusion, seconds against the drill's fusionsim (200 ms a job
		// state), so the kill fault does not outlast the drill's wait.
		"SINEW_LOADER_SETTLE_TIME=20s",
		// Epic's FHIR server (seeded Medications for the $export
		// reconciliations): without traffic sinew up starts it only when
		// enabled, and then registers ingest's SMART client and JWKS.
		"SINEW_EPICSIM_FHIR_ENABLED=true",
		// ingest's paged searches (Encounters, Observations) read within
		// seconds what Epic charts.
		"SINEW_INGEST_FHIR_INTERVAL=3s",
	}
	if chartFile != "" {
		// Epic has charted the drill's OpTime cases and Beaker results
		// (fhir.live, fhir.chart_file): charted at start, before ingest's
		// first search, and again the same after a kill.
		env = append(env, "SINEW_EPICSIM_FHIR_LIVE=true", "SINEW_EPICSIM_FHIR_CHART_FILE="+chartFile)
	}
	if faults.formularyDrift {
		env = append(env, "SINEW_EPICSIM_FHIR_FAULTS_FORMULARY_DRIFT=true")
	}
	return env
}

// startDrillEpic serves Epic's inbound interface (provider, supplier and
// refund masters) on a free port in this process until ctx ends.
func startDrillEpic(ctx context.Context) (*epicsim.ProviderMaster, string, error) {
	addr, err := freePort()
	if err != nil {
		return nil, "", err
	}
	pm := epicsim.NewProviderMaster("STMARYS", false)
	srv, err := mllp.NewServer(mllp.ServerConfig{Addr: addr, Logger: zerolog.Nop()}, pm)
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	go func() { _ = srv.Serve(ctx, ln) }()
	return pm, addr, nil
}

// waitRecon waits (up to wait) until every reconciled flow the drill
// sent records to has a reconciliation row, and returns the tiers.
func waitRecon(ctx context.Context, c *client, inv *flows.Inventory, kindOf map[string]drillKind, wait time.Duration, progress func(string, ...any)) (map[string]map[string]string, error) {
	deadline := time.Now().Add(wait)
	for {
		tiers, err := reconTiers(ctx, c, inv)
		if err != nil {
			return nil, err
		}
		var missing []string
		for _, f := range inv.Flows {
			if kindOf[f.ID] != nil && f.Reconcile.Kind != flows.ReconcileNone && len(tiers[f.ID]) == 0 {
				missing = append(missing, f.ID)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			if len(missing) > 0 {
				progress("no reconciliation yet for %s after %v", strings.Join(missing, ", "), wait)
			}
			return tiers, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// reconTiers is each flow's reconciliation verdict per tier, from RECON:
// the worst of its batches' latest rows (variance, rejected, held,
// pending, pass).
func reconTiers(ctx context.Context, c *client, inv *flows.Inventory) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, f := range inv.Flows {
		board, err := recon.ReadBoard(ctx, c.js, f.ID, "")
		if err != nil {
			return nil, err
		}
		if t := boardTiers(board.Batches()); len(t) > 0 {
			out[f.ID] = t
		}
	}
	return out, nil
}

// boardTiers is the verdict per tier of batches' current rows, the worst
// of them (variance, rejected, held, pending, pass); nil without rows.
func boardTiers(batches []*recon.BatchState) map[string]string {
	rank := map[string]int{recon.VerdictPass: 1, recon.VerdictPending: 2, recon.VerdictHeld: 3, recon.VerdictRejected: 4, recon.VerdictVariance: 5}
	var out map[string]string
	for _, b := range batches {
		for _, e := range b.Rows() {
			t := strconv.Itoa(e.Row.Tier)
			if out == nil {
				out = map[string]string{}
			}
			if cur := out[t]; rank[e.Row.Verdict] >= rank[cur] {
				out[t] = e.Row.Verdict
			}
		}
	}
	return out
}

// sendDay sends every message over one MLLP connection, in order, and
// returns the indexes Sinew answered with other than AA.
func sendDay(ctx context.Context, addr string, msgs []drillMessage) (map[int]bool, error) {
	cl, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: addr, Match: hl7.AckMatches, AckTimeout: 30 * time.Second, Retries: 5, RetryDelay: 500 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	rejected := map[int]bool{}
	for i, m := range msgs {
		ack, err := cl.Send(ctx, m.raw)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", i+1, err)
		}
		if a, err := hl7.Parse(ack); err != nil || a.Get("MSA-1") != "AA" {
			rejected[i] = true
		}
	}
	return rejected, nil
}

// quiesce waits until no flow has a backlog or anything in flight and
// what reached the flows' targets stops changing, then returns the
// flows' last rows. Quiet means three looks 2 s apart once every kind
// has all it expects, ten while one still misses records (a loss is
// reported, not waited for until the timeout).
func quiesce(ctx context.Context, c *client, inv *flows.Inventory, run *drillRun, kinds []drillKind, timeout time.Duration, progress func(string, ...any)) (map[string]flowRow, error) {
	deadline := time.Now().Add(timeout)
	last, still := "", 0
	if run.settled == nil {
		run.settled, run.arrived = map[string]time.Time{}, map[string]int{}
	}
	for {
		var buf bytes.Buffer
		rows := map[string]flowRow{}
		busy := ""
		if err := listFlows(ctx, c.js, inv, 10*time.Millisecond, true, &buf); err == nil {
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				var r flowRow
				if json.Unmarshal([]byte(line), &r) == nil {
					rows[r.Flow] = r
					if r.Backlog > 0 || r.InFlight > 0 {
						busy = fmt.Sprintf("%s backlog %d, in flight %d", r.Flow, r.Backlog, r.InFlight)
					}
				}
			}
		} else {
			busy = err.Error()
		}
		var seen []string
		missing := 0
		for _, k := range kinds {
			got, want, err := k.progress(ctx, run)
			if err != nil {
				busy = err.Error()
			}
			seen = append(seen, fmt.Sprintf("%s %d/%d", k.name(), got, want))
			if got != run.arrived[k.name()] {
				run.arrived[k.name()], run.settled[k.name()] = got, time.Now()
			}
			missing += max(0, want-got)
		}
		now := strings.Join(seen, ", ")
		if busy == "" && now == last {
			still++
		} else {
			still = 0
		}
		last = now
		need := 3
		if missing > 0 {
			need = 10
		}
		if still >= need {
			progress("quiescent: %s", now)
			return rows, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("drill: not quiescent after %v: %s (%s)", timeout, busy, now)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// flowOfApp is the HL7 flow a synthetic message goes to, by its sending
// application; the demo inventory names one HL7 flow per Epic module.
func flowOfApp(inv *flows.Inventory, app string) string {
	for _, f := range inv.Flows {
		if strings.HasPrefix(f.Pattern, "realtime-hl7") && strings.EqualFold(strings.TrimPrefix(f.Source, "epic."), app) {
			return f.ID
		}
	}
	return ""
}

// tallyHL7 compares what was sent to HL7 flow f with what Fusion holds.
// The counts come from outside Sinew: the drill's own messages and
// fusionsim.
func tallyHL7(inv *flows.Inventory, f *flows.Flow, msgs []drillMessage, rejected map[int]bool, staged []fusionsim.SimStagedRow, r flowRow) drillFlow {
	d := drillFlow{Flow: f.ID, Pattern: f.Pattern, Verdict: "not-checked"}
	d.DeadLetters, d.Recon = r.DeadLetters, r.Recon
	want := map[string]bool{}
	lines := 0
	sentQty, loadedQty := decimal.Decimal("0"), decimal.Decimal("0")
	for i, m := range msgs {
		if flowOfApp(inv, m.app) != f.ID {
			continue
		}
		d.Messages++
		if rejected[i] {
			d.Rejected++
			continue
		}
		lines += m.lines
		if m.rx != "" {
			d.Sent++
			want[m.rx] = true
			if q, err := decimal.Parse(m.qty); err == nil {
				sentQty, _ = sentQty.Add(q)
			}
		}
	}
	seen := map[[2]int64]int{}
	got := map[string]int{}
	for _, s := range staged {
		if f.FusionSource == "" || s.SourceCode != f.FusionSource {
			continue
		}
		d.FusionRows++
		seen[[2]int64{s.SourceHeaderID, s.SourceLineID}]++
		got[s.TransactionReference]++
		if len(want) == 0 {
			d.Loaded++
			loadedQty, _ = loadedQty.Add(s.TransactionQuantity)
		} else if want[s.TransactionReference] {
			// A dispense is an issue: Fusion holds it negative.
			d.Loaded++
			loadedQty, _ = loadedQty.Add(s.TransactionQuantity.Neg())
		}
	}
	for _, c := range seen {
		d.Duplicated += c - 1
	}
	if d.Loaded > 0 {
		d.LoadedQty = loadedQty.String()
	}
	switch {
	case len(want) > 0:
		// Dispenses: one Fusion row per prescription number, the
		// same quantity.
		d.Checked, d.SentQty = true, sentQty.String()
		for rx := range want {
			if got[rx] == 0 {
				d.Lost++
			}
		}
		// What the DLQ holds is accounted for, not lost.
		d.Lost = max(0, d.Lost-d.DeadLetters)
		d.Verdict = "pass"
		if d.Lost > 0 || d.Duplicated > 0 {
			d.Verdict = "fail"
		}
		if d.Lost == 0 && d.Duplicated == 0 && d.DeadLetters == 0 && !sentQty.Equal(loadedQty) {
			d.Verdict, d.Variance = "fail", true
		}
		d.Note = "dispenses compared by prescription number and quantity; the flow's other messages counted in fusion_rows"
	case lines > 0:
		// Cases and results: as many rows as lines, none twice.
		d.Checked, d.Sent = true, lines
		d.Lost = max(0, lines-(d.FusionRows-d.Duplicated)-d.DeadLetters)
		d.Verdict = "pass"
		if d.Lost > 0 || d.Duplicated > 0 {
			d.Verdict = "fail"
		}
		if d.Lost == 0 && d.Duplicated == 0 && d.DeadLetters == 0 && d.FusionRows != lines {
			d.Verdict, d.Variance = "fail", true
		}
		d.Note = "compared by row count (one row per line); quantities are Fusion's, in its units"
	case d.Duplicated > 0:
		d.Sent, d.Verdict = d.Messages, "fail"
	case d.Messages > 0:
		d.Sent = d.Messages
		d.Note = "not yet compared message by message; Fusion rows counted and checked for duplicates"
	default:
		d.Note = "not yet in the drill's synthetic day"
	}
	return d
}

func settled(sec float64) string {
	if sec == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fs", sec)
}

// tierText is the verdicts of tiers 1 to 3 ("-" for one without rows).
func tierText(t map[string]string) string {
	if len(t) == 0 {
		return "-"
	}
	v := make([]string, 3)
	for i := range v {
		v[i] = dash(t[strconv.Itoa(i+1)])
	}
	return strings.Join(v, "/")
}

func printDrill(w io.Writer, res drillResult, asJSON bool) {
	if asJSON {
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintln(w, string(b))
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLOW\tSENT\tQTY\tLOADED\tQTY\tTARGET ROWS\tREJECTED\tDLQ\tLOST\tDUP\tRECON T1/T2/T3\tSETTLED\tVERDICT")
	for _, f := range res.Flows {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", f.Flow, f.Sent, dash(f.SentQty), f.Loaded, dash(f.LoadedQty),
			f.FusionRows, f.Rejected, f.DeadLetters, f.Lost, f.Duplicated, tierText(f.ReconTiers), settled(f.SettledSec), f.Verdict)
	}
	tw.Flush()
	if res.Replayed > 0 {
		fmt.Fprintf(w, "%d dead letters of Fusion's faults replayed after them\n", res.Replayed)
	}
	fmt.Fprintf(w, "seed %d, day %s, volume %s, %d messages, %.1f s: %s\n", res.Seed, res.Day, res.Volume, res.Sent, res.ElapsedSec, res.Verdict)
}

// drillUp is the sinew up the drill runs: this binary, a child process,
// so a kill fault is a real kill -9.
type drillUp struct {
	cmd                                      *exec.Cmd
	exited                                   chan error
	natsAddr, httpAddr, mllpAddr, fusionAddr string
}

func (s *drillUp) addrs() []string { return []string{s.natsAddr, s.httpAddr, s.mllpAddr} }

// startDrillFusion serves fusionsim in this process until ctx ends and
// returns its address. seed makes its fault rates repeat.
func startDrillFusion(ctx context.Context, seed uint64) (string, error) {
	cfg := fusionsim.DefaultSimConfig()
	cfg.Seed = seed
	srv, err := fusionsim.NewServer(cfg)
	if err != nil {
		return "", err
	}
	up := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- fusionsim.Serve(ctx, "127.0.0.1:0", srv, func(a net.Addr) { up <- a.String() })
		srv.Close()
	}()
	select {
	case a := <-up:
		return a, nil
	case err := <-errc:
		return "", err
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startDrillUp starts sinew up in dir on free ports (or on addrs, after a
// restart), without synthetic traffic and posting to the Fusion at
// fusionAddr, and waits until it is ready.
func startDrillUp(ctx context.Context, dir, flowsFile, fusionAddr string, env []string, addrs ...string) (*drillUp, error) {
	if len(addrs) != 3 {
		addrs = make([]string, 3)
		for i := range addrs {
			a, err := freePort()
			if err != nil {
				return nil, err
			}
			addrs[i] = a
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "up.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	s := &drillUp{natsAddr: addrs[0], httpAddr: addrs[1], mllpAddr: addrs[2], fusionAddr: fusionAddr, exited: make(chan error, 1)}
	s.cmd = exec.Command(exe, "up", "--no-traffic", "--data-dir", dir, "--flows", flowsFile,
		"--nats-addr", s.natsAddr, "--http-addr", s.httpAddr, "--mllp-addr", s.mllpAddr, "--fusion-url", "http://"+fusionAddr)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.Env = append(os.Environ(), env...)
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { s.exited <- s.cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case err := <-s.exited:
			return nil, fmt.Errorf("drill: sinew up exited before ready (%v); see %s", err, filepath.Join(dir, "up.log"))
		case <-ctx.Done():
			_ = s.kill()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		resp, err := http.Get("http://" + s.httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			_ = s.kill()
			return nil, fmt.Errorf("drill: sinew up not ready within 2 min; see %s", filepath.Join(dir, "up.log"))
		}
	}
}

func (s *drillUp) kill() error {
	_ = s.cmd.Process.Kill()
	<-s.exited
	return nil
}

// stop ends sinew up gracefully (interrupt), killing it after 30 s.
func (s *drillUp) stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func (s *drillUp) fusionGet(path string, dst any) error {
	resp, err := http.Get("http://" + s.fusionAddr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fusionsim %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(dst)
}

func (s *drillUp) fusionPost(path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	resp, err := http.Post("http://"+s.fusionAddr+path, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("fusionsim %s: %s %s", path, resp.Status, msg)
	}
	return nil
}
