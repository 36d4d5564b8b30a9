package formularycheck

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// FormularyFlows are the flows whose item-master commands are the
// formulary: an HL7 flow mapping some message with the item-master shape
// from NDCs (Willow's), found by their settings in flows.yaml.
func FormularyFlows(inv *flows.Inventory) []string {
	var out []string
	for _, f := range inv.Flows {
		if f.HL7 == nil {
			continue
		}
		for _, m := range f.HL7.Messages {
			if m.Shape == hl7flow.ItemMaster && m.Source == "ndc" {
				out = append(out, f.ID)
				break
			}
		}
	}
	return out
}

// Check is the flow's reconciliation (registry.Entry.Check): every item
// master command Sinew published for the formulary flows (FUSION_CMD) and
// every Medication ingest committed (FHIR_IN), compared by Compare. The
// scope is the day; the check covers everything stored up to now, and
// runs once both sides hold something.
func Check(ctx context.Context, f *flows.Flow, env registry.CheckEnv) (*recon.Result, error) {
	var willow, epic []Drug
	for _, id := range FormularyFlows(env.Inventory) {
		err := streams.Scan(ctx, env.JS, streams.FusionCmd, streams.FusionCmdSubject(id, hl7flow.OpItem), time.Time{}, func(m jetstream.Msg) error {
			var it sinewv1.ItemUpsert
			if proto.Unmarshal(m.Data(), &it) != nil {
				return nil
			}
			if d, ok := FromItem(&it); ok {
				willow = append(willow, d)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: formulary of %s: %w", f.ID, id, err)
		}
	}
	var unreadable int64
	err := streams.Scan(ctx, env.JS, streams.FHIRIn, streams.FHIRSubject("Medication"), time.Time{}, func(m jetstream.Msg) error {
		var ev sinewv1.FhirResourceReceived
		if proto.Unmarshal(m.Data(), &ev) != nil {
			unreadable++
			return nil
		}
		d, err := FromEvent(&ev)
		if err != nil {
			unreadable++ // dead-lettered by transform
			return nil
		}
		epic = append(epic, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: Medications: %w", f.ID, err)
	}
	if len(willow) == 0 || len(epic) == 0 {
		// Nothing to compare yet: the first formulary MFN or the first
		// Medication export has not arrived (reported once both have).
		return nil, nil
	}
	return Result(env.Day.UTC().Format(time.DateOnly), willow, epic, env.Tolerance), nil
}

// Result is the reconciliation rows of one comparison: a tier-1 row
// counting the formulary's NDCs against Epic's, a tier-3 row per
// variance, and the summary (lines: the formulary's NDCs; matched: those
// Epic holds alike; mismatched: form or strength drift; missing: not in
// Epic; extra: Epic's NDCs not in the formulary). The tolerance counts
// variances: absolute a number of them, percent of the formulary's NDCs.
func Result(scope string, willow, epic []Drug, tol recon.Tolerance) *recon.Result {
	vs := Compare(willow, epic)
	wl, ep := ndcs(willow), ndcs(epic)
	res := &recon.Result{Summary: recon.Summary{Scope: scope, Lines: int64(len(wl)), Posted: int64(len(ep))}}
	drift := map[string]bool{}
	for _, v := range vs {
		switch v.Kind {
		case NotInEpic:
			res.Summary.Missing++
		case NotInFormulary:
			res.Summary.Extra++
		default:
			drift[v.Code] = true
		}
	}
	res.Summary.Mismatched = int64(len(drift))
	res.Summary.Matched = res.Summary.Lines - res.Summary.Missing - res.Summary.Mismatched
	// Counts are whole units: the tolerance's absolute is in them too.
	within := tol.Within(money.Amount(len(wl)*100), money.Amount(len(vs)*100))
	verdict, note := recon.VerdictVariance, "beyond tolerance ("+tol.String()+")"
	if within {
		verdict, note = recon.VerdictPass, "within tolerance ("+tol.String()+")"
	}
	res.Rows = append(res.Rows, recon.Row{Tier: recon.TierTotals, Scope: scope, Key: "ndcs", Hop: "epic", Unit: recon.UnitLines,
		Source: money.Amount(len(wl)), Target: money.Amount(len(ep)), Variance: money.Amount(len(ep) - len(wl)), Verdict: recon.VerdictPass,
		Explanation: fmt.Sprintf("%d NDCs in the formulary, %d in Epic's Medications", len(wl), len(ep))})
	for _, v := range vs {
		res.Rows = append(res.Rows, recon.Row{Tier: recon.TierLines, Scope: scope, Key: v.Code + "/" + v.Kind, Hop: "epic", Unit: recon.UnitLines,
			Source: 1, Target: 0, Variance: -1, Verdict: verdict, Explanation: v.String() + "; " + note})
		if verdict == recon.VerdictVariance {
			res.Summary.Variances++
		}
	}
	res.Summary.Verdict = recon.VerdictPass
	if len(vs) > 0 && !within {
		res.Summary.Verdict = recon.VerdictVariance
	}
	return res
}

func ndcs(ds []Drug) map[string]bool {
	out := map[string]bool{}
	for _, d := range ds {
		if d.Code != "" {
			out[d.Code] = true
		}
	}
	return out
}
