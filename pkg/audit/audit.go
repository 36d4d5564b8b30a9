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
	"slices"
	"strconv"
	"strings"
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
	key  []byte // MAC key (ChainKey of the deployment's secret); nil: no MAC

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

// Keyed makes w sign every record with a MAC under the deployment's audit
// secret (the MACHeader), so a record published by anyone without the
// secret is named by Verify instead of breaking the genuine chain. It
// returns w; call it before the first Write.
func (w *Writer) Keyed(secret []byte) *Writer {
	if len(secret) > 0 {
		w.key = ChainKey(secret)
	}
	return w
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
	if w.key != nil {
		msg.Header.Set(MACHeader, hex.EncodeToString(MAC(w.key, subject, rec)))
	}
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

// MACHeader carries a record's MAC (hex): HMAC-SHA256 under ChainKey of
// its subject, writer, seq and hash. The hash chains the records; the MAC
// proves a record was written by a holder of the audit secret.
const MACHeader = "Sinew-Audit-Mac"

// ChainKey derives the records' MAC key from the deployment's audit secret
// (kept apart from the key of PatientRef).
func ChainKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("sinew audit chain v1"))
	return m.Sum(nil)
}

// MAC is a record's MAC under key (ChainKey).
func MAC(key []byte, subject string, rec *sinewv1.AuditRecord) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(subject))
	m.Write([]byte{0})
	m.Write([]byte(rec.Writer))
	m.Write([]byte{0})
	m.Write(strconv.AppendUint(nil, rec.Seq, 10))
	m.Write([]byte{0})
	m.Write(rec.Hash)
	return m.Sum(nil)
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
	// ProblemForged: no MAC, or one that does not verify under the audit
	// secret — not written by a Sinew writer.
	ProblemForged = "forged"
	// ProblemMissing: records the checkpoint saw are gone from the stream.
	ProblemMissing = "missing"
	// ProblemConfig: AUDIT's configuration is weaker than the topology's.
	ProblemConfig = "weak-config"
)

// Problem is one finding of Verify.
type Problem struct {
	Writer    string
	Seq       uint64
	StreamSeq uint64
	Kind      string
	Detail    string
	// Accepted is set when an operator reviewed this record's problem
	// (Checkpoint.Accepted): reported, but it does not fail verification.
	Accepted string `json:",omitempty"`
}

func (p Problem) String() string {
	s := fmt.Sprintf("%s writer=%s seq=%d stream_seq=%d %s", p.Kind, p.Writer, p.Seq, p.StreamSeq, p.Detail)
	if p.Accepted != "" {
		s += " (accepted: " + p.Accepted + ")"
	}
	return s
}

// Verifier checks chains record by record, in stream order, keeping only
// the head of each chain. A record that is itself bad (undecodable, forged,
// altered) is named and skipped: the chain goes on from its last good
// record, so the genuine record after a forgery is not blamed.
type Verifier struct {
	heads map[string]head
	key   []byte
	hops  map[string][]string // hop → services that may write it
	// unsignedBefore: records below this stream sequence predate MACs
	unsignedBefore uint64
	Records        int
	Problems       []Problem
}

type head struct {
	seq       uint64
	hash      []byte
	streamSeq uint64
}

// NewVerifier returns an empty verifier that checks hashes and links only.
func NewVerifier() *Verifier { return &Verifier{heads: map[string]head{}} }

// NewKeyedVerifier also checks every record's MAC under the deployment's
// audit secret (Writer.Keyed).
func NewKeyedVerifier(secret []byte) *Verifier {
	v := NewVerifier()
	v.key = ChainKey(secret)
	return v
}

// Add checks the next record without its MAC; streamSeq is only for the
// report. Keyed verifiers use AddEntry.
func (v *Verifier) Add(rec *sinewv1.AuditRecord, streamSeq uint64) {
	v.add(Entry{Record: rec, StreamSeq: streamSeq}, false)
}

// AddEntry checks the next stored entry: its MAC (keyed verifiers), hash,
// sequence and link.
func (v *Verifier) AddEntry(e Entry) {
	if e.DecodeErr != nil || e.Record == nil {
		err := e.DecodeErr
		if err == nil {
			err = errors.New("no record")
		}
		v.AddUndecodable(e.StreamSeq, err)
		return
	}
	v.add(e, v.key != nil && e.StreamSeq >= v.unsignedBefore)
}

func (v *Verifier) add(e Entry, checkMAC bool) {
	rec, streamSeq := e.Record, e.StreamSeq
	v.Records++
	bad := func(kind, detail string) {
		v.Problems = append(v.Problems, Problem{Writer: rec.Writer, Seq: rec.Seq, StreamSeq: streamSeq, Kind: kind, Detail: detail})
	}
	if checkMAC {
		switch {
		case len(e.MAC) == 0:
			bad(ProblemForged, "no MAC: not written by a Sinew writer; skipped")
			return
		case !hmac.Equal(e.MAC, MAC(v.key, e.Subject, rec)):
			bad(ProblemForged, "MAC does not verify under the audit secret; skipped")
			return
		}
	}
	if svc, hop, ok := v.foreign(e.Subject, rec.Writer); ok {
		bad(ProblemForged, fmt.Sprintf("%s may not write hop %s; skipped", svc, hop))
		return
	}
	if !bytes.Equal(Hash(rec.PrevHash, rec.Events), rec.Hash) {
		bad(ProblemHash, "content does not match its hash; skipped")
		return
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
	v.heads[rec.Writer] = head{seq: rec.Seq, hash: rec.Hash, streamSeq: streamSeq}
}

// foreign reports a record on a hop its writer's service may not write.
// CLIWriterPrefix starts the writer name of every sinew CLI command's
// chain ("cli:<actor>-<id>"); those chains are written as CLIUser.
const CLIWriterPrefix = "cli:"

// CLIUser is the NATS user the sinew CLI connects as (streams.UserAdmin).
const CLIUser = "admin"

func (v *Verifier) foreign(subject, writer string) (svc, hop string, bad bool) {
	if v.hops == nil || subject == "" {
		return "", "", false
	}
	hop = subject[strings.LastIndexByte(subject, '.')+1:]
	allowed, ok := v.hops[hop]
	if !ok {
		return "", "", false
	}
	svc, _, _ = strings.Cut(writer, "@")
	user := svc
	if strings.HasPrefix(svc, CLIWriterPrefix) {
		user = CLIUser // the sinew CLI writes with the admin user's credentials
	}
	return svc, hop, !slices.Contains(allowed, user)
}

// Writers is the number of chains seen.
func (v *Verifier) Writers() int { return len(v.heads) }

// OK reports whether no problem was found (accepted ones aside).
func (v *Verifier) OK() bool {
	for _, p := range v.Problems {
		if p.Accepted == "" {
			return false
		}
	}
	return true
}

// Entry is one stored audit record with its decoded events. DecodeErr is
// set (and Record nil) when the stored bytes are not an AuditRecord.
type Entry struct {
	Subject   string
	StreamSeq uint64
	Record    *sinewv1.AuditRecord
	Events    []*sinewv1.AuditEvent
	DecodeErr error
	// MAC is the record's MACHeader, decoded; nil when absent or not hex.
	MAC []byte
}

// AddUndecodable records a stored message that is not an audit record.
func (v *Verifier) AddUndecodable(streamSeq uint64, err error) {
	v.Records++
	v.Problems = append(v.Problems, Problem{StreamSeq: streamSeq, Kind: ProblemDecode, Detail: err.Error() + "; skipped"})
}

// Read calls fn for every record on subjects matching filter ("audit.>"
// when empty), in stream order, until the stream's end at the time of the call.
func Read(ctx context.Context, js jetstream.JetStream, filter string, fn func(Entry) error) error {
	return ReadSince(ctx, js, filter, time.Time{}, fn)
}

// ReadSince is Read from the first record stored at or after since (all
// when zero).
func ReadSince(ctx context.Context, js jetstream.JetStream, filter string, since time.Time, fn func(Entry) error) error {
	if filter == "" {
		filter = "audit.>"
	}
	err := streams.Scan(ctx, js, streams.Audit, filter, since, func(m jetstream.Msg) error {
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		e := Entry{Subject: m.Subject(), StreamSeq: meta.Sequence.Stream, Record: &sinewv1.AuditRecord{}}
		if h := m.Headers(); h != nil {
			e.MAC, _ = hex.DecodeString(h.Get(MACHeader))
		}
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
