package triage_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/triage"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

func TestItemGoesOpenAcknowledgedResolvedAndEveryStepIsAudited(t *testing.T) {
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx := context.Background()
	st, err := triage.Open(ctx, js, triage.Config{Audit: audit.NewWriter(js, "test@h")})
	if err != nil {
		t.Fatal(err)
	}
	row := &sinewv1.ReconRow{Envelope: &sinewv1.Envelope{Flow: "resolute-gl"}, Tier: 3, Scope: "HB-1", Key: "journal 2 line 4",
		SourceValue: &sinewv1.Quantity{Value: "100.00", Uom: "USD"}, TargetValue: &sinewv1.Quantity{Value: "90.00", Uom: "USD"},
		Variance: &sinewv1.Quantity{Value: "10.00", Uom: "USD"}, Verdict: "variance", Explanation: "Fusion: account combination invalid"}
	it, ok := triage.FromRecon(row)
	if !ok || it.Reason != reason.ReconVariance {
		t.Fatalf("FromRecon: %v %+v", ok, it)
	}
	got, opened, err := st.Raise(ctx, "reconciler", it)
	if err != nil || !opened || got.State != triage.StateOpen {
		t.Fatalf("raise: %v %v %+v", err, opened, got)
	}
	// The same variance again opens nothing new.
	again, opened, err := st.Raise(ctx, "reconciler", it)
	if err != nil || opened || again.ID != got.ID {
		t.Fatalf("second raise: %v %v %s", err, opened, again.ID)
	}
	if b, _ := st.Blocking(ctx, "resolute-gl"); len(b) != 1 {
		t.Fatalf("blocking %d, want 1", len(b))
	}
	if _, err := st.Assign(ctx, "lead", got.ID, "ana", got.Due); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Resolve(ctx, "ana", got.ID, " "); !errors.Is(err, triage.ErrNoNote) {
		t.Fatalf("resolve without note: %v", err)
	}
	res, err := st.Resolve(ctx, "ana", got.ID, "COA crosswalk v12 maps 6100; journal re-imported")
	if err != nil || res.State != triage.StateResolved || len(res.History) != 3 {
		t.Fatalf("resolve: %v %+v", err, res)
	}
	if _, err := st.Assign(ctx, "lead", got.ID, "bob", got.Due); !errors.Is(err, triage.ErrResolved) {
		t.Fatalf("assign after resolve: %v", err)
	}
	if b, _ := st.Blocking(ctx, "resolute-gl"); len(b) != 0 {
		t.Fatalf("blocking %d after resolve", len(b))
	}
	var actions []string
	_ = audit.Read(ctx, js, "audit.*.triage", func(e audit.Entry) error {
		for _, ev := range e.Events {
			actions = append(actions, ev.Actor+":"+ev.Action)
		}
		return nil
	})
	if want := "reconciler:triage-open lead:triage-assign ana:triage-resolve"; strings.Join(actions, " ") != want {
		t.Errorf("audited %q, want %q", strings.Join(actions, " "), want)
	}
	// A store without an audit writer reads but does not change.
	ro, _ := triage.Open(ctx, js, triage.Config{})
	if _, _, err := ro.Raise(ctx, "x", triage.Item{Kind: triage.KindAmbiguous, Flow: "f", Source: "s"}); !errors.Is(err, triage.ErrReadOnly) {
		t.Errorf("read-only raise: %v", err)
	}
}

func TestOnlyDeadLettersThatNeedAPersonOpenItems(t *testing.T) {
	for _, c := range []struct {
		code string
		want bool
	}{{string(reason.HL7RequiredFieldMissing), true}, {"", true}, {transientCode(t), false}} {
		_, ok := triage.FromDeadLetter(&sinewv1.DeadLetter{Flow: "willow-inventory", ReasonCode: c.code, Stream: "HL7_IN", StreamSeq: 4}, 9)
		if ok != c.want {
			t.Errorf("code %q: opens %v, want %v", c.code, ok, c.want)
		}
	}
}

func transientCode(t *testing.T) string {
	for _, e := range reason.All() {
		if !e.Permanent {
			return string(e.Code)
		}
	}
	t.Skip("no transient reason in the catalogue")
	return ""
}

func TestOpenerRaisesFromReconTriageRowsAndDeadLettersOnce(t *testing.T) {
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx := context.Background()
	st, _ := triage.Open(ctx, js, triage.Config{Audit: audit.NewWriter(js, "console@test")})
	row := &sinewv1.ReconRow{Envelope: &sinewv1.Envelope{Flow: "willow-inventory"}, Tier: 1, Scope: "2026-11-26", Verdict: "variance", Explanation: "3 EA short"}
	b, _ := proto.Marshal(row)
	if _, err := js.Publish(ctx, streams.ReconSubject("willow-inventory", "triage"), b); err != nil {
		t.Fatal(err)
	}
	if _, err := dlq.Write(ctx, js, &sinewv1.DeadLetter{Stream: "HL7_IN", Consumer: "transform-hl7", StreamSeq: 3, Flow: "willow-inventory",
		ReasonCode: string(reason.HL7RequiredFieldMissing), Reason: "PID-3 missing"}); err != nil {
		t.Fatal(err)
	}
	o := triage.NewOpener(js, st, zerolog.Nop(), 0)
	for range 2 { // a second pass (a restart) opens nothing new
		for _, src := range [][2]string{{streams.Recon, "recon.*.triage"}, {streams.DLQ, "dlq.>"}} {
			if _, err := o.Once(ctx, src[0], src[1], 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	items, _ := st.List(ctx, triage.Filter{})
	if len(items) != 2 {
		t.Fatalf("%d items, want 2: %+v", len(items), items)
	}
	kinds := items[0].Kind + " " + items[1].Kind
	if !strings.Contains(kinds, triage.KindVariance) || !strings.Contains(kinds, triage.KindDeadLetter) {
		t.Errorf("kinds %s", kinds)
	}
}

func TestMatchDeadLettersAreAmbiguousMatches(t *testing.T) {
	cases := []struct {
		code reason.Code
		kind string
	}{
		{reason.WorkerMatchAmbiguous, triage.KindAmbiguous},
		{reason.PaymentUnmatched, triage.KindAmbiguous},
		{reason.PaymentAmbiguous, triage.KindAmbiguous},
		{reason.HL7RequiredFieldMissing, triage.KindDeadLetter},
	}
	for _, c := range cases {
		it, ok := triage.FromDeadLetter(&sinewv1.DeadLetter{Flow: "f", ReasonCode: string(c.code)}, 7)
		if !ok || it.Kind != c.kind || it.Reason != c.code {
			t.Errorf("%s: item %v %s %s, want %s", c.code, ok, it.Kind, it.Reason, c.kind)
		}
	}
}
