package transform_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/flowstate"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/transform"
)

// TestFHIRInvalidDeadLetteredAndStagedFlowsWait: on a real NATS with the
// topology of flows.yaml, a resource ingest could not read
// (fhir.in.invalid) is dead-lettered with its original bytes and the
// reason code SINEW-FHIR-001, the error naming the problem; a resource of
// a staged FHIR flow waits on the flow's own paused consumer.
func TestFHIRInvalidDeadLetteredAndStagedFlowsWait(t *testing.T) {
	inv, err := flows.Load("../../flows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// optime-encounters as a site holds it before cutover: staged.
	staged, ok := inv.Get("optime-encounters")
	if !ok {
		t.Fatal("flows.yaml has no optime-encounters")
	}
	staged.State = flows.Staged
	opts := inv.Topology(streams.DefaultOptions())
	_, nc, js := natstest.StartWithTopology(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fs, err := flowstate.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Sync(ctx, inv); err != nil {
		t.Fatal(err)
	}
	newBus := func(name string) *bus.Bus {
		b, err := bus.New(nc, bus.Config{}, bus.Options{Service: name, Logger: zerolog.Nop(), AuditSecret: []byte("test-secret")})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cfg := transform.DefaultConfig()
	cfg.Topology = opts
	cfg.FlowsFile = "../../flows.yaml"
	cfg.Crosswalk, cfg.Chart = "", ""
	tr, err := transform.New(cfg, newBus("transform"))
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, tr)
	ingest := newBus("ingest")

	// As ingest keeps an unreadable export line (services/ingest reject).
	const bad = `{"resourceType":"Practitioner","id":"trunc`
	invalid := &sinewv1.FhirResourceReceived{
		Envelope: &sinewv1.Envelope{EventId: bus.EventID("fhir:invalid#1"), SourceSystem: "epic", IdempotencyKey: "fhir:invalid#1",
			BusinessKeys: sinewv1.Keys(map[string]string{"error": "line 3: malformed JSON (structure)"})},
		Json: []byte(bad), Channel: "bulk-export",
	}
	if _, err := ingest.Publish(ctx, streams.FHIRInvalidSubject, "fhir:invalid#1", invalid); err != nil {
		t.Fatal(err)
	}
	// An Encounter of the staged optime-encounters.
	enc := &sinewv1.FhirResourceReceived{
		Envelope:     &sinewv1.Envelope{EventId: bus.EventID("fhir:Encounter/e1/_history/1"), Flow: "optime-encounters", IdempotencyKey: "fhir:Encounter/e1/_history/1"},
		ResourceType: "Encounter", ResourceId: "e1", VersionId: "1",
		Json: []byte(`{"resourceType":"Encounter","id":"e1","meta":{"versionId":"1"}}`), Channel: "search",
	}
	if _, err := ingest.Publish(ctx, streams.FHIRSubject("Encounter"), "fhir:Encounter/e1/_history/1", enc); err != nil {
		t.Fatal(err)
	}
	waitCount(t, js, streams.DLQ, 1)
	store, err := dlq.Open(ctx, js, ingest.Audit())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := store.List(ctx, "", func(e *dlq.Entry) error {
		n++
		if e.Letter.ReasonCode != string(reason.FHIRResourceUnreadable) || !strings.Contains(e.Letter.Reason, "line 3: malformed JSON") {
			t.Errorf("dead letter %s: %s", e.Letter.ReasonCode, e.Letter.Reason)
		}
		if e.Letter.Subject != streams.FHIRInvalidSubject || e.Letter.Consumer != streams.TransformFHIR {
			t.Errorf("dead letter of %s on %s", e.Letter.Subject, e.Letter.Consumer)
		}
		orig, err := store.Original(ctx, e.Letter)
		if err != nil || string(orig) != bad {
			t.Errorf("original %q, %v", orig, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}
	c, err := js.Consumer(ctx, streams.FHIRIn, streams.TransformFHIRFlow("optime-encounters"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Paused || info.NumPending != 1 {
		t.Errorf("staged flow's consumer: paused %v, pending %d (want paused, 1 waiting)", info.Paused, info.NumPending)
	}
}
