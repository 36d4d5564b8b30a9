package flowstate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/flowstate"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

const inventory = `flows:
  - {id: ward-a, pattern: realtime-hl7, state: staged, tolerances: {absolute: "0", percent: "0"},
     hl7: {sending_applications: [WARDA], messages: {"ADT^*": skip}}}
  - {id: ward-b, pattern: realtime-hl7, state: active, tolerances: {absolute: "0", percent: "0"},
     hl7: {sending_applications: [WARDB], messages: {"ADT^*": skip}}}
`

// fetchOne reports whether the consumer hands out a message within wait.
func fetchOne(t *testing.T, js jetstream.JetStream, name string, wait time.Duration) bool {
	t.Helper()
	stream := streams.HL7In
	if strings.HasPrefix(name, streams.LoaderFusion) {
		stream = streams.FusionCmd
	}
	c, err := js.Consumer(context.Background(), stream, name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Fetch(1, jetstream.FetchMaxWait(wait))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range b.Messages() {
		n++
		_ = m.Nak()
	}
	return n > 0
}

// TestStagedFlowHoldsItsInputAcrossEnsureUntilActivated: a flow staged in
// flows.yaml is seeded staged, its consumer hands out nothing while its
// input is kept, the other flow's runs; re-provisioning the topology keeps
// the hold; activating releases it; a change needs a reason.
func TestStagedFlowHoldsItsInputAcrossEnsureUntilActivated(t *testing.T) {
	ctx := context.Background()
	inv, err := flows.Parse(strings.NewReader(inventory))
	if err != nil {
		t.Fatal(err)
	}
	opts := streams.DefaultOptions()
	opts = inv.Topology(opts)
	_, _, js := natstest.StartWithTopology(t, opts)
	st, err := flowstate.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	seeded, err := st.Sync(ctx, inv)
	if err != nil || strings.Join(seeded, ",") != "ward-a,ward-b" {
		t.Fatalf("seeded %v, %v", seeded, err)
	}
	// The staged flow's HL7 input waits, and so does a command already on
	// FUSION_CMD for it; the active flow's are delivered.
	a, la := streams.TransformHL7Flow("ward-a"), streams.LoaderFusionFlow("ward-a")
	for _, in := range []struct {
		subject  func(flow string) string
		consumer func(flow string) string
	}{
		{func(f string) string { return streams.HL7FlowSubject(f, "FAC", "ADT", "A01") }, streams.TransformHL7Flow},
		{func(f string) string { return streams.FusionCmdSubject(f, "inventory") }, streams.LoaderFusionFlow},
	} {
		for _, f := range []string{"ward-a", "ward-b"} {
			if _, err := js.Publish(ctx, in.subject(f), []byte("x"), jetstream.WithMsgID(in.subject(f))); err != nil {
				t.Fatal(err)
			}
		}
		if fetchOne(t, js, in.consumer("ward-a"), 500*time.Millisecond) {
			t.Fatalf("staged flow's consumer %s delivered", in.consumer("ward-a"))
		}
		if !fetchOne(t, js, in.consumer("ward-b"), 2*time.Second) {
			t.Fatalf("active flow's consumer %s delivered nothing", in.consumer("ward-b"))
		}
	}
	// A second sinew up (or `sinew streams ensure`) keeps the hold.
	if err := streams.New(opts).Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Sync(ctx, inv); err != nil {
		t.Fatal(err)
	}
	if fetchOne(t, js, a, 500*time.Millisecond) {
		t.Fatal("staged flow's consumer delivered after Ensure")
	}
	fa, _ := inv.Get("ward-a")
	if err := st.Set(ctx, fa, flows.Active, "tester", ""); !errors.Is(err, flowstate.ErrNoReason) {
		t.Fatalf("no reason: %v", err)
	}
	if err := st.Set(ctx, fa, flows.Active, "tester", "cutover"); err != nil {
		t.Fatal(err)
	}
	if !fetchOne(t, js, a, 2*time.Second) {
		t.Fatal("activated flow's consumer delivered nothing")
	}
	if !fetchOne(t, js, la, 2*time.Second) {
		t.Fatal("activated flow's loader consumer delivered nothing")
	}
	r, ok, err := st.Get(ctx, "ward-a")
	if err != nil || !ok || r.State != flows.Active || r.By != "tester" || r.Reason != "cutover" {
		t.Fatalf("record %+v %v %v", r, ok, err)
	}
	// flows.yaml's state no longer counts once flow_state has one.
	if _, err := st.Sync(ctx, inv); err != nil {
		t.Fatal(err)
	}
	if !fetchOne(t, js, a, 2*time.Second) {
		t.Fatal("Sync re-staged an activated flow")
	}
}
