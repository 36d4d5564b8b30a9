// Package audit writes and verifies Sinew's audit trail (HIPAA §164.312(b)):
// one record per hop on audit.<flow>.<hop>, hash-chained per writer so that a
// changed, reordered or missing record is detected, with patient identifiers
// only as keyed hashes.
package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/streams"
)

// Config holds the audit settings shared by every service.
type Config struct {
	// Secret keys the HMAC of patient identifiers. Every service of a
	// deployment must use the same secret so references correlate.
	Secret string `yaml:"secret"`
}

// PatientRef is the keyed hash under which a patient identifier may appear
// in audit records: "hmac-sha256:" and 32 hex digits. system names the
// identifier's assigning authority (e.g. "MRN").
func PatientRef(secret []byte, system, id string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(system))
	m.Write([]byte{0})
	m.Write([]byte(id))
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// Hash is the chain hash of a record: SHA-256(prev_hash || events).
func Hash(prev, events []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(events)
	return h.Sum(nil)
}

// Writer appends to one hash chain. Safe for concurrent use. Writes that
// arrive while a record is being stored are committed together in the next
// record (group commit): one stream write for many events under load, no
// added wait when idle.
type Writer struct {
	js jetstream.JetStream
	id string

	mu       sync.Mutex
	seq      uint64
	prev     []byte
	queue    []*pending
	flushing bool
}

// pending is one Write waiting for its record to be stored.
type pending struct {
	subject string
	event   []byte // deterministic encoding of the AuditEvent
	done    chan error
}

// maxBatch bounds the events of one record (and so its size).
const maxBatch = 256

// NewWriter starts a new chain named id, which must be unique per process
// start (a restarted service begins a new chain rather than guessing where
// its old one ended).
func NewWriter(js jetstream.JetStream, id string) *Writer {
	return &Writer{js: js, id: id}
}

// ID is the writer's chain id.
func (w *Writer) ID() string { return w.id }

// Write appends ev to the chain and waits until JetStream has stored the
// record holding it. A failed publish is retried with the same message id
// (so the record is stored once).
func (w *Writer) Write(ctx context.Context, ev *sinewv1.AuditEvent) error {
	if ev.At == nil {
		ev.At = timestamppb.Now()
	}
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	if err != nil {
		return fmt.Errorf("audit: encode: %w", err)
	}
	p := &pending{subject: streams.AuditSubject(ev.Flow, ev.Hop), event: body, done: make(chan error, 1)}
	w.mu.Lock()
	w.queue = append(w.queue, p)
	lead := !w.flushing
	w.flushing = true
	w.mu.Unlock()
	if lead {
		// A goroutine that lives while there is work stores the queue, so
		// every caller, this one included, can give up when its ctx ends.
		go func() {
			for w.flushBatch() {
			}
		}()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("audit: %s: %w", w.id, ctx.Err())
	}
}

// record is one AuditRecord on its way to the stream.
type record struct {
	msg     *nats.Msg
	seq     uint64
	waiters []*pending
	fut     jetstream.PubAckFuture
	err     error
}

// flushBatch stores what is queued and reports true; with nothing queued
// it ends the flushing and reports false.
func (w *Writer) flushBatch() bool {
	w.mu.Lock()
	if len(w.queue) == 0 {
		w.flushing = false
		w.mu.Unlock()
		return false
	}
	batch := w.queue
	w.queue = nil
	recs := w.chain(batch)
	// Published in chain order, under the lock, on one connection.
	for _, r := range recs {
		if r.err == nil {
			r.fut, r.err = w.js.PublishMsgAsync(r.msg)
		}
	}
	w.mu.Unlock()
	for _, r := range recs {
		err := w.settle(r)
		for _, p := range r.waiters {
			p.done <- err
		}
	}
	return true
}

// chain turns queued events into records, one per subject run of at most
// maxBatch events, advancing the chain. Called with w.mu held.
func (w *Writer) chain(batch []*pending) []*record {
	var recs []*record
	for len(batch) > 0 {
		n := 1
		for n < len(batch) && n < maxBatch && batch[n].subject == batch[0].subject {
			n++
		}
		var events []byte
		for _, p := range batch[:n] {
			events = protowire.AppendTag(events, 1, protowire.BytesType)
			events = protowire.AppendBytes(events, p.event)
		}
		w.seq++
		rec := &sinewv1.AuditRecord{Writer: w.id, Seq: w.seq, PrevHash: w.prev, Events: events}
		rec.Hash = Hash(rec.PrevHash, events)
		w.prev = rec.Hash
		data, err := proto.Marshal(rec)
		msg := &nats.Msg{Subject: batch[0].subject, Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, "audit:"+w.id+":"+strconv.FormatUint(rec.Seq, 10))
		recs = append(recs, &record{msg: msg, seq: rec.Seq, waiters: batch[:n], err: err})
		batch = batch[n:]
	}
	return recs
}

// settle waits for a record's ack, republishing it (same message id) on
// failure for up to about ten seconds.
func (w *Writer) settle(r *record) error {
	if r.fut != nil {
		select {
		case <-r.fut.Ok():
			return nil
		case <-r.fut.Err(): // stored or not, the retry below settles it
		case <-time.After(10 * time.Second):
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	for delay := 50 * time.Millisecond; ; delay = min(delay*2, 2*time.Second) {
		if _, err = w.js.PublishMsg(ctx, r.msg); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("audit: %s seq %d not stored: %w", w.id, r.seq, err)
		case <-time.After(delay):
		}
	}
}

// Events decodes a record's events.
func Events(rec *sinewv1.AuditRecord) ([]*sinewv1.AuditEvent, error) {
	var all sinewv1.AuditEvents
	if err := proto.Unmarshal(rec.Events, &all); err != nil {
		return nil, err
	}
	return all.Events, nil
}

// Problem kinds found by a Verifier.
const (
	ProblemHash   = "hash-mismatch" // the record's content does not match its hash
	ProblemLink   = "broken-link"   // prev_hash is not the previous record's hash
	ProblemGap    = "gap"           // a sequence number is missing
	ProblemRepeat = "repeat"        // a sequence number appears twice
	ProblemDecode = "undecodable"
)

// Problem is one finding of Verify.
type Problem struct {
	Writer    string
	Seq       uint64
	StreamSeq uint64
	Kind      string
	Detail    string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s writer=%s seq=%d stream_seq=%d %s", p.Kind, p.Writer, p.Seq, p.StreamSeq, p.Detail)
}

// Verifier checks chains record by record, in stream order, keeping only
// the head of each chain.
type Verifier struct {
	heads    map[string]head
	Records  int
	Problems []Problem
}

type head struct {
	seq  uint64
	hash []byte
}

// NewVerifier returns an empty verifier.
func NewVerifier() *Verifier { return &Verifier{heads: map[string]head{}} }

// Add checks the next record; streamSeq is only for the report.
func (v *Verifier) Add(rec *sinewv1.AuditRecord, streamSeq uint64) {
	v.Records++
	bad := func(kind, detail string) {
		v.Problems = append(v.Problems, Problem{Writer: rec.Writer, Seq: rec.Seq, StreamSeq: streamSeq, Kind: kind, Detail: detail})
	}
	if !bytes.Equal(Hash(rec.PrevHash, rec.Events), rec.Hash) {
		bad(ProblemHash, "content does not match its hash")
	}
	h, seen := v.heads[rec.Writer]
	switch {
	case !seen && rec.Seq != 1:
		bad(ProblemGap, fmt.Sprintf("chain starts at seq %d", rec.Seq))
	case !seen && len(rec.PrevHash) != 0:
		bad(ProblemLink, "first record has a predecessor hash")
	case seen && rec.Seq <= h.seq:
		bad(ProblemRepeat, fmt.Sprintf("seq %d after %d", rec.Seq, h.seq))
		return
	case seen && rec.Seq != h.seq+1:
		bad(ProblemGap, fmt.Sprintf("seq %d follows %d", rec.Seq, h.seq))
	case seen && !bytes.Equal(rec.PrevHash, h.hash):
		bad(ProblemLink, "prev_hash differs from the previous record's hash")
	}
	v.heads[rec.Writer] = head{seq: rec.Seq, hash: rec.Hash}
}

// Writers is the number of chains seen.
func (v *Verifier) Writers() int { return len(v.heads) }

// OK reports whether no problem was found.
func (v *Verifier) OK() bool { return len(v.Problems) == 0 }

// Entry is one stored audit record with its decoded events. DecodeErr is
// set (and Record nil) when the stored bytes are not an AuditRecord.
type Entry struct {
	Subject   string
	StreamSeq uint64
	Record    *sinewv1.AuditRecord
	Events    []*sinewv1.AuditEvent
	DecodeErr error
}

// AddUndecodable records a stored message that is not an audit record.
func (v *Verifier) AddUndecodable(streamSeq uint64, err error) {
	v.Records++
	v.Problems = append(v.Problems, Problem{StreamSeq: streamSeq, Kind: ProblemDecode, Detail: err.Error()})
}

// Read calls fn for every record on subjects matching filter ("audit.>"
// when empty), in stream order, until the stream's end at the time of the call.
func Read(ctx context.Context, js jetstream.JetStream, filter string, fn func(Entry) error) error {
	if filter == "" {
		filter = "audit.>"
	}
	stream, err := js.Stream(ctx, streams.Audit)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	for {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("audit: fetch: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("audit: %w", err)
			}
			e := Entry{Subject: m.Subject(), StreamSeq: meta.Sequence.Stream, Record: &sinewv1.AuditRecord{}}
			if err := proto.Unmarshal(m.Data(), e.Record); err != nil {
				e.Record, e.DecodeErr = nil, err
			}
			if e.Record != nil {
				// Undecodable events still verify by hash; Events stays empty.
				e.Events, _ = Events(e.Record)
			}
			if err := fn(e); err != nil {
				return err
			}
			if meta.Sequence.Stream >= last || meta.NumPending == 0 {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("audit: fetch: %w", err)
		}
		if n == 0 {
			return nil
		}
	}
}
