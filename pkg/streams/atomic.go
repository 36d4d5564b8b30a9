package streams

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers of a JetStream atomic batch publish (nats-server 2.12+; the
// stream needs AllowAtomicPublish). nats.go has no batch API: the headers
// are set here.
const (
	BatchIDHeader     = "Nats-Batch-Id"
	BatchSeqHeader    = "Nats-Batch-Sequence"
	BatchCommitHeader = "Nats-Batch-Commit"
)

// MaxAtomicBatch is nats-server's default bound on the messages of one
// atomic batch (JetStreamLimits.MaxBatchSize).
const MaxAtomicBatch = 1000

// PublishAtomic stores msgs in their stream as one atomic batch: all of
// them or none. On a file stream with sync_always, nats-server 2.15 writes
// the batch with one fsync (stream.go, coalesceSync) instead of one per
// message: this is the group commit of the MLLP listener. It returns one
// acknowledgement per message, in order, once the commit is answered.
//
// Errors are Publish's (an *UnavailableError when JetStream did not answer:
// the batch may or may not be stored, and a resend is deduplicated by its
// Nats-Msg-Id), or the stream's refusal as a *jetstream.APIError: then
// nothing of the batch was stored. msgs' headers are left as they were.
func PublishAtomic(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg) ([]*jetstream.PubAck, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	if len(msgs) > MaxAtomicBatch {
		return nil, fmt.Errorf("streams: atomic batch of %d messages, at most %d", len(msgs), MaxAtomicBatch)
	}
	var idb [12]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, fmt.Errorf("streams: batch id: %w", err)
	}
	id := hex.EncodeToString(idb[:])
	defer func() {
		for _, m := range msgs {
			m.Header.Del(BatchIDHeader)
			m.Header.Del(BatchSeqHeader)
			m.Header.Del(BatchCommitHeader)
		}
	}()
	last := len(msgs) - 1
	for i, m := range msgs {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set(BatchIDHeader, id)
		m.Header.Set(BatchSeqHeader, strconv.Itoa(i+1))
		if i == last {
			m.Header.Set(BatchCommitHeader, "1")
			break
		}
		// No reply: the server stages the message and would only answer
		// "staged". A lost one makes the commit fail as incomplete.
		if err := nc.PublishMsg(m); err != nil {
			return nil, &UnavailableError{Err: err}
		}
	}
	ack, err := Publish(ctx, nc, msgs[last])
	if err != nil {
		return nil, err
	}
	return batchAcks(ack, len(msgs))
}

// batchAcks spreads the commit's acknowledgement (the last message's
// sequence) over the n messages of the batch, stored one after the other.
func batchAcks(last *jetstream.PubAck, n int) ([]*jetstream.PubAck, error) {
	if last.Sequence < uint64(n) {
		return nil, fmt.Errorf("streams: atomic batch of %d answered with sequence %d: %w", n, last.Sequence, jetstream.ErrInvalidJSAck)
	}
	acks := make([]*jetstream.PubAck, n)
	for i := range acks {
		acks[i] = &jetstream.PubAck{Stream: last.Stream, Domain: last.Domain, Sequence: last.Sequence - uint64(n-1-i)}
	}
	return acks, nil
}

// IsBatchRefusal reports whether err is a stream's refusal of a whole
// atomic batch that publishing its messages one by one would answer per
// message (a duplicate among them, atomic publish disabled, a batch the
// server found incomplete or too large): nothing of the batch was stored.
// An unavailable stream is not a refusal.
func IsBatchRefusal(err error) bool {
	if err == nil || IsUnavailable(err) {
		return false
	}
	var api *jetstream.APIError
	return errors.As(err, &api)
}
