// Package dlq writes, reads and replays dead letters: messages that could
// not be processed, kept in the DLQ stream with their payload, subject,
// headers and reason until an operator replays them.
package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/streams"
)

// Kinds of dead letter.
const (
	KindPermanent     = "permanent"         // the handler said it can never succeed
	KindExhausted     = "retries-exhausted" // transient failures on every delivery
	KindMaxDeliveries = "max-deliveries"    // never acknowledged (crash, hang) within MaxDeliver
	KindTerminated    = "terminated"        // terminated by something other than the bus
)

// ReplayOfHeader names, on a replayed message, the DLQ sequence it came from.
const ReplayOfHeader = "sinew-replay-of"

// MsgID is the Nats-Msg-Id of the dead letter for a stream message and
// consumer: the bus and the deadletter service may both record the same
// failure, and the stream keeps one.
func MsgID(stream, consumer string, seq uint64) string {
	return "dlq:" + stream + ":" + consumer + ":" + strconv.FormatUint(seq, 10)
}

// Write stores d in the DLQ stream and waits for the ack. It reports
// whether a record for the same stream message was already there (then
// nothing is written).
func Write(ctx context.Context, js jetstream.JetStream, d *sinewv1.DeadLetter) (duplicate bool, err error) {
	if d.DeadAt == nil {
		d.DeadAt = timestamppb.Now()
	}
	subject := streams.DLQSubject(d.Stream, d.Consumer, d.StreamSeq)
	if exists, err := recorded(ctx, js, subject); err != nil {
		return false, err
	} else if exists {
		return true, nil
	}
	data, err := proto.Marshal(d)
	if err != nil {
		return false, fmt.Errorf("dlq: encode: %w", err)
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, MsgID(d.Stream, d.Consumer, d.StreamSeq))
	ack, err := streams.Publish(ctx, js.Conn(), msg)
	if err != nil {
		return false, fmt.Errorf("dlq: write %s seq %d: %w", d.Stream, d.StreamSeq, err)
	}
	return ack.Duplicate, nil
}

// recorded reports whether a dead letter exists on subject. The message id
// still deduplicates two writers racing within the duplicate window.
func recorded(ctx context.Context, js jetstream.JetStream, subject string) (bool, error) {
	s, err := js.Stream(ctx, streams.DLQ)
	if err != nil {
		return false, fmt.Errorf("dlq: %w", err)
	}
	_, err = s.GetLastMsgForSubject(ctx, subject)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return false, nil
	}
	return false, fmt.Errorf("dlq: lookup %s: %w", subject, err)
}

// Headers converts NATS headers for a dead letter record.
func Headers(h nats.Header) map[string]*sinewv1.HeaderValues {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]*sinewv1.HeaderValues, len(h))
	for k, v := range h {
		out[k] = &sinewv1.HeaderValues{Values: append([]string(nil), v...)}
	}
	return out
}

// Entry is a stored dead letter.
type Entry struct {
	Seq    uint64 // sequence in the DLQ stream
	Letter *sinewv1.DeadLetter
	Replay *ReplayInfo // nil when never replayed
	// Discard is an operator's decision that the letter needs nothing
	// more (nil when not discarded).
	Discard *DiscardInfo
}

// Handled reports whether the letter was replayed or discarded: it no
// longer waits for a person.
func (e *Entry) Handled() bool { return e.Replay != nil || e.Discard != nil }

// ReplayInfo records who replayed a dead letter.
type ReplayInfo struct {
	Actor     string    `json:"actor"`
	Reason    string    `json:"reason,omitempty"`
	At        time.Time `json:"at"`
	Subject   string    `json:"subject"`
	StreamSeq uint64    `json:"stream_seq"`
	Count     int       `json:"count"`
}

// Store reads and replays dead letters.
type Store struct {
	js      jetstream.JetStream
	replays jetstream.KeyValue
	audit   *audit.Writer
}

// Open opens the DLQ stream and its replay bucket. w records replays.
func Open(ctx context.Context, js jetstream.JetStream, w *audit.Writer) (*Store, error) {
	kv, err := js.KeyValue(ctx, streams.KVReplays)
	if err != nil {
		return nil, fmt.Errorf("dlq: replay bucket: %w", err)
	}
	return &Store{js: js, replays: kv, audit: w}, nil
}

// Get returns the dead letter at DLQ sequence seq.
func (s *Store) Get(ctx context.Context, seq uint64) (*Entry, error) {
	raw, err := s.js.Stream(ctx, streams.DLQ)
	if err != nil {
		return nil, fmt.Errorf("dlq: %w", err)
	}
	m, err := raw.GetMsg(ctx, seq)
	if err != nil {
		return nil, fmt.Errorf("dlq: seq %d: %w", seq, err)
	}
	e := &Entry{Seq: seq, Letter: &sinewv1.DeadLetter{}}
	if err := proto.Unmarshal(m.Data, e.Letter); err != nil {
		return nil, fmt.Errorf("dlq: seq %d: %w", seq, err)
	}
	if e.Replay, err = s.replayInfo(ctx, seq); err != nil {
		return e, err
	}
	e.Discard, err = s.discardInfo(ctx, seq)
	return e, err
}

func (s *Store) replayInfo(ctx context.Context, seq uint64) (*ReplayInfo, error) {
	kv, err := s.replays.Get(ctx, strconv.FormatUint(seq, 10))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dlq: replay record %d: %w", seq, err)
	}
	var ri ReplayInfo
	if err := json.Unmarshal(kv.Value(), &ri); err != nil {
		return nil, fmt.Errorf("dlq: replay record %d: %w", seq, err)
	}
	return &ri, nil
}

// List calls fn for each dead letter whose subject matches filter
// ("dlq.>" when empty), oldest first.
func (s *Store) List(ctx context.Context, filter string, fn func(*Entry) error) error {
	if filter == "" {
		filter = "dlq.>"
	}
	discards, err := s.discarded(ctx)
	if err != nil {
		return err
	}
	err = streams.Scan(ctx, s.js, streams.DLQ, filter, time.Time{}, func(m jetstream.Msg) error {
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("dlq: %w", err)
		}
		e := &Entry{Seq: meta.Sequence.Stream, Letter: &sinewv1.DeadLetter{}}
		if err := proto.Unmarshal(m.Data(), e.Letter); err != nil {
			return fmt.Errorf("dlq: seq %d: %w", e.Seq, err)
		}
		if e.Replay, err = s.replayInfo(ctx, e.Seq); err != nil {
			return err
		}
		e.Discard = discards[e.Seq]
		return fn(e)
	})
	if err != nil {
		return fmt.Errorf("dlq: %w", err)
	}
	return nil
}

// ErrAlreadyReplayed is returned by Replay for a dead letter replayed before
// (use force to replay it again).
var ErrAlreadyReplayed = errors.New("dlq: already replayed")

// ErrNoPayload is returned by Replay when the original payload was lost.
var ErrNoPayload = errors.New("dlq: payload unavailable")

// Replay republishes dead letter seq to its original subject with its
// original headers and a new message id, records the replay, and writes an
// audit record naming actor and reason (required: ErrNoReason). Replaying
// the same letter twice is refused unless force is set; a retried replay
// (same count) is deduplicated by JetStream, so the handler sees it once.
func (s *Store) Replay(ctx context.Context, seq uint64, actor, reason string, force bool) (*ReplayInfo, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, ErrNoReason
	}
	e, err := s.Get(ctx, seq)
	if err != nil {
		return nil, err
	}
	d := e.Letter
	if !d.PayloadAvailable {
		return nil, fmt.Errorf("dlq: seq %d: %w", seq, ErrNoPayload)
	}
	if e.Discard != nil && !force {
		return nil, fmt.Errorf("seq %d was discarded by %s at %s (use --force to replay it anyway): %w",
			seq, e.Discard.Actor, e.Discard.At.Format(time.RFC3339), ErrDiscarded)
	}
	count := 1
	if e.Replay != nil {
		if !force {
			return e.Replay, fmt.Errorf("seq %d was replayed by %s at %s (use --force to replay it again): %w",
				seq, e.Replay.Actor, e.Replay.At.Format(time.RFC3339), ErrAlreadyReplayed)
		}
		count = e.Replay.Count + 1
	}
	msg := &nats.Msg{Subject: d.Subject, Data: d.Payload, Header: nats.Header{}}
	for k, hv := range d.Headers {
		if strings.HasPrefix(k, "Nats-") || k == ReplayOfHeader {
			continue // server-set and dedup headers must not follow the copy
		}
		msg.Header[k] = append([]string(nil), hv.Values...)
	}
	msgID := "replay:" + strconv.FormatUint(seq, 10)
	if count > 1 {
		msgID += ":" + strconv.Itoa(count)
	}
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	msg.Header.Set(ReplayOfHeader, strconv.FormatUint(seq, 10))
	ack, err := streams.Publish(ctx, s.js.Conn(), msg)
	if err != nil {
		return nil, fmt.Errorf("dlq: replay seq %d to %s: %w", seq, d.Subject, err)
	}
	ri := &ReplayInfo{Actor: actor, Reason: reason, At: time.Now().UTC(), Subject: d.Subject, StreamSeq: ack.Sequence, Count: count}
	val, _ := json.Marshal(ri)
	if _, err := s.replays.Put(ctx, strconv.FormatUint(seq, 10), val); err != nil {
		return ri, fmt.Errorf("dlq: record replay of seq %d: %w", seq, err)
	}
	if s.audit != nil {
		err = s.audit.Write(ctx, &sinewv1.AuditEvent{
			Actor: actor, Action: "replay", Flow: d.Flow, Hop: streams.HopReplay, Outcome: "replayed",
			EventId: d.EventId, Subject: d.Subject, Stream: d.Stream, StreamSeq: ack.Sequence,
			Detail: fmt.Sprintf("dlq seq %d (original %s seq %d) replayed: %s", seq, d.Stream, d.StreamSeq, reason),
		})
		if err != nil {
			return ri, err
		}
	}
	return ri, nil
}
