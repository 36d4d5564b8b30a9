package beakerexpecteduse

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/transform/flows/fhircheck"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// Check is the flow's reconciliation (registry.Entry.Check) of env.Day
// up to its cut (fhircheck.Cut: Observation's sync watermark, now less
// env.Grace): the lab Observations on FHIR_IN against the reagent lines
// of every HL7 flow mapping the reagent shape (beaker-inventory). Nothing
// (nil) before the first Observation sync, or on a day with neither
// tests nor reagent postings.
func Check(ctx context.Context, f *flows.Flow, env registry.CheckEnv) (*recon.Result, error) {
	uses, err := Uses(f)
	if err != nil {
		return nil, err
	}
	day, cut, ok, err := fhircheck.DayCut(ctx, env.JS, "Observation", env.Day, env.Now, env.Grace)
	if err != nil || !ok {
		return nil, err
	}
	tol := env.Tolerance
	if a := f.Tolerances.Absolute; a != "" {
		// The absolute tolerance is a quantity (of each reagent's unit).
		q, err := recon.ParseQty(a)
		if err != nil || q < 0 {
			return nil, fmt.Errorf("flow %s: tolerances.absolute %q is not a quantity", f.ID, a)
		}
		tol.Absolute = money.Amount(q)
	}
	in := Input{Scope: day.Format(time.DateOnly), Day: day, Cut: cut, Uses: uses, Tolerance: tol}
	err = streams.Scan(ctx, env.JS, streams.FHIRIn, streams.FHIRSubject("Observation"), time.Time{}, func(m jetstream.Msg) error {
		var ev sinewv1.FhirResourceReceived
		if proto.Unmarshal(m.Data(), &ev) != nil {
			return nil
		}
		if t, err := FromEvent(&ev); err == nil && t.Counts() {
			in.Tests = append(in.Tests, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: Observations: %w", f.ID, err)
	}
	for _, id := range fhircheck.ShapeFlows(env.Inventory, hl7flow.Reagent) {
		ps, err := fhircheck.Postings(ctx, env.JS, id, day.Add(-24*time.Hour))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.ID, err)
		}
		in.Postings = append(in.Postings, ps...)
	}
	return Reconcile(in), nil
}

// Input is one day's comparison.
type Input struct {
	Scope string
	// Day and Cut bound what is compared: tests and postings dated in [Day, Cut).
	Day, Cut  time.Time
	Uses      []Use
	Tests     []Test              // counted tests, every version read
	Postings  []fhircheck.Posting // reagent lines, Code the reagent
	Tolerance recon.Tolerance
}

// reagent is one reagent's side by side.
type reagent struct {
	code, uom        string
	expected, posted recon.Qty
	why              []string // "12 × 718-7 on BEAKER-HEME-02"
	lines            int
	otherUnits       []string
}

// Reconcile compares expected with posted consumption per reagent: a
// tier-1 row per declared instrument and test (tests counted), a tier-2
// row per reagent (expected against posted, in the reagent's Fusion
// unit, within the tolerance: absolute a quantity, percent of the
// expected), a tier-3 row per posting in another unit than declared, and
// the summary (lines: reagents compared; matched: within tolerance;
// mismatched: beyond; posted: reagent lines Fusion accepted; pending:
// lines not answered yet, left to the next run). Tests of an instrument
// and test no use is declared for are counted on a tier-1 row and
// expect nothing. Nil when the day has neither tests nor postings.
func Reconcile(in Input) *recon.Result {
	inDay := func(t time.Time) bool { return !t.Before(in.Day) && t.Before(in.Cut) }
	counted := map[string]bool{}
	tests := map[[2]string]int64{}
	for _, t := range in.Tests {
		if !inDay(t.At) || counted[t.Observation] {
			continue
		}
		counted[t.Observation] = true
		tests[[2]string{t.Device, t.Test}]++
	}
	reagents := map[string]*reagent{}
	get := func(code, uom string) *reagent {
		r := reagents[code]
		if r == nil {
			r = &reagent{code: code, uom: uom}
			reagents[code] = r
		}
		return r
	}
	declared := map[[2]string]bool{}
	for _, u := range in.Uses {
		declared[[2]string{u.Device, u.Test}] = true
		r := get(u.Reagent, u.UOM)
		if n := tests[[2]string{u.Device, u.Test}]; n > 0 {
			r.expected += recon.Qty(n) * u.PerTest
			r.why = append(r.why, fmt.Sprintf("%d × %s on %s at %s", n, u.Test, u.Device, u.PerTest))
		}
	}
	res := &recon.Result{Summary: recon.Summary{Scope: in.Scope}}
	for _, p := range in.Postings {
		r, ok := reagents[p.Code]
		if !ok || !inDay(p.Date) {
			continue // not an instrument-linked reagent, or another day
		}
		switch {
		case p.Outcome == "":
			res.Summary.Pending++
			continue
		case !p.Accepted():
			continue // refused by Fusion: the inventory reconciliation's variance
		}
		if !strings.EqualFold(p.UOM, r.uom) {
			r.otherUnits = append(r.otherUnits, p.Key+" in "+p.UOM)
			continue
		}
		r.posted -= p.Quantity // an issue is negative, a return positive
		r.lines++
		res.Summary.Posted++
	}
	var anyTests bool
	for _, n := range tests {
		anyTests = anyTests || n > 0
	}
	if !anyTests && res.Summary.Posted == 0 && res.Summary.Pending == 0 {
		return nil
	}
	keys := make([][2]string, 0, len(tests))
	for k := range tests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+"|"+keys[i][1] < keys[j][0]+"|"+keys[j][1] })
	for _, k := range keys {
		text := fmt.Sprintf("%d tests %s on %s resulted before %s (the cut)", tests[k], k[1], k[0], in.Cut.Format(time.RFC3339))
		if !declared[k] {
			text += "; no reagent use declared for this test and instrument: nothing expected"
		}
		res.Rows = append(res.Rows, recon.Row{Tier: recon.TierTotals, Scope: in.Scope, Key: "tests|" + k[0] + "|" + k[1], Hop: "epic", Unit: recon.UnitLines,
			Source: money.Amount(tests[k]), Target: money.Amount(tests[k]), Verdict: recon.VerdictPass, Explanation: text})
	}
	codes := make([]string, 0, len(reagents))
	for c := range reagents {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		r := reagents[c]
		if r.expected == 0 && r.posted == 0 && len(r.otherUnits) == 0 {
			continue
		}
		res.Summary.Lines++
		v := r.posted - r.expected
		verdict, note := recon.VerdictPass, "within tolerance ("+in.Tolerance.String()+")"
		if !in.Tolerance.Within(money.Amount(r.expected), money.Amount(v)) {
			verdict, note = recon.VerdictVariance, "beyond tolerance ("+in.Tolerance.String()+")"
		}
		why := strings.Join(r.why, " + ")
		if why == "" {
			why = "no tests"
		}
		text := fmt.Sprintf("reagent %s: expected %s %s (%s), Fusion accepted %s %s in %d lines; %s", c, r.expected, r.uom, why, r.posted, r.uom, r.lines, note)
		res.Rows = append(res.Rows, recon.Row{Tier: recon.TierBalances, Scope: in.Scope, Key: "reagent|" + c, Hop: "fusion", Unit: recon.UnitQtyPrefix + r.uom,
			Source: money.Amount(r.expected), Target: money.Amount(r.posted), Variance: money.Amount(v), Verdict: verdict, Explanation: text})
		if verdict == recon.VerdictVariance {
			res.Summary.Mismatched++
			res.Summary.Variances++
		} else {
			res.Summary.Matched++
		}
		for _, o := range r.otherUnits {
			res.Rows = append(res.Rows, recon.Row{Tier: recon.TierLines, Scope: in.Scope, Key: "unit|" + c + "|" + o, Hop: "fusion", Unit: recon.UnitLines,
				Source: 1, Target: 0, Variance: -1, Verdict: recon.VerdictVariance,
				Explanation: fmt.Sprintf("reagent %s: posting %s, not in the declared %s: not comparable", c, o, r.uom)})
			res.Summary.Variances++
		}
	}
	res.Summary.Verdict = recon.VerdictPass
	if res.Summary.Variances > 0 {
		res.Summary.Verdict = recon.VerdictVariance
	}
	return res
}
