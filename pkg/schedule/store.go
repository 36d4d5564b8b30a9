package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/streams"
)

// Keys of one flow in the flow_runs bucket (flow ids are KV-safe tokens):
//
//	<flow>.lease       Lease: who runs the flow now, until when
//	<flow>.last        Watermark: the scheduled time of the last run begun
//	<flow>.request     Request: a run asked for by hand, not begun yet
//	<flow>.run.<id>    Run: one run's record
//	<flow>.latest      the id of the latest run begun
func leaseKey(flow string) string   { return streams.Token(flow) + ".lease" }
func lastKey(flow string) string    { return streams.Token(flow) + ".last" }
func requestKey(flow string) string { return streams.Token(flow) + ".request" }
func runKey(flow, id string) string { return streams.Token(flow) + ".run." + id }
func latestKey(flow string) string  { return streams.Token(flow) + ".latest" }

// Store is the flow_runs bucket.
type Store struct{ kv jetstream.KeyValue }

// Open opens the flow_runs bucket (provisioned with the topology).
func Open(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	kv, err := js.KeyValue(ctx, streams.KVFlowRuns)
	if err != nil {
		return nil, fmt.Errorf("schedule: bucket %s: %w", streams.KVFlowRuns, err)
	}
	return &Store{kv: kv}, nil
}

// Lease says who runs a flow now. A holder renews it while its run lasts;
// a crashed holder's lease lapses at Until and the next scheduler takes it.
type Lease struct {
	Holder string    `json:"holder"`
	Run    string    `json:"run"`
	Until  time.Time `json:"until"`
}

// ErrLeaseHeld is returned when another holder's lease has not lapsed.
var ErrLeaseHeld = errors.New("schedule: another run holds the flow's lease")

// ErrLeaseLost is returned by Renew when the lease is no longer the holder's.
var ErrLeaseLost = errors.New("schedule: lease lost")

func get[T any](ctx context.Context, kv jetstream.KeyValue, key string) (*T, uint64, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("schedule: %s: %w", key, err)
	}
	var v T
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return nil, 0, fmt.Errorf("schedule: %s: %w", key, err)
	}
	return &v, e.Revision(), nil
}

// Lease returns flow's lease (nil when none) and its revision.
func (s *Store) Lease(ctx context.Context, flow string) (*Lease, uint64, error) {
	return get[Lease](ctx, s.kv, leaseKey(flow))
}

// Acquire takes flow's lease for holder until now+ttl when nobody holds
// it or the holder's lease has lapsed; ErrLeaseHeld (with the current
// lease) otherwise. Two schedulers racing are ordered by the bucket's
// revision check: one wins, the other sees ErrLeaseHeld.
func (s *Store) Acquire(ctx context.Context, flow, holder, run string, ttl time.Duration, now time.Time) (uint64, *Lease, error) {
	l := Lease{Holder: holder, Run: run, Until: now.Add(ttl).UTC()}
	b, _ := json.Marshal(l)
	cur, rev, err := s.Lease(ctx, flow)
	if err != nil {
		return 0, nil, err
	}
	if cur != nil && now.Before(cur.Until) {
		return 0, cur, ErrLeaseHeld
	}
	var nrev uint64
	if cur == nil {
		nrev, err = s.kv.Create(ctx, leaseKey(flow), b)
	} else {
		nrev, err = s.kv.Update(ctx, leaseKey(flow), b, rev)
	}
	if err != nil {
		if now, _, gerr := s.Lease(ctx, flow); gerr == nil && now != nil {
			return 0, now, ErrLeaseHeld
		}
		return 0, nil, fmt.Errorf("%w: %v", ErrLeaseHeld, err)
	}
	return nrev, &l, nil
}

// Renew extends holder's lease to now+ttl; ErrLeaseLost when it has moved on.
func (s *Store) Renew(ctx context.Context, flow string, l Lease, rev uint64, ttl time.Duration, now time.Time) (uint64, error) {
	l.Until = now.Add(ttl).UTC()
	b, _ := json.Marshal(l)
	nrev, err := s.kv.Update(ctx, leaseKey(flow), b, rev)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrLeaseLost, err)
	}
	return nrev, nil
}

// Release gives the lease up (only if it is still this revision).
func (s *Store) Release(ctx context.Context, flow string, rev uint64) error {
	return s.kv.Delete(ctx, leaseKey(flow), jetstream.LastRevision(rev))
}

// Watermark is the scheduled time of the last run begun ("last-run").
func (s *Store) Watermark(ctx context.Context, flow string) (time.Time, bool, error) {
	v, _, err := get[time.Time](ctx, s.kv, lastKey(flow))
	if err != nil || v == nil {
		return time.Time{}, false, err
	}
	return *v, true, nil
}

// SetWatermark records t as the last run's scheduled time.
func (s *Store) SetWatermark(ctx context.Context, flow string, t time.Time) error {
	b, _ := json.Marshal(t.UTC())
	if _, err := s.kv.Put(ctx, lastKey(flow), b); err != nil {
		return fmt.Errorf("schedule: %s: %w", lastKey(flow), err)
	}
	return nil
}

// Request is a run asked for by hand (sinew flows run), waiting for a
// scheduler to begin it.
type Request struct {
	ID     string            `json:"id"`
	By     string            `json:"by,omitempty"`
	At     time.Time         `json:"at"`
	Params map[string]string `json:"params,omitempty"`
}

// ErrRequestPending is returned by Ask when a request waits already.
var ErrRequestPending = errors.New("schedule: a run was asked for already and has not begun")

// Ask records a request for a run of flow.
func (s *Store) Ask(ctx context.Context, flow string, r Request) error {
	b, _ := json.Marshal(r)
	if _, err := s.kv.Create(ctx, requestKey(flow), b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return ErrRequestPending
		}
		return fmt.Errorf("schedule: %s: %w", requestKey(flow), err)
	}
	return nil
}

// Pending returns the request waiting for flow (nil when none).
func (s *Store) Pending(ctx context.Context, flow string) (*Request, uint64, error) {
	return get[Request](ctx, s.kv, requestKey(flow))
}

// Taken removes a request once its run has begun.
func (s *Store) Taken(ctx context.Context, flow string, rev uint64) error {
	return s.kv.Delete(ctx, requestKey(flow), jetstream.LastRevision(rev))
}

// Run outcomes.
const (
	Running   = "running"
	Succeeded = "succeeded"
	Failed    = "failed"
)

// Triggers of a run.
const (
	ByScheduleTrigger = "schedule" // its scheduled time came
	CatchUpTrigger    = "catch-up" // a scheduled time passed while Sinew was down
	ManualTrigger     = "manual"   // sinew flows run
)

// Run is one run's record.
type Run struct {
	ID        string            `json:"id"`
	Flow      string            `json:"flow"`
	Trigger   string            `json:"trigger"`
	Holder    string            `json:"holder"`
	Scheduled time.Time         `json:"scheduled,omitzero"`
	Params    map[string]string `json:"params,omitempty"`
	Started   time.Time         `json:"started"`
	Ended     time.Time         `json:"ended,omitzero"`
	Outcome   string            `json:"outcome"`
	// Error says what failed (names and codes, never values).
	Error string `json:"error,omitempty"`
	Steps []Step `json:"steps"`
}

// Step is one part of a run, with its counts.
type Step struct {
	Name   string           `json:"name"`
	State  string           `json:"state"` // running, succeeded, failed
	Counts map[string]int64 `json:"counts,omitempty"`
	Detail string           `json:"detail,omitempty"`
}

// Done reports whether the run has ended.
func (r *Run) Done() bool { return r.Outcome != Running }

// SaveRun writes a run's record.
func (s *Store) SaveRun(ctx context.Context, r *Run) error {
	b, _ := json.Marshal(r)
	if _, err := s.kv.Put(ctx, runKey(r.Flow, r.ID), b); err != nil {
		return fmt.Errorf("schedule: run record: %w", err)
	}
	return nil
}

// Run reads one run's record (nil when there is none).
func (s *Store) Run(ctx context.Context, flow, id string) (*Run, error) {
	r, _, err := get[Run](ctx, s.kv, runKey(flow, id))
	return r, err
}

// Latest is the latest run begun of flow (nil when none).
func (s *Store) Latest(ctx context.Context, flow string) (*Run, error) {
	id, _, err := get[string](ctx, s.kv, latestKey(flow))
	if err != nil || id == nil {
		return nil, err
	}
	return s.Run(ctx, flow, *id)
}

func (s *Store) setLatest(ctx context.Context, flow, id string) error {
	b, _ := json.Marshal(id)
	_, err := s.kv.Put(ctx, latestKey(flow), b)
	return err
}

// CatchUpHeader marks a command a scheduled run re-sends because the
// target lacked its effect (its value is the run's id): the loader then
// checks the target before trusting an earlier claim of the same
// idempotency key, so the effect is made once, never twice.
const CatchUpHeader = "Sinew-Catch-Up"
