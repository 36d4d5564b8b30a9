package bus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
	"google.golang.org/protobuf/proto"
)

func TestSubjectMatches(t *testing.T) {
	for _, tt := range []struct {
		pattern, subject string
		want             bool
	}{
		{"hl7.in.*.*.*", "hl7.in.FAC.RDS.O13", true},
		{"hl7.in.*.*.*", "hl7.in.FAC.RDS.O13.willow-inventory", false},
		{"hl7.in.*.*.*.willow-inventory", "hl7.in.FAC.RDS.O13.willow-inventory", true},
		{"hl7.in.*.*.*.willow-inventory", "hl7.in.FAC.RDS.O13.optime-materials", false},
		{"batch.in.>", "batch.in.resolute-gl", true},
		{"batch.in.>", "batch.in", false},
		{"fusion.cmd.*.import", "fusion.cmd.resolute-gl.import", true},
		{"fusion.cmd.*.import", "fusion.cmd.resolute-gl.inventory", false},
		{"a.b", "a.b.c", false},
		{"a.b.c", "a.b", false},
	} {
		if got := subjectMatches(strings.Split(tt.pattern, "."), tt.subject); got != tt.want {
			t.Errorf("%s ~ %s = %v, want %v", tt.pattern, tt.subject, got, tt.want)
		}
	}
}

// TestRoutesDecodeOnceAndRefuseUnknownSubjects: a typed route gets the
// decoded event and its envelope; an unknown subject is permanent.
func TestRoutesDecodeOnceAndRefuseUnknownSubjects(t *testing.T) {
	data, _ := proto.Marshal(&sinewv1.BatchManifest{Envelope: &sinewv1.Envelope{Flow: "f-1"}, FileName: "x.txt"})
	var got string
	h := Routes(
		On("batch.in.*", func(_ context.Context, d *Delivery, m *sinewv1.BatchManifest) error {
			got = m.GetFileName() + " " + d.Envelope.GetFlow()
			return nil
		}),
	)
	if err := h(context.Background(), &Delivery{Subject: "batch.in.f-1", Data: data}); err != nil || got != "x.txt f-1" {
		t.Fatalf("routed: %v, %q", err, got)
	}
	var pe *PermanentError
	if err := h(context.Background(), &Delivery{Subject: "batch.other", Data: data}); !errors.As(err, &pe) {
		t.Fatalf("unknown subject: %v, want permanent", err)
	}
	if err := h(context.Background(), &Delivery{Subject: "batch.in.f-1", Data: []byte{0xff}}); !errors.As(err, &pe) {
		t.Fatalf("undecodable: %v, want permanent", err)
	}
}

// TestRunLoopsMarksReadyWhenAllAreAndJoinsThem: started only once every
// loop is ready; the first error is returned after all have stopped.
func TestRunLoopsMarksReadyWhenAllAreAndJoinsThem(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var started Started
	gate := make(chan struct{})
	stopped := make(chan struct{}, 2)
	boom := errors.New("boom")
	done := make(chan error, 1)
	go func() {
		done <- RunLoops(ctx, &started,
			func(ctx context.Context, ready func()) error {
				ready()
				<-ctx.Done()
				stopped <- struct{}{}
				return nil
			},
			func(ctx context.Context, ready func()) error {
				<-gate
				ready()
				<-ctx.Done()
				stopped <- struct{}{}
				return boom
			})
	}()
	time.Sleep(50 * time.Millisecond)
	if started.ok.Load() {
		t.Fatal("started before every loop was ready")
	}
	close(gate)
	deadline := time.Now().Add(2 * time.Second)
	for !started.ok.Load() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !started.ok.Load() {
		t.Fatal("not started once every loop was ready")
	}
	cancel()
	if err := <-done; !errors.Is(err, boom) || len(stopped) != 2 {
		t.Fatalf("RunLoops = %v with %d loops stopped", err, len(stopped))
	}
}
