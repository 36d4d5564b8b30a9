package audit

import (
	"context"
	"testing"
	"time"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

// A record that cannot be stored ends its chain; the next record starts a
// new one, and the trail still verifies (no gap, no fork).
func TestFailedRecordStartsANewChain(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect(t) // no topology yet: AUDIT does not exist
	w := NewWriter(js, "svc@host-1")
	w.timeout = 300 * time.Millisecond
	ctx := context.Background()
	ev := func() *sinewv1.AuditEvent {
		return &sinewv1.AuditEvent{Actor: "svc", Flow: "f", Hop: "h", Outcome: "ok"}
	}
	if err := w.Write(ctx, ev()); err == nil {
		t.Fatal("a write without an AUDIT stream succeeded")
	}
	if w.ID() != "svc@host-1~1" {
		t.Fatalf("chain after a failure: %s", w.ID())
	}
	if err := streams.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := w.Write(ctx, ev()); err != nil {
			t.Fatal(err)
		}
	}
	v := NewVerifier()
	if err := Read(ctx, js, "", func(e Entry) error { v.Add(e.Record, e.StreamSeq); return nil }); err != nil {
		t.Fatal(err)
	}
	if !v.OK() || v.Records != 3 || v.Writers() != 1 {
		t.Errorf("records %d writers %d problems %v", v.Records, v.Writers(), v.Problems)
	}
}
