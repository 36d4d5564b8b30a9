// Package triage is the queue of things a person must look at: a
// reconciliation variance beyond tolerance, a dead letter that needs a
// person, an ambiguous match. An item goes open → acknowledged →
// resolved (with a note); every change is written to the audit trail
// before it is stored, so nobody changes an item without a trace.
//
// Items live in the triage KV bucket under an id derived from what opened
// them (Open with the same source returns the item already there), so a
// flow that reports the same variance twice opens one item.
package triage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/streams"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// Kinds of item.
const (
	KindVariance   = "variance"
	KindDeadLetter = "dead-letter"
	KindAmbiguous  = "ambiguous-match"
)

// States of an item.
const (
	StateOpen         = "open"
	StateAcknowledged = "acknowledged"
	StateResolved     = "resolved"
)

// Item is one triage item.
type Item struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	Flow string `json:"flow"`
	// Reason is a code of pkg/reason (SINEW-RECON-002, a dead letter's code).
	Reason reason.Code `json:"reason"`
	// Source names what opened the item (recon row key, DLQ sequence).
	Source string `json:"source"`
	// Evidence is PHI-free: figures, ids, Fusion's own error text.
	Evidence map[string]string `json:"evidence,omitempty"`
	Summary  string            `json:"summary"`
	Owner    string            `json:"owner,omitempty"`
	Due      time.Time         `json:"due"`
	State    string            `json:"state"`
	Note     string            `json:"note,omitempty"`
	Opened   time.Time         `json:"opened"`
	History  []Change          `json:"history"`
	// revision of the KV entry this was read from (for compare-and-set).
	revision uint64
}

// Change is one step of an item's history.
type Change struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"` // open, assign, acknowledge, resolve
	Detail string    `json:"detail,omitempty"`
}

// Overdue reports an unresolved item past its due date at now.
func (it *Item) Overdue(now time.Time) bool {
	return it.State != StateResolved && !it.Due.IsZero() && now.After(it.Due)
}

// ID is the item id of a source: "T" and 16 hex digits of its hash.
func ID(kind, flow, source string) string {
	h := sha256.Sum256([]byte(kind + "\x00" + flow + "\x00" + source))
	return "T" + hex.EncodeToString(h[:8])
}

// Errors callers branch on.
var (
	ErrNotFound = errors.New("triage: no such item")
	ErrResolved = errors.New("triage: item already resolved")
	ErrNoNote   = errors.New("triage: resolving needs a note")
	ErrReadOnly = errors.New("triage: store opened without an audit writer")
)

// Store is the triage queue.
type Store struct {
	kv    jetstream.KeyValue
	audit *audit.Writer
	now   func() time.Time
}

// Config configures a Store.
type Config struct {
	// Audit receives a record of every change; without one the store only
	// reads (changes fail with ErrReadOnly).
	Audit *audit.Writer
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Open binds the triage bucket.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	kv, err := js.KeyValue(ctx, streams.KVTriage)
	if err != nil {
		return nil, fmt.Errorf("triage: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{kv: kv, audit: cfg.Audit, now: cfg.Now}, nil
}

// DefaultDue is how long an item may stay unresolved when its opener gives
// no due date.
const DefaultDue = 2 * 24 * time.Hour

// Raise opens an item for it.Kind, Flow and Source (ID, State, Opened and
// History are set here) and returns it; when the source already has an
// item, that one is returned unchanged (opened is false).
func (s *Store) Raise(ctx context.Context, actor string, it Item) (_ *Item, opened bool, err error) {
	if it.Kind == "" || it.Flow == "" || it.Source == "" {
		return nil, false, errors.New("triage: kind, flow and source are required")
	}
	it.ID = ID(it.Kind, it.Flow, it.Source)
	if old, err := s.Get(ctx, it.ID); err == nil {
		return old, false, nil
	}
	now := s.now().UTC()
	it.State, it.Opened = StateOpen, now
	if it.Due.IsZero() {
		it.Due = now.Add(DefaultDue)
	}
	it.History = []Change{{At: now, Actor: actor, Action: "open", Detail: it.Summary}}
	if err := s.record(ctx, actor, &it, "open", it.Summary); err != nil {
		return nil, false, err
	}
	b, _ := json.Marshal(it)
	if _, err := s.kv.Create(ctx, it.ID, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			old, gerr := s.Get(ctx, it.ID)
			return old, false, gerr
		}
		return nil, false, fmt.Errorf("triage: %w", err)
	}
	return &it, true, nil
}

// Get reads one item.
func (s *Store) Get(ctx context.Context, id string) (*Item, error) {
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("triage: %w", err)
	}
	var it Item
	if err := json.Unmarshal(e.Value(), &it); err != nil {
		return nil, fmt.Errorf("triage: item %s: %w", id, err)
	}
	it.revision = e.Revision()
	return &it, nil
}

// Filter selects items for List; zero fields match all.
type Filter struct {
	Flow  string
	State string // "" all; "unresolved" open or acknowledged
	Owner string
}

func (f Filter) match(it *Item) bool {
	switch {
	case f.Flow != "" && it.Flow != f.Flow, f.Owner != "" && it.Owner != f.Owner:
		return false
	case f.State == "unresolved":
		return it.State != StateResolved
	case f.State != "":
		return it.State == f.State
	}
	return true
}

// List returns the items f selects, oldest first.
func (s *Store) List(ctx context.Context, f Filter) ([]*Item, error) {
	keys, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("triage: %w", err)
	}
	var out []*Item
	for k := range keys.Keys() {
		it, err := s.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if f.match(it) {
			out = append(out, it)
		}
	}
	slices.SortFunc(out, func(a, b *Item) int { return a.Opened.Compare(b.Opened) })
	return out, nil
}

// Assign gives the item to owner (and a due date, when not zero); an open
// item becomes acknowledged.
func (s *Store) Assign(ctx context.Context, actor, id, owner string, due time.Time) (*Item, error) {
	return s.change(ctx, actor, id, "assign", "to "+owner, func(it *Item) error {
		it.Owner = owner
		if !due.IsZero() {
			it.Due = due
		}
		if it.State == StateOpen {
			it.State = StateAcknowledged
		}
		return nil
	})
}

// Acknowledge marks an open item as being looked at.
func (s *Store) Acknowledge(ctx context.Context, actor, id string) (*Item, error) {
	return s.change(ctx, actor, id, "acknowledge", "", func(it *Item) error {
		it.State = StateAcknowledged
		return nil
	})
}

// Resolve closes the item with note (required).
func (s *Store) Resolve(ctx context.Context, actor, id, note string) (*Item, error) {
	if strings.TrimSpace(note) == "" {
		return nil, ErrNoNote
	}
	return s.change(ctx, actor, id, "resolve", note, func(it *Item) error {
		it.State, it.Note = StateResolved, note
		return nil
	})
}

// change applies fn to the item with compare-and-set, auditing first.
func (s *Store) change(ctx context.Context, actor, id, action, detail string, fn func(*Item) error) (*Item, error) {
	for range 5 {
		it, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if it.State == StateResolved {
			return it, ErrResolved
		}
		if err := fn(it); err != nil {
			return nil, err
		}
		it.History = append(it.History, Change{At: s.now().UTC(), Actor: actor, Action: action, Detail: detail})
		if err := s.record(ctx, actor, it, action, detail); err != nil {
			return nil, err
		}
		b, _ := json.Marshal(it)
		if _, err := s.kv.Update(ctx, id, b, it.revision); err != nil {
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // changed meanwhile: read again (the audit record says it was tried)
			}
			return nil, fmt.Errorf("triage: %w", err)
		}
		return it, nil
	}
	return nil, fmt.Errorf("triage: item %s: changed by others five times in a row", id)
}

// record writes the audit record of a change (hop "triage").
func (s *Store) record(ctx context.Context, actor string, it *Item, action, detail string) error {
	if s.audit == nil {
		return ErrReadOnly
	}
	return s.audit.Write(ctx, &sinewv1.AuditEvent{Actor: actor, Action: "triage-" + action, Flow: it.Flow, Hop: streams.HopTriage,
		Outcome: it.State, EventId: it.ID, Detail: string(it.Reason) + " " + it.Source + ": " + detail,
		BusinessKeys: sinewv1.KeysOf("triage_id", it.ID)})
}

// Blocking is the flow's (every flow's, when "") unresolved items of kind
// variance or ambiguous match: while any exists the flow's reconciliation
// has not passed.
func (s *Store) Blocking(ctx context.Context, flow string) ([]*Item, error) {
	items, err := s.List(ctx, Filter{Flow: flow, State: "unresolved"})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(items, func(it *Item) bool { return it.Kind == KindDeadLetter }), nil
}
