package dlq

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

func TestSubjectMatches(t *testing.T) {
	tests := []struct {
		filter, subject string
		want            bool
	}{
		{"hl7.in.MAIN.RDS.O13", "hl7.in.MAIN.RDS.O13", true},
		{"hl7.in.*.RDS.>", "hl7.in.MAIN.RDS.O13", true},
		{"hl7.in.*.RDS.>", "hl7.in.MAIN.DFT.P03", false},
		{"hl7.in.>", "hl7.in.MAIN.RDS.O13", true},
		{"hl7.in.>", "hl7.in", false},
		{"hl7.*", "hl7.in.MAIN", false},
		{"hl7.in.MAIN", "hl7.in.MAIN.RDS", false},
		{">", "a", true},
		{"fusion.cmd.*.import", "fusion.cmd.resolute-gl.import", true},
	}
	for _, tt := range tests {
		if got := SubjectMatches(tt.filter, tt.subject); got != tt.want {
			t.Errorf("SubjectMatches(%q, %q) = %v", tt.filter, tt.subject, got)
		}
	}
}

func TestSelectorMatch(t *testing.T) {
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	e := &Entry{Seq: 7, Letter: &sinewv1.DeadLetter{Flow: "willow-inventory", Kind: KindPermanent, Subject: "hl7.in.MAIN.RDS.O13",
		Reason: "hl7flow: RXD-2: no item (code 103)", DeadAt: timestamppb.New(at)}}
	replayed := &Entry{Seq: 8, Letter: e.Letter, Replay: &ReplayInfo{Count: 1}}
	tests := []struct {
		name string
		sel  Selector
		e    *Entry
		want bool
	}{
		{"empty", Selector{}, e, true},
		{"flow", Selector{Flow: "willow-inventory"}, e, true},
		{"other flow", Selector{Flow: "resolute-gl"}, e, false},
		{"kind", Selector{Kind: KindExhausted}, e, false},
		{"reason code, any case", Selector{Reason: "CODE 103"}, e, true},
		{"reason absent", Selector{Reason: "EF04"}, e, false},
		{"subject", Selector{Subject: "hl7.in.*.RDS.*"}, e, true},
		{"since, inclusive", Selector{Since: at}, e, true},
		{"since later", Selector{Since: at.Add(time.Second)}, e, false},
		{"until, exclusive", Selector{Until: at}, e, false},
		{"until later", Selector{Until: at.Add(time.Second)}, e, true},
		{"replayed left out", Selector{}, replayed, false},
		{"replayed included", Selector{Replayed: true}, replayed, true},
	}
	for _, tt := range tests {
		if got := tt.sel.Match(tt.e); got != tt.want {
			t.Errorf("%s: Match = %v", tt.name, got)
		}
	}
}

func TestOriginalAndEvent(t *testing.T) {
	ctx := context.Background()
	_, _, js := natstest.StartWithTopology(t, streams.Options{DuplicateWindow: time.Second})
	st, err := Open(ctx, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte("MSH|^~\\&|WILLOW|MAIN\rPID|1\r")
	// A message too large for one JetStream message: its receipt names
	// the object that holds it.
	bodies, err := js.ObjectStore(ctx, streams.ObjHL7Bodies)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bodies.PutBytes(ctx, "sha256-big", raw); err != nil {
		t.Fatal(err)
	}
	big, _ := proto.Marshal(&sinewv1.Hl7Received{Envelope: &sinewv1.Envelope{Flow: "willow-inventory"}, BodyObject: "sha256-big", ControlId: "C2"})
	gone, _ := proto.Marshal(&sinewv1.Hl7Received{Envelope: &sinewv1.Envelope{Flow: "willow-inventory"}, BodyObject: "sha256-gone", ControlId: "C3"})
	hl7, _ := proto.Marshal(&sinewv1.Hl7Received{Envelope: &sinewv1.Envelope{Flow: "willow-inventory"}, Raw: raw, ControlId: "C1"})
	fhir, _ := proto.Marshal(&sinewv1.FhirResourceReceived{Envelope: &sinewv1.Envelope{Flow: "worker-sync"}, Json: []byte(`{"resourceType":"Practitioner"}`)})
	cmd, _ := proto.Marshal(&sinewv1.ItemUpsert{Envelope: &sinewv1.Envelope{Flow: "willow-inventory", EventId: "e9"}})
	tests := []struct {
		name      string
		d         *sinewv1.DeadLetter
		original  string
		wantEvent string // the event's flow
		err       error
	}{
		{"hl7", &sinewv1.DeadLetter{Stream: streams.HL7In, Payload: hl7, PayloadAvailable: true}, string(raw), "willow-inventory", nil},
		{"hl7 in the object store", &sinewv1.DeadLetter{Stream: streams.HL7In, Payload: big, PayloadAvailable: true}, string(raw), "willow-inventory", nil},
		{"hl7 object missing", &sinewv1.DeadLetter{Stream: streams.HL7In, Payload: gone, PayloadAvailable: true}, "", "willow-inventory", streams.ErrBodyMissing},
		{"fhir", &sinewv1.DeadLetter{Stream: streams.FHIRIn, Payload: fhir, PayloadAvailable: true}, `{"resourceType":"Practitioner"}`, "worker-sync", nil},
		{"command", &sinewv1.DeadLetter{Stream: streams.FusionCmd, Payload: cmd, PayloadAvailable: true}, string(cmd), "willow-inventory", nil},
		{"lost", &sinewv1.DeadLetter{Stream: streams.HL7In}, "", "", ErrNoPayload},
		{"not an event", &sinewv1.DeadLetter{Stream: streams.EpicCmd, Payload: []byte("MFN^M02 worker 4711"), PayloadAvailable: true}, "MFN^M02 worker 4711", "", ErrNotAnEvent},
	}
	for _, tt := range tests {
		got, err := st.Original(ctx, tt.d)
		if tt.err == ErrNoPayload || tt.err == streams.ErrBodyMissing {
			if !errors.Is(err, tt.err) {
				t.Errorf("%s: Original err %v", tt.name, err)
			}
		} else if err != nil || string(got) != tt.original {
			t.Errorf("%s: Original = %q, %v", tt.name, got, err)
		}
		ev, err := Event(tt.d)
		if tt.err != nil && tt.err != streams.ErrBodyMissing { // the receipt itself is there
			if !errors.Is(err, tt.err) {
				t.Errorf("%s: Event err %v, want %v", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: Event: %v", tt.name, err)
		}
		flow := ""
		switch ev := ev.(type) {
		case *sinewv1.Hl7Received:
			flow = ev.GetEnvelope().GetFlow()
			if ev.Raw != nil || ev.ControlId == "" {
				t.Errorf("%s: Event kept the raw bytes or lost the receipt: %v", tt.name, ev)
			}
		case *sinewv1.FhirResourceReceived:
			flow = ev.GetEnvelope().GetFlow()
			if ev.Json != nil {
				t.Errorf("%s: Event kept the JSON", tt.name)
			}
		case *sinewv1.Envelope:
			flow = ev.GetFlow()
		}
		if flow != tt.wantEvent {
			t.Errorf("%s: event flow %q, want %q", tt.name, flow, tt.wantEvent)
		}
	}
}
