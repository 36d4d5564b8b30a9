package recon

import (
	"fmt"
	"sort"

	"github.com/sinewhq/sinew/pkg/money"
)

// AckRecord is one record a Fusion-to-Epic flow should have in Epic: its
// key, the version Sinew sends its current state as ("" when any will
// do), whether it is still recent (changed within the read lag: if Epic
// has not acknowledged it yet, it is the next run's) and why it is not
// Epic's (Skip, "" when it is).
type AckRecord struct {
	Key, Version string
	Recent       bool
	Skip         string
}

// AckInput is one flow's reconciliation of Fusion's current records
// against Epic's acknowledgements (the loader's accepted results).
type AckInput struct {
	Scope  string
	Fusion []AckRecord
	Acked  map[string]map[string]bool // key → versions Epic acknowledged
}

// ReconcileEpicAck is a tier-1 count (records Fusion holds, records Epic
// acknowledged at their current version) and a tier-3 row per record
// Epic lacks or holds at an older version. Sinew cannot read Epic's
// master itself; Epic's ACK of the record's message is what it has.
//
// A record changed within the read lag and not acknowledged yet is after
// this run's cut, as an inventory flow's late transactions are: it is
// counted apart and checked by the next run (by then it is either
// acknowledged or a variance). Otherwise a flow that changes all day would
// never show a verdict: some change is always on its way to Epic.
func ReconcileEpicAck(in *AckInput) *Result {
	res := &Result{Summary: Summary{Scope: in.Scope}}
	sum := &res.Summary
	recs := append([]AckRecord(nil), in.Fusion...)
	sort.Slice(recs, func(i, j int) bool { return recs[i].Key < recs[j].Key })
	var afterCut int64
	for _, r := range recs {
		if r.Skip != "" {
			continue
		}
		vs := in.Acked[r.Key]
		acked := len(vs) > 0 && (r.Version == "" || vs[r.Version])
		if !acked && r.Recent {
			afterCut++
			continue
		}
		sum.Lines++
		if acked {
			sum.Matched++
			continue
		}
		why := "Fusion holds it; Epic acknowledged no version of it"
		if len(vs) > 0 {
			why = "Epic acknowledged an older version than Fusion's current one"
			sum.Mismatched++
		} else {
			sum.Missing++
		}
		res.Rows = append(res.Rows, Row{Tier: TierLines, Scope: in.Scope, Key: r.Key, Hop: "epic", Unit: UnitLines,
			Source: 1, Target: 0, Variance: -1, Verdict: VerdictVariance, Explanation: why})
		sum.Variances++
	}
	switch {
	case sum.Variances > 0:
		sum.Verdict = VerdictVariance
	default:
		sum.Verdict = VerdictPass
	}
	res.Rows = append([]Row{{Tier: TierTotals, Scope: in.Scope, Key: "records", Hop: "epic", Unit: UnitLines,
		Source: money.Amount(sum.Lines), Target: money.Amount(sum.Matched), Variance: money.Amount(sum.Matched - sum.Lines), Verdict: sum.Verdict,
		Explanation: fmt.Sprintf("%d current in Fusion, %d acknowledged by Epic at that version; %d changed within the read lag and not acknowledged yet (the next run's)", sum.Lines, sum.Matched, afterCut)}}, res.Rows...)
	return res
}
