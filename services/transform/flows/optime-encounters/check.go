package optimeencounters

import (
	"context"
	"fmt"
	"sort"
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
// up to its cut (fhircheck.Cut: Encounter's sync watermark, now less
// env.Grace): the Encounters on FHIR_IN against the case carts of every
// HL7 flow mapping the case shape (optime-materials), their commands on
// FUSION_CMD and Fusion's answers on RESULTS. Nothing (nil) before the
// first Encounter sync, or when the day has neither cases nor carts.
func Check(ctx context.Context, f *flows.Flow, env registry.CheckEnv) (*recon.Result, error) {
	cfg, err := settings(f)
	if err != nil {
		return nil, err
	}
	day, cut, ok, err := fhircheck.DayCut(ctx, env.JS, "Encounter", env.Day, env.Now, env.Grace)
	if err != nil || !ok {
		return nil, err // not ok: Epic's Encounters of the day are not synced yet
	}
	in := Input{Scope: day.Format(time.DateOnly), Day: day, Cut: cut, Tolerance: env.Tolerance}
	err = streams.Scan(ctx, env.JS, streams.FHIRIn, streams.FHIRSubject("Encounter"), time.Time{}, func(m jetstream.Msg) error {
		var ev sinewv1.FhirResourceReceived
		if proto.Unmarshal(m.Data(), &ev) != nil {
			return nil
		}
		if c, err := FromEvent(&ev, cfg); err == nil { // else dead-lettered by transform
			in.Encounters = append(in.Encounters, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: Encounters: %w", f.ID, err)
	}
	for _, id := range fhircheck.ShapeFlows(env.Inventory, hl7flow.Case) {
		ps, err := fhircheck.Postings(ctx, env.JS, id, day.Add(-24*time.Hour))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.ID, err)
		}
		in.Carts = append(in.Carts, ps...)
	}
	return Reconcile(in), nil
}

// Input is one day's comparison.
type Input struct {
	Scope string
	// Day and Cut bound what is compared: cases and carts dated in [Day, Cut).
	Day, Cut   time.Time
	Encounters []Case              // every version read, in stream order
	Carts      []fhircheck.Posting // case-cart lines, SourceID the case id
	Tolerance  recon.Tolerance
}

// Variance kinds (tier-3 keys <case>/<kind>).
const (
	// NoEncounter: a case cart posted to Fusion whose case id no Encounter carries.
	NoEncounter = "no-encounter"
	// NoCart: an Encounter that logged implants and has no case cart.
	NoCart = "no-cart"
)

// cart is one case's lines.
type cart struct {
	id                        string
	at                        time.Time // the earliest line's date
	lines, accepted, inFlight int
	implantLines              int
}

// Reconcile compares the day's cases with its carts: a tier-1 row
// counting both, a tier-3 row per variance, and the summary (lines: the
// day's surgical cases; posted: carts Fusion accepted; matched: carts
// with their encounter; missing: encounters with implants and no cart;
// extra: carts without an encounter; pending: carts the loader has not
// answered yet, left to the next run). An encounter cancelled or entered
// in error is no case. The tolerance counts variances, as a number
// (absolute) or a percent of the day's cases. Nil when the day has
// neither cases nor carts.
func Reconcile(in Input) *recon.Result {
	inDay := func(t time.Time) bool { return !t.Before(in.Day) && t.Before(in.Cut) }
	// The latest version of each Encounter, then by case id.
	latest := map[string]Case{}
	for _, c := range in.Encounters {
		latest[c.Encounter] = c
	}
	byCase := map[string]Case{}
	for _, c := range latest {
		if c.Case == "" || c.Status == "cancelled" || c.Status == "entered-in-error" {
			continue
		}
		byCase[c.Case] = c
	}
	carts := map[string]*cart{}
	for _, p := range in.Carts {
		c := carts[p.SourceID]
		if c == nil {
			c = &cart{id: p.SourceID, at: p.Date}
			carts[p.SourceID] = c
		}
		if p.Date.Before(c.at) {
			c.at = p.Date
		}
		c.lines++
		switch {
		case p.Accepted():
			c.accepted++
		case p.Outcome == "":
			c.inFlight++
		}
		if p.Lot != "" || p.Serial != "" {
			c.implantLines++
		}
	}
	res := &recon.Result{Summary: recon.Summary{Scope: in.Scope}}
	type finding struct{ key, text string }
	var found []finding
	var cases, posted int64
	for _, id := range sortedKeys(carts) {
		c := carts[id]
		if !inDay(c.at) {
			continue
		}
		if c.inFlight > 0 {
			res.Summary.Pending++ // the loader has not answered: the next run's
			continue
		}
		if c.accepted == 0 {
			continue // refused by Fusion: the inventory reconciliation's variance
		}
		posted++
		if _, ok := byCase[id]; ok {
			res.Summary.Matched++
			continue
		}
		res.Summary.Extra++
		found = append(found, finding{id + "/" + NoEncounter, fmt.Sprintf("case %s: case cart posted to Fusion (%d lines, %d with lot or serial, dated %s), no surgical Encounter in Epic carries this case id",
			id, c.accepted, c.implantLines, c.at.Format(time.RFC3339))})
	}
	for _, id := range sortedKeys(byCase) {
		e := byCase[id]
		if !inDay(e.At) {
			continue
		}
		cases++
		if e.Implants == 0 {
			continue
		}
		if _, ok := carts[id]; ok {
			continue // posted, refused (the inventory reconciliation's) or in flight (counted above)
		}
		res.Summary.Missing++
		found = append(found, finding{id + "/" + NoCart, fmt.Sprintf("case %s: %s logs %d implant(s), no case cart with this case id was sent to Fusion", id, e.Encounter, e.Implants)})
	}
	if cases == 0 && posted == 0 && res.Summary.Pending == 0 {
		return nil
	}
	res.Summary.Lines, res.Summary.Posted = cases, posted
	// Counts are whole units: the tolerance's absolute is in them too.
	within := in.Tolerance.Within(money.Amount(cases*100), money.Amount(int64(len(found))*100))
	verdict, note := recon.VerdictVariance, "beyond tolerance ("+in.Tolerance.String()+")"
	if within {
		verdict, note = recon.VerdictPass, "within tolerance ("+in.Tolerance.String()+")"
	}
	res.Rows = append(res.Rows, recon.Row{Tier: recon.TierTotals, Scope: in.Scope, Key: "cases", Hop: "fusion", Unit: recon.UnitLines,
		Source: money.Amount(cases), Target: money.Amount(posted), Variance: money.Amount(posted - cases), Verdict: recon.VerdictPass,
		Explanation: fmt.Sprintf("%d surgical cases in Epic's Encounters, %d case carts accepted by Fusion, dated before %s (the cut); %d carts not answered yet",
			cases, posted, in.Cut.Format(time.RFC3339), res.Summary.Pending)})
	for _, v := range found {
		res.Rows = append(res.Rows, recon.Row{Tier: recon.TierLines, Scope: in.Scope, Key: v.key, Hop: "fusion", Unit: recon.UnitLines,
			Source: 1, Target: 0, Variance: -1, Verdict: verdict, Explanation: v.text + "; " + note})
		if verdict == recon.VerdictVariance {
			res.Summary.Variances++
		}
	}
	res.Summary.Verdict = recon.VerdictPass
	if len(found) > 0 && !within {
		res.Summary.Verdict = recon.VerdictVariance
	}
	return res
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
