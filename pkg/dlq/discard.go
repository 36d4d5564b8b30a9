package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/streams"
)

// DiscardInfo records who discarded a dead letter and why. The letter
// itself stays in the DLQ stream (nothing disappears without a record);
// a discard marks it handled, as a replay does, so bulk replays and the
// waiting count pass it by.
type DiscardInfo struct {
	Actor  string    `json:"actor"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// ErrDiscarded is returned by Replay and Discard for a discarded letter
// (Replay with force replays it anyway).
var ErrDiscarded = errors.New("dlq: discarded")

// discardKey is the replay bucket's key of seq's discard; a replay's key
// is the bare sequence, so the two never collide.
func discardKey(seq uint64) string { return "discard." + strconv.FormatUint(seq, 10) }

func (s *Store) discardInfo(ctx context.Context, seq uint64) (*DiscardInfo, error) {
	kv, err := s.replays.Get(ctx, discardKey(seq))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dlq: discard record %d: %w", seq, err)
	}
	var di DiscardInfo
	if err := json.Unmarshal(kv.Value(), &di); err != nil {
		return nil, fmt.Errorf("dlq: discard record %d: %w", seq, err)
	}
	return &di, nil
}

// Handled reports whether dead letter seq was replayed or discarded,
// from its records alone (the letter is not read): what a running count
// of waiting letters checks on the few still waiting.
func (s *Store) Handled(ctx context.Context, seq uint64) (bool, error) {
	if ri, err := s.replayInfo(ctx, seq); err != nil || ri != nil {
		return ri != nil, err
	}
	di, err := s.discardInfo(ctx, seq)
	return di != nil, err
}

// discarded returns every discard record, by DLQ sequence: one key
// listing per scan instead of one lookup per letter.
func (s *Store) discarded(ctx context.Context) (map[uint64]*DiscardInfo, error) {
	out := map[uint64]*DiscardInfo{}
	lister, err := s.replays.ListKeysFiltered(ctx, "discard.>")
	if err != nil {
		return nil, fmt.Errorf("dlq: discard records: %w", err)
	}
	for k := range lister.Keys() {
		seq, err := strconv.ParseUint(strings.TrimPrefix(k, "discard."), 10, 64)
		if err != nil {
			continue
		}
		if out[seq], err = s.discardInfo(ctx, seq); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Discard marks dead letter seq as needing nothing more, with the actor
// and reason (required: ErrNoReason) in its record and in an audit
// record; the letter stays in the DLQ. A letter replayed or discarded
// before is refused (ErrAlreadyReplayed, ErrDiscarded).
func (s *Store) Discard(ctx context.Context, seq uint64, actor, reason string) (*DiscardInfo, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, ErrNoReason
	}
	e, err := s.Get(ctx, seq)
	if err != nil {
		return nil, err
	}
	switch {
	case e.Discard != nil:
		return e.Discard, fmt.Errorf("seq %d was discarded by %s at %s: %w", seq, e.Discard.Actor, e.Discard.At.Format(time.RFC3339), ErrDiscarded)
	case e.Replay != nil:
		return nil, fmt.Errorf("seq %d was replayed by %s at %s: %w", seq, e.Replay.Actor, e.Replay.At.Format(time.RFC3339), ErrAlreadyReplayed)
	}
	d := e.Letter
	// The audit record first: no record, no discard.
	if s.audit != nil {
		if err := s.audit.Write(ctx, &sinewv1.AuditEvent{
			Actor: actor, Action: "discard", Flow: d.Flow, Hop: streams.HopReplay, Outcome: "discarded",
			EventId: d.EventId, Subject: d.Subject, Stream: d.Stream, StreamSeq: d.StreamSeq,
			Detail: fmt.Sprintf("dlq seq %d (original %s seq %d) discarded: %s", seq, d.Stream, d.StreamSeq, reason),
		}); err != nil {
			return nil, err
		}
	}
	di := &DiscardInfo{Actor: actor, Reason: reason, At: time.Now().UTC()}
	val, _ := json.Marshal(di)
	// Create, not Put: of two operators discarding at once, one wins.
	if _, err := s.replays.Create(ctx, discardKey(seq), val); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("seq %d: %w", seq, ErrDiscarded)
		}
		return nil, fmt.Errorf("dlq: record discard of seq %d: %w", seq, err)
	}
	return di, nil
}

// DiscardAll discards each entry in order (see Discard) and calls done
// after each, with the error of that discard. It stops at the first
// error done returns.
func (s *Store) DiscardAll(ctx context.Context, entries []*Entry, actor, reason string, done func(*Entry, *DiscardInfo, error) error) error {
	if strings.TrimSpace(reason) == "" {
		return ErrNoReason
	}
	for _, e := range entries {
		di, err := s.Discard(ctx, e.Seq, actor, reason)
		if err := done(e, di, err); err != nil {
			return err
		}
	}
	return nil
}
