package recon

import "testing"

func TestReconcileEpicAck(t *testing.T) {
	acked := map[string]map[string]bool{"S1": {"v1": true}, "S2": {"v1": true}, "W1": {"x": true}}
	cases := []struct {
		name    string
		fusion  []AckRecord
		verdict string
		lines   int64
		matched int64
		rows    int // tier-3 variance rows
	}{
		{"clean day", []AckRecord{{Key: "S1", Version: "v1"}, {Key: "W1"}}, VerdictPass, 2, 2, 0},
		{"newer version not acknowledged", []AckRecord{{Key: "S2", Version: "v2"}}, VerdictVariance, 1, 0, 1},
		{"never acknowledged", []AckRecord{{Key: "S3", Version: "v1"}}, VerdictVariance, 1, 0, 1},
		{"recent change not yet acknowledged is the next run's", []AckRecord{{Key: "S3", Version: "v1", Recent: true}}, VerdictPass, 0, 0, 0},
		{"recent change already acknowledged counts", []AckRecord{{Key: "S1", Version: "v1", Recent: true}}, VerdictPass, 1, 1, 0},
		{"skipped record is not Epic's", []AckRecord{{Key: "P9", Version: "v1", Skip: "unmatched"}}, VerdictPass, 0, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := ReconcileEpicAck(&AckInput{Scope: "2026-12-02", Fusion: c.fusion, Acked: acked})
			s := res.Summary
			if s.Verdict != c.verdict || s.Lines != c.lines || s.Matched != c.matched {
				t.Fatalf("summary %s %d/%d, want %s %d/%d", s.Verdict, s.Lines, s.Matched, c.verdict, c.lines, c.matched)
			}
			n := 0
			for _, r := range res.Rows {
				if r.Tier == TierLines {
					n++
				}
			}
			if n != c.rows || res.Rows[0].Tier != TierTotals {
				t.Fatalf("%d variance rows (first tier %d), want %d", n, res.Rows[0].Tier, c.rows)
			}
		})
	}
}
