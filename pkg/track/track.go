// Package track finds every hop of a message by any of its business
// identifiers (HL7 control id, prescription or batch id, GROUP_ID,
// REFERENCE21, Fusion request id, event id, a patient's keyed hash).
//
// The index is a derived view of the audit trail, rebuildable from it: an
// Indexer beside the console reads AUDIT into a local Index (an LSM on
// disk, pebble), one record per (identifier, hop) under the identifier's
// key, a hash of it, so no identifier (and no PHI) is stored in clear. It
// runs asynchronously: no hop waits for the index. It is not in JetStream:
// the server would hold each identifier's subject in memory for the
// stream's life (issue 15). Other processes (sinew track) ask the console
// over NATS (Serve, Ask), by key, never by identifier.
package track

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7receipt"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// Key is the index key of an identifier: 32 hex digits of
// SHA-256("sinew track v1" 0 value). The kind of identifier is not part of
// it, so a lookup needs only the value. A patient identifier is looked up
// by its audit.PatientRef, already a keyed hash.
func Key(value string) string {
	h := sha256.New()
	h.Write([]byte("sinew track v1"))
	h.Write([]byte{0})
	h.Write([]byte(strings.TrimSpace(value)))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Hop is one index record: what happened to a message at one hop.
type Hop struct {
	// Kind names the identifier the record was filed under
	// ("control_id", "batch_id", "event_id", "patient", ...).
	Kind      string    `json:"kind"`
	At        time.Time `json:"at"`
	Flow      string    `json:"flow,omitempty"`
	Hop       string    `json:"hop"`
	Actor     string    `json:"actor,omitempty"`
	Action    string    `json:"action,omitempty"`
	Outcome   string    `json:"outcome"`
	Subject   string    `json:"subject,omitempty"`
	Stream    string    `json:"stream,omitempty"`
	StreamSeq uint64    `json:"stream_seq,omitempty"`
	EventID   string    `json:"event_id,omitempty"`
	TraceID   string    `json:"trace_id,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	// AuditSeq is the AUDIT stream sequence of the record this came from.
	AuditSeq uint64 `json:"audit_seq"`
	// Retries is how many earlier hops of this timeline at the same hop
	// and stream sequence ended in a retry (filled by Lookup).
	Retries int `json:"retries"`
}

// Unindexed business keys: counts, amounts, formats and values many
// messages share (a facility, a message type, an item code), not
// identifiers of one message: indexed, each would file a day's traffic
// under one key. Nor the hash of an HL7 body (ingest's check for a
// reused control id): nobody looks a message up by it, and each index
// record costs a write and disk.
var unindexed = []string{"body_sha256", "lines", "debit", "credit", "format", "stream_seq", "sequence_duplicate", "rejected", "trace_id", "body_object",
	"message_type", "facility", "location", "line", "action", "program_340b", "epic_code", "ack", "uom", "tier", "hop"}

// Entry is one index record to store: the identifier's value and the hop.
type Entry struct {
	Value string
	Hop   Hop
}

// Entries is what an audit event is filed under: each identifying
// business key, the event id, the idempotency key and each patient ref.
func Entries(ev *sinewv1.AuditEvent, auditSeq uint64) []Entry {
	h := Hop{
		At: ev.GetAt().AsTime(), Flow: ev.GetFlow(), Hop: ev.GetHop(), Actor: ev.GetActor(), Action: ev.GetAction(),
		Outcome: ev.GetOutcome(), Subject: ev.GetSubject(), Stream: ev.GetStream(), StreamSeq: ev.GetStreamSeq(),
		EventID: ev.GetEventId(), Detail: ev.GetDetail(), AuditSeq: auditSeq,
		TraceID: sinewv1.Key(ev.GetBusinessKeys(), "trace_id"),
	}
	var out []Entry
	seen := map[string]bool{}
	add := func(kind, v string) {
		if v == "" || seen[v] {
			return
		}
		seen[v] = true
		e := Entry{Value: v, Hop: h}
		e.Hop.Kind = kind
		out = append(out, e)
	}
	for _, kv := range ev.GetBusinessKeys() {
		if !slices.Contains(unindexed, kv.GetKey()) {
			add(kv.GetKey(), kv.GetValue())
		}
	}
	add("event_id", ev.GetEventId())
	// An HL7 receipt's idempotency key is its sender and control id
	// (hl7receipt.MsgID): with a control id it is filed under that already.
	if k := ev.GetIdempotencyKey(); !strings.HasPrefix(k, hl7receipt.MsgIDPrefix) || sinewv1.Key(ev.GetBusinessKeys(), "control_id") == "" {
		add("idempotency_key", k)
	}
	for _, r := range ev.GetPatientRefs() {
		add("patient", r)
	}
	return out
}

// ErrNotFound: no hop is indexed under the identifier.
var ErrNotFound = errors.New("track: no message with that identifier")

// timeline fills the Retries of hops, which are in the order they were
// audited (audit sequence, then event within the record).
func timeline(hops []Hop) []Hop {
	retries := map[string]int{}
	for i := range hops {
		k := hops[i].Hop + "\x00" + fmt.Sprint(hops[i].StreamSeq)
		hops[i].Retries = retries[k]
		if hops[i].Outcome == "retry" {
			retries[k]++
		}
	}
	return hops
}
