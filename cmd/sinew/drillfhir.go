package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/streams"
)

// fhirReconKind is the FHIR reconciliations Epic's seeded resources feed
// by $export (every intake.fhir of the flow with sync: export): the drill
// sends nothing of its own, epicsim's FHIR server holds the day (and a
// drift when --faults asks for one), ingest reads it at start, and the
// flow's own check compares it with what the HL7 flows carried. Flows
// read by paged search need Epic to chart the drill's own traffic, which
// the drill does not do yet: they stay not-checked.
type fhirReconKind struct{}

func (fhirReconKind) name() string { return "Epic FHIR $export" }

func (fhirReconKind) fits(f *flows.Flow) bool {
	if f.Pattern != "fhir-reconciliation" || len(f.Intake.FHIR) == 0 {
		return false
	}
	for _, in := range f.Intake.FHIR {
		if in.Sync != flows.FHIRExport {
			return false
		}
	}
	return true
}

// send has nothing to send: the resources are epicsim's, seeded.
func (fhirReconKind) send(context.Context, *drillRun, []*flows.Flow) error { return nil }

// read is how many resources of f's intake types ingest committed.
func (fhirReconKind) read(ctx context.Context, r *drillRun, f *flows.Flow) (int, error) {
	s, err := r.js.Stream(ctx, streams.FHIRIn)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, in := range f.Intake.FHIR {
		subj := streams.FHIRSubject(in.Type)
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(subj))
		if err != nil {
			return 0, err
		}
		n += int(info.State.Subjects[subj])
	}
	return n, nil
}

// progress counts resources read; how many Epic holds is not known to
// the drill in advance.
func (k fhirReconKind) progress(ctx context.Context, r *drillRun) (int, int, error) {
	got := 0
	for i := range r.inv.Flows {
		f := &r.inv.Flows[i]
		if !k.fits(f) {
			continue
		}
		n, err := k.read(ctx, r, f)
		if err != nil {
			return 0, 0, err
		}
		got += n
	}
	return got, 0, nil
}

// tally reads the flow's reconciliation: tier 1 is the totals (source:
// records checked), each tier-3 row one variance.
func (k fhirReconKind) tally(ctx context.Context, r *drillRun, f *flows.Flow, row flowRow) (drillFlow, error) {
	d := drillFlow{Flow: f.ID, Pattern: f.Pattern, DeadLetters: row.DeadLetters, Recon: row.Recon, Verdict: "fail"}
	n, err := k.read(ctx, r, f)
	if err != nil {
		return d, err
	}
	d.Messages, d.Sent, d.Loaded = n, n, n
	board, err := recon.ReadBoard(ctx, r.js, f.ID, "")
	if err != nil {
		return d, err
	}
	verdict := ""
	for _, b := range board.Batches() {
		for _, e := range b.Rows() {
			switch e.Row.Tier {
			case recon.TierTotals:
				d.FusionRows = int(e.Row.Source)
			case recon.TierLines:
				if e.Row.Verdict == recon.VerdictVariance {
					d.Variances++
				}
			}
		}
		verdict = b.Verdict()
	}
	d.Checked, d.ReconVerdict = true, dash(verdict)
	d.Note = fmt.Sprintf("%s read from Epic (source_count), compared by the flow's check: fusion_rows is what it checked, variances its tier-3 variances", strings.Join(fhirTypes(f), ", "))
	switch {
	case n == 0:
		d.Note = "no resource read from Epic's FHIR server; " + d.Note
	case verdict == "":
		d.Note = "no reconciliation verdict; " + d.Note
	case d.Variances > 0 || verdict == recon.VerdictVariance:
		d.Variance = true
	default:
		d.Verdict = "pass"
	}
	return d, nil
}

func fhirTypes(f *flows.Flow) []string {
	var out []string
	for _, in := range f.Intake.FHIR {
		out = append(out, in.Type)
	}
	return out
}
