package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/streams"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// Expiring is what AUDIT's retention will remove within a window.
type Expiring struct {
	FirstSeq, LastSeq uint64
	Records           int
	Oldest, Newest    time.Time
}

// RecordExpiry finds the AUDIT records that MaxAge removes within window
// and, when there are any, writes one audit event naming them (action
// "retention-expiry": sequence range, count, stored times) before they go,
// so an expiry is itself on the trail and never silent. It returns what
// it found (Records 0: nothing expires within window).
func RecordExpiry(ctx context.Context, js jetstream.JetStream, w *Writer, window time.Duration, now time.Time) (Expiring, error) {
	s, err := js.Stream(ctx, streams.Audit)
	if err != nil {
		return Expiring{}, fmt.Errorf("audit: %w", err)
	}
	maxAge := s.CachedInfo().Config.MaxAge
	var x Expiring
	if maxAge <= 0 {
		return x, nil // kept for ever
	}
	cut := now.Add(window - maxAge) // stored before cut: gone within window
	err = streams.Scan(ctx, js, streams.Audit, "audit.>", time.Time{}, func(m jetstream.Msg) error {
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		if !meta.Timestamp.Before(cut) {
			return errStopScan
		}
		if x.Records == 0 {
			x.FirstSeq, x.Oldest = meta.Sequence.Stream, meta.Timestamp
		}
		x.LastSeq, x.Newest = meta.Sequence.Stream, meta.Timestamp
		x.Records++
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return x, fmt.Errorf("audit: %w", err)
	}
	if x.Records == 0 {
		return x, nil
	}
	err = w.Write(ctx, &sinewv1.AuditEvent{Actor: "retention", Action: "retention-expiry", Hop: streams.HopRetention, Outcome: "expiring",
		Stream: streams.Audit, StreamSeq: x.FirstSeq,
		Detail: fmt.Sprintf("AUDIT records %d..%d (%d, stored %s to %s) reach the retention of %s within %s",
			x.FirstSeq, x.LastSeq, x.Records, x.Oldest.UTC().Format(time.RFC3339), x.Newest.UTC().Format(time.RFC3339), maxAge, window)})
	return x, err
}

var errStopScan = errors.New("stop")
