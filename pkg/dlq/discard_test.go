package dlq_test

import (
	"context"
	"errors"
	"testing"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

// TestDiscardKeepsTheLetterRecordsWhyAndStopsReplays: a discard needs a
// reason, is audited, keeps the letter in the DLQ, marks it handled (bulk
// selections pass it by) and refuses a second discard and a replay
// unless forced.
func TestDiscardKeepsTheLetterRecordsWhyAndStopsReplays(t *testing.T) {
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx := context.Background()
	for i := range 2 {
		if _, err := dlq.Write(ctx, js, &sinewv1.DeadLetter{Stream: streams.HL7In, Consumer: streams.TransformHL7, StreamSeq: uint64(i + 1),
			Subject: "hl7.in.W.RDS.O13", Payload: []byte("x"), PayloadAvailable: true, Flow: "willow-inventory", ReasonCode: "SINEW-HL7-101"}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := dlq.Open(ctx, js, audit.NewWriter(js, "test"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Discard(ctx, 1, "op", " "); !errors.Is(err, dlq.ErrNoReason) {
		t.Fatalf("discard without a reason: %v", err)
	}
	if _, err := st.Discard(ctx, 1, "op", "duplicate of seq 2"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Discard(ctx, 1, "op", "again"); !errors.Is(err, dlq.ErrDiscarded) {
		t.Errorf("second discard: %v", err)
	}
	if _, err := st.Replay(ctx, 1, "op", "try", false); !errors.Is(err, dlq.ErrDiscarded) {
		t.Errorf("replay of a discarded letter: %v", err)
	}
	for seq, want := range map[uint64]bool{1: true, 2: false} {
		if h, err := st.Handled(ctx, seq); err != nil || h != want {
			t.Errorf("Handled(%d) = %v %v, want %v", seq, h, err, want)
		}
	}
	e, err := st.Get(ctx, 1)
	if err != nil || e.Discard == nil || e.Discard.Reason != "duplicate of seq 2" || !e.Handled() {
		t.Fatalf("after discard: %+v %v", e, err)
	}
	waiting, err := st.Select(ctx, "", dlq.Selector{})
	if err != nil || len(waiting) != 1 || waiting[0].Seq != 2 {
		t.Errorf("waiting after discard: %d %v", len(waiting), err)
	}
	every, _ := st.Select(ctx, "", dlq.Selector{Replayed: true})
	if len(every) != 2 || every[0].Discard == nil {
		t.Errorf("every letter: %d, the discarded one kept with its record", len(every))
	}
	if _, err := st.Replay(ctx, 1, "op", "it was not a duplicate", true); err != nil {
		t.Errorf("forced replay of a discarded letter: %v", err)
	}
	if _, err := st.Replay(ctx, 2, "op", "crosswalk fixed", false); err != nil {
		t.Fatal(err)
	}
	if h, err := st.Handled(ctx, 2); err != nil || !h {
		t.Errorf("Handled(2) after its replay = %v %v", h, err)
	}
	var actions []string
	_ = audit.Read(ctx, js, "audit.>", func(e audit.Entry) error {
		for _, ev := range e.Events {
			actions = append(actions, ev.Action+" "+ev.Outcome)
		}
		return nil
	})
	if len(actions) != 3 || actions[0] != "discard discarded" || actions[1] != "replay replayed" || actions[2] != "replay replayed" {
		t.Errorf("audit: %q", actions)
	}
}
