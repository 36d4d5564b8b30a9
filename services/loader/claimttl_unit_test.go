package loader

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/schedule"
)

// Which commands are looked up in Fusion before they are claimed, with
// claims that expire after two hours and ten minutes of skew.
func TestMayOutliveClaim(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	header := func(k, v string) nats.Header { h := nats.Header{}; h.Set(k, v); return h }
	for _, tc := range []struct {
		name   string
		ttl    time.Duration
		header nats.Header
		dated  time.Time
		want   bool
	}{
		{"fresh", 2 * time.Hour, nil, now.Add(-time.Minute), false},
		{"inside the TTL less the skew", 2 * time.Hour, nil, now.Add(-109 * time.Minute), false},
		{"older than the TTL less the skew", 2 * time.Hour, nil, now.Add(-111 * time.Minute), true},
		{"a resend days later", 2 * time.Hour, nil, now.AddDate(0, 0, -3), true},
		{"within the skew ahead", 2 * time.Hour, nil, now.Add(9 * time.Minute), false},
		{"ahead of the clock", 2 * time.Hour, nil, now.Add(11 * time.Minute), true},
		{"undated", 2 * time.Hour, nil, time.Time{}, true},
		{"an operator's replay", 2 * time.Hour, header(dlq.ReplayOfHeader, "42"), now, true},
		{"a catch-up", 2 * time.Hour, header(schedule.CatchUpHeader, "run-1"), now, true},
		{"claims kept for ever", 0, header(dlq.ReplayOfHeader, "42"), now.AddDate(-1, 0, 0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Service{cfg: Config{ClaimTTL: tc.ttl, ClaimSkew: 10 * time.Minute}}
			if got := s.mayOutliveClaim(&bus.Delivery{Header: tc.header}, tc.dated, now); got != tc.want {
				t.Fatalf("mayOutliveClaim = %v, want %v", got, tc.want)
			}
		})
	}
}
