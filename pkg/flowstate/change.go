package flowstate

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/streams"
)

// Verb is the word for a change to state: activate, pause or stage.
func Verb(state string) string {
	switch state {
	case flows.Active:
		return "activate"
	case flows.Paused:
		return "pause"
	}
	return "stage"
}

// Change is the one way a person changes a flow's state (`sinew flows
// activate|pause|stage`, the web console): the audit record first (no
// record, no change), then Set. It returns the state the flow was in.
func (s *Store) Change(ctx context.Context, w *audit.Writer, f *flows.Flow, state, actor, reason string) (was string, err error) {
	if reason == "" {
		return "", ErrNoReason
	}
	r, ok, err := s.Get(ctx, f.ID)
	if err != nil {
		return "", err
	}
	was = r.State
	if !ok || was == "" {
		was = f.State
	}
	if err := w.Write(ctx, &sinewv1.AuditEvent{
		Actor: actor, Action: "flow-" + Verb(state), Flow: f.ID, Hop: streams.HopFlows, Outcome: state,
		Detail: fmt.Sprintf("flow %s: %s -> %s: %s", f.ID, was, state, reason),
	}); err != nil {
		return was, fmt.Errorf("flows: audit: %w", err)
	}
	return was, s.Set(ctx, f, state, actor, reason)
}

// Backlog is what a flow's consumers have not finished.
type Backlog struct {
	Pending  uint64        // not yet delivered
	InFlight int           // delivered, not yet acknowledged
	Oldest   time.Duration // age of the oldest message not finished
	Paused   bool          // every consumer is paused
}

// Left is what remains: pending and in flight.
func (b Backlog) Left() uint64 { return b.Pending + uint64(b.InFlight) }

// BacklogOf adds up the backlogs of a flow's inputs (Inputs); the oldest
// is the oldest of any.
func BacklogOf(ctx context.Context, js jetstream.JetStream, ins []Input) (Backlog, error) {
	var sum Backlog
	for i, in := range ins {
		b, err := backlog(ctx, js, in.Stream, in.Consumer)
		if err != nil {
			return Backlog{}, err
		}
		sum.Pending += b.Pending
		sum.InFlight += b.InFlight
		sum.Oldest = max(sum.Oldest, b.Oldest)
		sum.Paused = b.Paused && (i == 0 || sum.Paused)
	}
	return sum, nil
}

func backlog(ctx context.Context, js jetstream.JetStream, stream, consumer string) (Backlog, error) {
	c, err := js.Consumer(ctx, stream, consumer)
	if err != nil {
		return Backlog{}, fmt.Errorf("flows: consumer %s: %w", consumer, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return Backlog{}, fmt.Errorf("flows: consumer %s: %w", consumer, err)
	}
	b := Backlog{Pending: info.NumPending, InFlight: info.NumAckPending, Paused: info.Paused}
	if b.Left() > 0 {
		s, err := js.Stream(ctx, stream)
		if err == nil {
			if m, err := s.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(info.Config.FilterSubject)); err == nil {
				b.Oldest = time.Since(m.Time)
			}
		}
	}
	return b, nil
}

// Progress is a drain's progress after activation.
type Progress struct {
	Done      uint64  `json:"done"`
	Total     uint64  `json:"total"`
	Remaining uint64  `json:"remaining"`
	InFlight  int     `json:"in_flight"`
	Rate      float64 `json:"rate_per_sec"`
	ETASec    float64 `json:"eta_sec"`
}

// Drain follows a flow's backlog from its activation: Total is the most
// ever waiting (input keeps arriving), Done what of it has been finished.
type Drain struct {
	start time.Time
	total uint64
}

// NewDrain starts following from backlog b at now.
func NewDrain(b Backlog, now time.Time) *Drain { return &Drain{start: now, total: b.Left()} }

// Step is the progress once the backlog is b at now.
func (d *Drain) Step(b Backlog, now time.Time) Progress {
	left := b.Left()
	d.total = max(d.total, left)
	p := Progress{Done: d.total - left, Total: d.total, Remaining: left, InFlight: b.InFlight}
	if secs := now.Sub(d.start).Seconds(); secs > 0 {
		p.Rate = float64(p.Done) / secs
	}
	if p.Rate > 0 {
		p.ETASec = float64(left) / p.Rate
	}
	return p
}
