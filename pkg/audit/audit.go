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
// added wait when idle. The chain advances only when JetStream has stored a
// record, so a failed record leaves no gap: its writers get the error (and
// retry their hop), nothing of it is written later.
type Writer struct {
	js   jetstream.JetStream
	base string

	mu       sync.Mutex
	id       string // base, or base~N after N chains were ended by a failure
	epoch    int
	timeout  time.Duration // for storing one record; 10 s when 0
	seq      uint64
	prev     []byte
	queue    []*pending
	flushing bool
}

// pending is one Write waiting for its record to be stored.
type pending struct {
	ctx     context.Context // the writer gave up when it is done
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
	return &Writer{js: js, base: id, id: id}
}

// ID is the writer's current chain id.
func (w *Writer) ID() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.id
}

// Write appends ev to the chain and waits until JetStream has stored the
// record holding it, or ctx ends (then ev is not written).
func (w *Writer) Write(ctx context.Context, ev *sinewv1.AuditEvent) error {
	if ev.At == nil {
		ev.At = timestamppb.Now()
	}
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	if err != nil {
		return fmt.Errorf("audit: encode: %w", err)
	}
	p := &pending{ctx: ctx, subject: streams.AuditSubject(ev.Flow, ev.Hop), event: body, done: make(chan error, 1)}
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
		return fmt.Errorf("audit: %s: %w", w.base, ctx.Err())
	}
}

// flushBatch stores one record from the head of the queue and reports
// true; with nothing queued it ends the flushing and reports false.
func (w *Writer) flushBatch() bool {
	w.mu.Lock()
	// Events whose writers gave up are dropped: they were told "not written".
	live := w.queue[:0]
	for _, p := range w.queue {
		if p.ctx.Err() == nil {
			live = append(live, p)
		}
	}
	w.queue = live
	if len(w.queue) == 0 {
		w.flushing = false
		w.mu.Unlock()
		return false
	}
	n := 1
	for n < len(w.queue) && n < maxBatch && w.queue[n].subject == w.queue[0].subject {
		n++
	}
	batch := append([]*pending(nil), w.queue[:n]...)
	w.queue = w.queue[n:]
	id, seq, prev := w.id, w.seq+1, w.prev
	w.mu.Unlock() // one flusher at a time: the chain cannot move meanwhile

	var events []byte
	for _, p := range batch {
		events = protowire.AppendTag(events, 1, protowire.BytesType)
		events = protowire.AppendBytes(events, p.event)
	}
	rec := &sinewv1.AuditRecord{Writer: id, Seq: seq, PrevHash: prev, Events: events}
	rec.Hash = Hash(prev, events)
	err := w.store(rec, batch[0].subject)
	w.mu.Lock()
	if err == nil {
		w.seq, w.prev = seq, rec.Hash
	} else {
		// Stored or not, we cannot know: end this chain (it ends before or
		// with this record, complete either way) and start a new one, so
		// verification sees no gap and no fork.
		w.epoch++
		w.id, w.seq, w.prev = fmt.Sprintf("%s~%d", w.base, w.epoch), 0, nil
	}
	w.mu.Unlock()
	for _, p := range batch {
		p.done <- err
	}
	return true
}

// store publishes a record and waits for the ack, retrying with the same
// message id (so it is stored once) for about ten seconds.
func (w *Writer) store(rec *sinewv1.AuditRecord, subject string) error {
	data, err := proto.Marshal(rec)
	if err != nil {
		return fmt.Errorf("audit: encode record: %w", err)
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, "audit:"+rec.Writer+":"+strconv.FormatUint(rec.Seq, 10))
	timeout := w.timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for delay := 50 * time.Millisecond; ; delay = min(delay*2, 2*time.Second) {
		if _, err = streams.Publish(ctx, w.js.Conn(), msg); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("audit: %s seq %d not stored: %w", rec.Writer, rec.Seq, err)
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
	err := streams.Scan(ctx, js, streams.Audit, filter, time.Time{}, func(m jetstream.Msg) error {
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
		return fn(e)
	})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}
