package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/fhir"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/epicsim"
	"github.com/sinewhq/sinew/services/transform/flows/fhircheck"
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

// --- Epic's chart of the drill's own day (FHIR search) -------------------

// chartedDay is what Epic charts for the drill's HL7 day, in order: the
// surgical case of each OpTime case cart, the tests of each final Beaker
// result (epicsim's Clinical, as its traffic charts them).
func chartedDay(msgs []drillMessage) []epicsim.Clinical {
	var out []epicsim.Clinical
	for _, m := range msgs {
		if m.clinical.Case != nil || len(m.clinical.Tests) > 0 {
			out = append(out, m.clinical)
		}
	}
	return out
}

// chartedToday reports whether the reconciler checks the drill day: it
// runs the FHIR reconciliations' checks for today (UTC) only.
func chartedToday(day time.Time) bool { return day.Equal(time.Now().UTC().Truncate(24 * time.Hour)) }

// writeDrillChart writes Epic's chart of the drill's day, with the
// seeded clinical faults, for epicsim to chart at start (fhir.chart_file)
// and returns its path; "" when the drill day is not today or nothing is
// charted. Epic had charted the day before the cutover began: charted
// later, beyond ingest's search overlap, it would not be read.
func writeDrillChart(dir string, day time.Time, msgs []drillMessage, faults drillFaults) (string, error) {
	recs := chartedDay(msgs)
	if !chartedToday(day) || len(recs) == 0 {
		return "", nil
	}
	req := epicsim.ChartRequest{Records: recs}
	if c := faults.clinical; c.MissingEncounters > 0 || c.UncartedImplants > 0 {
		req.Faults = &epicsim.ClinicalFaults{MissingEncounters: c.MissingEncounters, UncartedImplants: c.UncartedImplants}
	}
	b, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "epic-chart.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", fmt.Errorf("drill: Epic's chart: %w", err)
	}
	return path, nil
}

// fhirChartKind is the FHIR reconciliations Epic's chart feeds by paged
// search (every intake.fhir of the flow with sync: search): their Epic
// side is what Epic charted for the drill's own HL7 day. epicsim's FHIR
// server charts it at start (writeDrillChart: a surgical Encounter per
// OpTime case with its implant count, a final lab Observation with its
// instrument per test of a final Beaker result, at the messages' times,
// under the ids the flows match on: case id, accession), ingest's search
// reads it, and the flow's own check compares it with what the HL7 flows
// posted. A resource dated later today than ingest's last search is not
// due yet, on either side of the check's cut.
type fhirChartKind struct {
	records []epicsim.Clinical
	// skip says why nothing is checked (a drill day other than today).
	skip string
}

func (k *fhirChartKind) name() string { return "Epic's chart of the day (FHIR search)" }

func (k *fhirChartKind) fits(f *flows.Flow) bool {
	if f.Pattern != "fhir-reconciliation" || len(f.Intake.FHIR) == 0 {
		return false
	}
	for _, in := range f.Intake.FHIR {
		if in.Sync != flows.FHIRSearch {
			return false
		}
	}
	return true
}

// chartReadWait bounds the wait for ingest's first search of each type.
const chartReadWait = 2 * time.Minute

// send has nothing to send (Epic charted the day at start): it waits for
// ingest's first search of each type the flows read.
func (k *fhirChartKind) send(ctx context.Context, r *drillRun, fs []*flows.Flow) error {
	if !chartedToday(r.day) {
		k.skip = fmt.Sprintf("the reconciler runs this flow's check for today (UTC) only; the drill day is %s", r.day.Format(time.DateOnly))
		return nil
	}
	deadline := time.Now().Add(chartReadWait)
	for _, f := range fs {
		for _, typ := range fhirTypes(f) {
			for {
				_, ok, err := fhircheck.Watermark(ctx, r.js, typ)
				if err != nil {
					return err
				}
				if ok {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("ingest has not searched Epic's %s within %v", typ, chartReadWait)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Second):
				}
			}
		}
	}
	return nil
}

// chartedRes is one resource Epic charted for the day: its business key
// (the case id; accession and LOINC) and date.
type chartedRes struct {
	key string
	at  time.Time
}

// expected is what Epic charted of typ: an Encounter per case but the
// first epic.missing_encounters ones, an Observation per test.
func (k *fhirChartKind) expected(typ string, missing int) []chartedRes {
	var out []chartedRes
	for _, c := range k.records {
		switch typ {
		case "Encounter":
			if c.Case == nil {
				continue
			}
			if missing > 0 {
				missing--
				continue
			}
			out = append(out, chartedRes{c.Case.ID, c.Case.At})
		case "Observation":
			for _, t := range c.Tests {
				out = append(out, chartedRes{t.Accession + "|" + t.LOINC(), t.At})
			}
		}
	}
	return out
}

// read is the business keys of typ's resources on FHIR_IN (as expected
// names them; others, such as Epic's seeded office visits, have none).
func (k *fhirChartKind) read(ctx context.Context, r *drillRun, typ string) (map[string]bool, error) {
	out := map[string]bool{}
	err := streams.Scan(ctx, r.js, streams.FHIRIn, streams.FHIRSubject(typ), time.Time{}, func(m jetstream.Msg) error {
		var ev sinewv1.FhirResourceReceived
		if proto.Unmarshal(m.Data(), &ev) == nil {
			out[chartKey(typ, ev.GetJson())] = true
		}
		return nil
	})
	return out, err
}

// chartKey is a resource's business key as expected names it: an
// Encounter's case id, an Observation's accession and LOINC code; ""
// when it has none.
func chartKey(typ string, raw []byte) string {
	var res struct {
		Identifier []fhir.Identifier    `json:"identifier"`
		Code       fhir.CodeableConcept `json:"code"`
	}
	if json.Unmarshal(raw, &res) != nil {
		return ""
	}
	switch typ {
	case "Encounter":
		return fhir.IdentifierValue(res.Identifier, epicsim.CaseIdentifierSystem)
	case "Observation":
		if acc := fhir.IdentifierValue(res.Identifier, epicsim.AccessionIdentifierSystem); acc != "" {
			return acc + "|" + res.Code.Code("http://loinc.org")
		}
	}
	return ""
}

// progress counts the charted resources read into FHIR_IN; how many are
// due depends on when ingest searches.
func (k *fhirChartKind) progress(ctx context.Context, r *drillRun) (int, int, error) {
	if k.skip != "" {
		return 0, 0, nil
	}
	got := 0
	for _, typ := range []string{"Encounter", "Observation"} {
		want := k.expected(typ, r.faults.clinical.MissingEncounters)
		if len(want) == 0 {
			continue
		}
		ids, err := k.read(ctx, r, typ)
		if err != nil {
			return 0, 0, err
		}
		for _, c := range want {
			if ids[c.key] {
				got++
			}
		}
	}
	return got, 0, nil
}

// checkWait bounds the wait for the flow's check to run once more after
// quiescence (the drill's reconciler runs every 5 s).
const checkWait = 45 * time.Second

// tally counts f's charted resources due by ingest's last search
// (source_count) and those on FHIR_IN (loaded; a missing one is lost),
// then reads the flow's check of the day from a run after quiescence:
// fusion_rows its tier-1 source counts, variances its variance rows.
func (k *fhirChartKind) tally(ctx context.Context, r *drillRun, f *flows.Flow, row flowRow) (drillFlow, error) {
	d := drillFlow{Flow: f.ID, Pattern: f.Pattern, DeadLetters: row.DeadLetters, Recon: row.Recon, Verdict: "fail"}
	if k.skip != "" {
		d.Verdict, d.Note = "not-checked", k.skip
		return d, nil
	}
	since := time.Now()
	later := 0
	for _, typ := range fhirTypes(f) {
		wm, _, err := fhircheck.Watermark(ctx, r.js, typ)
		if err != nil {
			return d, err
		}
		ids, err := k.read(ctx, r, typ) // after the watermark: all it covers
		if err != nil {
			return d, err
		}
		for _, c := range k.expected(typ, r.faults.clinical.MissingEncounters) {
			d.Messages++
			if !c.at.Before(wm) {
				later++
				continue
			}
			d.Sent++
			if ids[c.key] {
				d.Loaded++
			}
		}
	}
	d.Lost = d.Sent - d.Loaded
	d.Checked = true
	d.Note = fmt.Sprintf("Epic charted the drill's day as %s (%d; %d dated later today than ingest's last search, not due yet): source_count those due, loaded those read into FHIR_IN; compared by the flow's check: fusion_rows its tier-1 source counts, variances its variance rows",
		strings.Join(fhirTypes(f), ", "), d.Messages, later)
	c := r.faults.clinical
	for _, typ := range fhirTypes(f) {
		switch {
		case typ == "Encounter" && c.MissingEncounters+c.UncartedImplants > 0:
			d.Note += fmt.Sprintf("; seeded: %d cases charted without an Encounter, %d implant Encounters without a cart", c.MissingEncounters, c.UncartedImplants)
		case typ == "Observation" && c.OverConsume != nil:
			d.Note += fmt.Sprintf("; seeded: %s using %s %% more reagent than its tests need", c.OverConsume.Device, c.OverConsume.Percent)
		}
	}
	if d.Sent == 0 {
		d.Checked, d.Verdict = false, "not-checked"
		d.Note = "nothing of the drill day is dated before ingest's last search yet (early in the UTC day); " + d.Note
		return d, nil
	}
	b, err := freshCheck(ctx, r, f.ID, r.day.Format(time.DateOnly), since, checkWait)
	if err != nil {
		return d, err
	}
	if b == nil || b.Summary == nil {
		d.Note = "no reconciliation verdict; " + d.Note
		return d, nil
	}
	var variances []string
	for _, e := range b.Rows() {
		if e.Row.Tier == recon.TierTotals {
			d.FusionRows += int(e.Row.Source)
		}
		if e.Row.Verdict == recon.VerdictVariance {
			d.Variances++
			variances = append(variances, e.Row.Key)
		}
	}
	d.ReconVerdict, d.ReconTiers = b.Verdict(), boardTiers([]*recon.BatchState{b})
	if b.Summary.CheckedAt.Before(since) {
		d.Note = "the check has not run since quiescence (its last verdict shown); " + d.Note
	}
	switch {
	case d.Lost > 0:
		d.Note = fmt.Sprintf("%d charted resources due and not read by ingest; ", d.Lost) + d.Note
	case d.Variances > 0 || b.Verdict() == recon.VerdictVariance:
		d.Variance = true
		d.Note = "the check's variances: " + strings.Join(variances, ", ") + "; " + d.Note
	case b.Verdict() == recon.VerdictPass:
		d.Verdict = "pass"
	}
	return d, nil
}

// freshCheck is flow's batch scope as the check last published it,
// waiting up to wait for a run that began after since; nil without one.
func freshCheck(ctx context.Context, r *drillRun, flow, scope string, since time.Time, wait time.Duration) (*recon.BatchState, error) {
	deadline := time.Now().Add(wait)
	for {
		board, err := recon.ReadBoard(ctx, r.js, flow, scope)
		if err != nil {
			return nil, err
		}
		var b *recon.BatchState
		for _, x := range board.Batches() {
			if x.Flow == flow && x.Scope == scope {
				b = x
			}
		}
		if (b != nil && b.Summary != nil && !b.Summary.CheckedAt.Before(since)) || time.Now().After(deadline) {
			return b, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
