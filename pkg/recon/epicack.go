package recon

import (
	"fmt"
	"sort"

	"github.com/sinewhq/sinew/pkg/money"
)

// AckRecord is one record a Fusion-to-Epic flow should have in Epic: its
// key, the version Sinew sends its current state as ("" when any will
// do), whether it is still recent (not sent yet is pending) and why it is
// not Epic's (Skip, "" when it is).
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
func ReconcileEpicAck(in *AckInput) *Result {
	res := &Result{Summary: Summary{Scope: in.Scope}}
	sum := &res.Summary
	recs := append([]AckRecord(nil), in.Fusion...)
	sort.Slice(recs, func(i, j int) bool { return recs[i].Key < recs[j].Key })
	for _, r := range recs {
		if r.Skip != "" {
			continue
		}
		sum.Lines++
		vs := in.Acked[r.Key]
		switch {
		case len(vs) > 0 && (r.Version == "" || vs[r.Version]):
			sum.Matched++
			continue
		case r.Recent:
			sum.Pending++
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
	case sum.Pending > 0:
		sum.Verdict = VerdictPending
	default:
		sum.Verdict = VerdictPass
	}
	res.Rows = append([]Row{{Tier: TierTotals, Scope: in.Scope, Key: "records", Hop: "epic", Unit: UnitLines,
		Source: money.Amount(sum.Lines), Target: money.Amount(sum.Matched), Variance: money.Amount(sum.Matched - sum.Lines), Verdict: sum.Verdict,
		Explanation: fmt.Sprintf("%d current in Fusion, %d acknowledged by Epic at that version, %d pending", sum.Lines, sum.Matched, sum.Pending)}}, res.Rows...)
	return res
}
