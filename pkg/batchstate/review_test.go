package batchstate_test

import (
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/batchstate"
)

func TestReview(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(step, detail string, ago time.Duration) *batchstate.State {
		s := &batchstate.State{Flow: "resolute-gl", BatchID: "B", SHA256: "aa", Updated: now.Add(-ago)}
		s.Advance(step, detail, now.Add(-ago))
		return s
	}
	passed := at(batchstate.Reconciled, "pass", time.Hour)
	passed.Verdict = "pass"
	rejected := at(batchstate.FileRejected, "2 findings", time.Hour)
	rejected.ByFile, rejected.SHA256, rejected.FileName, rejected.FindingsTotal = true, "bb", "f.txt", 2
	dead := at(batchstate.Imported, "imported", time.Minute)
	dead.Recon = &batchstate.ReconAttempts{Attempts: 3, LastError: "boom", DeadLettered: true}
	resolved := at(batchstate.Imported, "imported", 5*time.Hour)
	resolved.Resolved = &batchstate.Resolution{By: "ops", Reason: "r", Step: batchstate.Imported, Detail: "imported"}
	moved := at(batchstate.Imported, "imported again", 5*time.Hour)
	moved.Resolved = &batchstate.Resolution{By: "ops", Reason: "r", Step: batchstate.Imported, Detail: "imported"}
	tests := []struct {
		name   string
		states []*batchstate.State
		want   string // the first problem's kind; "" none
	}{
		{"reconciled pass", []*batchstate.State{passed}, ""},
		{"reconciled with a variance is RECON's to judge", []*batchstate.State{func() *batchstate.State {
			s := at(batchstate.Reconciled, "variance", time.Hour)
			s.Verdict = "variance"
			return s
		}()}, ""},
		{"rejected file", []*batchstate.State{rejected}, batchstate.ProblemRejected},
		{"rejected file superseded by its batch id passing", []*batchstate.State{rejected, passed}, ""},
		{"failed", []*batchstate.State{at(batchstate.Failed, "load ERROR", time.Minute)}, batchstate.ProblemFailed},
		{"dead-lettered", []*batchstate.State{dead}, batchstate.ProblemDeadLettered},
		{"in flight", []*batchstate.State{at(batchstate.Submitted, "load request 1", time.Minute)}, batchstate.ProblemPending},
		{"stuck", []*batchstate.State{at(batchstate.Submitted, "load request 1", 4*time.Hour)}, batchstate.ProblemStuck},
		{"resolved as it stands", []*batchstate.State{resolved}, ""},
		{"moved on after its resolution", []*batchstate.State{moved}, batchstate.ProblemStuck},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := batchstate.Review(tc.states, batchstate.ReviewOptions{Now: now})
			got := ""
			if len(p) > 0 {
				got = p[0].Kind
			}
			if got != tc.want {
				t.Errorf("problem %q (%+v), want %q", got, p, tc.want)
			}
		})
	}
}
