package bus_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// TestPublishBatchStoresOnceAndAnswersAResendAsDuplicate: a batch is
// stored in order as one atomic batch; the same batch resent (after a
// restart) plus new messages is refused as a whole and then stored
// message by message: the resends answered Duplicate, the new ones stored.
func TestPublishBatchStoresOnceAndAnswersAResendAsDuplicate(t *testing.T) {
	nc, js := natstest.StartSyncAlways(t).Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := streams.New(streams.Options{DuplicateWindow: time.Minute}).Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	b, err := bus.New(nc, bus.Config{}, bus.Options{Service: "test", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	encode := func(from, to int) []*nats.Msg {
		var ms []*nats.Msg
		for i := from; i < to; i++ {
			id := "fhir:Practitioner/p" + strconv.Itoa(i) + "/_history/1"
			m, err := b.Encode(ctx, streams.FHIRSubject("Practitioner"), id, &sinewv1.FhirResourceReceived{ResourceType: "Practitioner", ResourceId: "p" + strconv.Itoa(i)})
			if err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
		return ms
	}
	first := encode(0, 10)
	acks, err := b.PublishBatch(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range acks {
		if a.Duplicate || a.Sequence != uint64(i+1) {
			t.Fatalf("ack %d: %+v", i, a)
		}
	}
	again := encode(5, 15)
	acks, err = b.PublishBatch(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range acks {
		if want := i < 5; a.Duplicate != want {
			t.Errorf("resend %d: duplicate %v, want %v", i+5, a.Duplicate, want)
		}
	}
	s, _ := js.Stream(ctx, streams.FHIRIn)
	info, _ := s.Info(ctx)
	if info.State.Msgs != 15 {
		t.Errorf("%d messages stored, want 15", info.State.Msgs)
	}
}
