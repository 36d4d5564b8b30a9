package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/batchstate"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

func sha(c byte) string { return strings.Repeat(string(c), 64) }

// TestRejectedStuckAndUnreconciledBatchesFailTheReport is issue 9 item 2:
// a rejected file, a manifest not mapped yet, a batch stuck at imported
// and one whose reconciliation was dead-lettered each make `recon report`
// exit 1 and are listed by `sinew batches` with their step, until reconciled
// with verdict pass or resolved by an operator (audited).
func TestRejectedStuckAndUnreconciledBatchesFailTheReport(t *testing.T) {
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx := context.Background()
	st, err := batchstate.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC()
	// B1 passes: RECON rows and its state.
	publish(t, js, "resolute-gl", batchResult("B1", false), t0)
	if _, err := st.Update(ctx, "resolute-gl", "B1", func(s *batchstate.State) error {
		s.SHA256, s.Verdict = sha('1'), "pass"
		s.Advance(batchstate.Reconciled, "pass", t0)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	report := func(now time.Time) (string, string, error) {
		var out, errOut bytes.Buffer
		err := reconReport(ctx, js, reportOptions{Flow: "resolute-gl", Now: now}, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	if out, stderr, err := report(t0); err != nil {
		t.Fatalf("only B1: %v\n%s%s", err, out, stderr)
	}

	cases := []struct {
		name    string
		arrive  func(t *testing.T)
		now     time.Time
		id      string // how `batches show` finds it
		problem string // in recon report's stderr
		step    string
	}{
		{name: "rejected file", id: "HB-BAD-1", step: batchstate.FileRejected, problem: "rejected: file hb-bad.txt rejected with 2 findings; first: line 3: debit: not an amount",
			arrive: func(t *testing.T) {
				if err := st.RecordRejectedFile(ctx, "resolute-gl", "HB-BAD-1", sha('a'), "hb-bad.txt", t0,
					[]string{"line 3: debit: not an amount", "line 9: journal x is unbalanced"}, 2, sha('a')+".report.txt"); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "manifest not mapped", id: "hb-new.txt", step: batchstate.Received, problem: "unreconciled: not reconciled yet: step received",
			arrive: func(t *testing.T) {
				m := &sinewv1.BatchManifest{Envelope: &sinewv1.Envelope{Flow: "resolute-gl", ReceivedAt: timestamppb.New(t0)},
					Sha256: sha('b'), FileName: "hb-new.txt", LineCount: 7, ObjectKey: sha('b')}
				b, _ := proto.Marshal(m)
				if _, err := js.Publish(ctx, streams.BatchSubject("resolute-gl"), b); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "stuck at imported", id: "B3", step: batchstate.Imported, now: t0.Add(4 * time.Hour), problem: "stuck: stuck at step imported: no progress since",
			arrive: func(t *testing.T) {
				if _, err := st.Update(ctx, "resolute-gl", "B3", func(s *batchstate.State) error {
					s.SHA256 = sha('c')
					s.Advance(batchstate.Imported, "2 groups imported", t0)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "reconciliation dead-lettered", id: "B4", step: batchstate.Imported, problem: "dead-lettered: reconciliation dead-lettered after 1 attempts",
			arrive: func(t *testing.T) {
				if _, err := st.Update(ctx, "resolute-gl", "B4", func(s *batchstate.State) error {
					s.SHA256 = sha('d')
					s.Advance(batchstate.Imported, "1 group imported", t0)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if err := st.RecordReconFailure(ctx, "resolute-gl", "B4", errors.New("journalBatches: answer over 64 MiB"), true); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.arrive(t)
			now := tc.now
			if now.IsZero() {
				now = t0.Add(time.Minute)
			}
			out, stderr, err := report(now)
			if !errors.Is(err, exitError(1)) || !strings.Contains(stderr, tc.problem) {
				t.Fatalf("report: %v, want exit 1 naming %q\n%s%s", err, tc.problem, out, stderr)
			}
			var list bytes.Buffer
			if err := batches(ctx, js, batchesOptions{Now: now}, nil, &list); err != nil || !strings.Contains(list.String(), tc.step) {
				t.Fatalf("batches: %v\n%s", err, list.String())
			}
			var show bytes.Buffer
			if err := batches(ctx, js, batchesOptions{Now: now}, []string{"show", tc.id}, &show); err != nil || !strings.Contains(show.String(), `"step": "`+tc.step+`"`) {
				t.Fatalf("show %s: %v\n%s", tc.id, err, show.String())
			}
			// Resolved by an operator: audited, and the report passes again.
			var res bytes.Buffer
			if err := batches(ctx, js, batchesOptions{Now: now, Actor: "ops@test", Reason: "checked with finance"}, []string{"resolve", tc.id}, &res); err != nil {
				t.Fatalf("resolve: %v", err)
			}
			if out, stderr, err := report(now); err != nil {
				t.Fatalf("after resolve: %v\n%s%s", err, out, stderr)
			}
		})
	}
	found := 0
	if err := audit.Read(ctx, js, "audit.resolute-gl.batches", func(e audit.Entry) error {
		for _, ev := range e.Events {
			if ev.Action == "resolve-batch" && ev.Actor == "ops@test" && strings.Contains(ev.Detail, "checked with finance") {
				found++
			}
		}
		return nil
	}); err != nil || found != len(cases) {
		t.Errorf("audit records of resolutions: %d, %v; want %d", found, err, len(cases))
	}

	// A resolution holds for the batch as it was: when it moves on, it is judged again.
	if _, err := st.Update(ctx, "resolute-gl", "B3", func(s *batchstate.State) error {
		s.Advance(batchstate.Imported, "replayed", t0)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := report(t0.Add(time.Minute)); !errors.Is(err, exitError(1)) || !strings.Contains(stderr, "batch B3: unreconciled") {
		t.Fatalf("B3 moved on after its resolution: %v\n%s", err, stderr)
	}

	// A rejected file is superseded by the corrected file's batch passing.
	if err := st.RecordRejectedFile(ctx, "resolute-gl", "B1", sha('e'), "b1-first.txt", t0, []string{"line 2: credit: bad"}, 1, "r"); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := report(t0.Add(time.Minute)); strings.Contains(stderr, "b1-first") || strings.Contains(stderr, "batch B1") {
		t.Fatalf("superseded rejection still reported: %v\n%s", err, stderr)
	}
}
