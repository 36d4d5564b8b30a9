package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

func TestRecordsThatReachTheRetentionAreNamedOnTheTrailFirst(t *testing.T) {
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx := context.Background()
	w := audit.NewWriter(js, "ingest@test")
	for range 3 {
		if err := w.Write(ctx, &sinewv1.AuditEvent{Flow: "f", Hop: "ingest", Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	if x, err := audit.RecordExpiry(ctx, js, w, 30*24*time.Hour, now); err != nil || x.Records != 0 {
		t.Fatalf("six years ahead: %+v %v", x, err)
	}
	// Seen from just before the retention ends, the three records expire
	// within the window: one record says so.
	x, err := audit.RecordExpiry(ctx, js, w, 30*24*time.Hour, now.Add(6*365*24*time.Hour-24*time.Hour))
	if err != nil || x.Records != 3 || x.FirstSeq != 1 || x.LastSeq != 3 {
		t.Fatalf("expiring %+v %v", x, err)
	}
	var notice string
	_ = audit.Read(ctx, js, "audit.*.retention", func(e audit.Entry) error {
		for _, ev := range e.Events {
			notice = ev.Action + ": " + ev.Detail
		}
		return nil
	})
	if !strings.HasPrefix(notice, "retention-expiry: AUDIT records 1..3 (3,") {
		t.Errorf("notice %q", notice)
	}
}
