package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/schedule"
)

// scheduledKind is the scheduled batch flows that read no drop folder of
// their own (a schedule and nothing the other kinds send): the drill
// sends them nothing, and once the day has quiesced asks each for a run
// of the drill day by hand (`sinew flows run --day`), under the same lease
// as its schedule. It passes when the run succeeded with nothing missing.
type scheduledKind struct{}

func (scheduledKind) name() string { return "a manual run of the drill day" }

func (scheduledKind) fits(f *flows.Flow) bool {
	return f.Schedule != "" && f.Pattern == "batch" && f.HL7 == nil && f.Resolute == nil && len(f.Intake.FHIR) == 0
}

// send has nothing to send: the run reads what the other kinds' flows
// carried.
func (scheduledKind) send(context.Context, *drillRun, []*flows.Flow) error { return nil }

// progress knows nothing in advance: the run is asked for at tally.
func (scheduledKind) progress(context.Context, *drillRun) (int, int, error) { return 0, 0, nil }

// drillRunWait bounds one scheduled flow's run in the drill.
const drillRunWait = 3 * time.Minute

// tally runs f for the drill day and counts its steps: source is what
// the run compared, in_fusion what Fusion held, missing (and
// still_missing, after a re-send) what it lacked.
func (scheduledKind) tally(ctx context.Context, r *drillRun, f *flows.Flow, row flowRow) (drillFlow, error) {
	d := drillFlow{Flow: f.ID, Pattern: f.Pattern, DeadLetters: row.DeadLetters, Recon: row.Recon, Verdict: "fail", Checked: true}
	ctx, cancel := context.WithTimeout(ctx, drillRunWait)
	defer cancel()
	run, err := runFlow(ctx, r.js, f.ID, r.day.Format(time.DateOnly), "sinew-drill", true, false, io.Discard)
	if run == nil {
		d.Note = fmt.Sprintf("no run record: %v", err)
		return d, nil
	}
	missing := runCounts(run)
	d.Note = fmt.Sprintf("run %s of %s: %s; source_count is the run's source, loaded its in_fusion, lost its missing (still_missing after a re-send)", run.ID, r.day.Format(time.DateOnly), run.Outcome)
	if err != nil {
		d.Note += "; " + err.Error()
	}
	d.Sent, d.Loaded, d.Rejected = int(missing["source"]), int(missing["in_fusion"]), int(missing["rejected"])
	d.Messages = d.Sent
	d.Lost = int(missing["still_missing"])
	// A run that succeeded left nothing missing (still_missing fails it).
	// What Fusion lacked at the run's first read is reported: on a clean
	// day it is a loss the catch-up repaired; under Fusion's faults it may
	// be a transaction the loader was still retrying, which the loader's
	// check of Fusion then posts once (no duplicate either way).
	if run.Outcome == schedule.Succeeded && d.Lost == 0 {
		d.Verdict = "pass"
		if n := missing["missing"]; n > 0 {
			d.Note = fmt.Sprintf("%d not in Fusion at the run's first read, %d re-posted; ", n, missing["posted"]) + d.Note
		}
	}
	return d, nil
}

// runCounts sums a run's counts over its steps.
func runCounts(run *schedule.Run) map[string]int64 {
	out := map[string]int64{}
	for _, s := range run.Steps {
		for k, n := range s.Counts {
			out[k] += n
		}
	}
	return out
}
