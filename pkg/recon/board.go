package recon

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// Board is the current state of reconciled batches, built from RECON rows
// read in stream order: the latest row per (flow, scope, tier, key).
//
// A reconciliation run publishes every row of a batch with one CheckedAt,
// its summary last (Result.Publishable). Passing lines have no rows of
// their own, so a row from an earlier run that the latest run did not
// repeat has been superseded: the Board shows a batch's rows checked at or
// after its latest summary. Rows newer than the summary belong to a run
// still publishing and are shown too.
type Board struct {
	batches map[batchKey]*BatchState
	n       uint64 // rows added: the order rows were published in
}

type batchKey struct{ flow, scope string }

type rowKey struct {
	tier int
	key  string
}

// Entry is a row as read from RECON.
type Entry struct {
	Flow      string
	Row       Row
	CheckedAt time.Time
	seq       uint64
}

// BatchState is one batch on the Board.
type BatchState struct {
	Flow, Scope string
	Summary     *Entry // nil until a summary row arrives
	rows        map[rowKey]Entry
}

// NewBoard returns an empty Board.
func NewBoard() *Board { return &Board{batches: make(map[batchKey]*BatchState)} }

// Add records a row; later calls win for the same (flow, scope, tier, key).
func (b *Board) Add(e Entry) {
	b.n++
	e.seq = b.n
	k := batchKey{e.Flow, e.Row.Scope}
	s := b.batches[k]
	if s == nil {
		s = &BatchState{Flow: e.Flow, Scope: e.Row.Scope, rows: make(map[rowKey]Entry)}
		b.batches[k] = s
	}
	if e.Row.Tier == SummaryTier && e.Row.Key == SummaryKey {
		s.Summary = &e
		return
	}
	s.rows[rowKey{e.Row.Tier, e.Row.Key}] = e
}

// AddProto records a row read from RECON.
func (b *Board) AddProto(p *sinewv1.ReconRow) error {
	r, err := RowFromProto(p)
	if err != nil {
		return err
	}
	flow := p.GetEnvelope().GetFlow()
	if flow == "" {
		return fmt.Errorf("recon: row %d/%s of %q has no flow in its envelope", r.Tier, r.Key, r.Scope)
	}
	b.Add(Entry{Flow: flow, Row: r, CheckedAt: p.GetCheckedAt().AsTime()})
	return nil
}

// Batches returns the batches by flow and scope.
func (b *Board) Batches() []*BatchState {
	out := make([]*BatchState, 0, len(b.batches))
	for _, s := range b.batches {
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y *BatchState) int {
		return cmp.Or(cmp.Compare(x.Flow, y.Flow), cmp.Compare(x.Scope, y.Scope))
	})
	return out
}

// Verdict is the latest summary's verdict, "" without one.
func (s *BatchState) Verdict() string {
	if s.Summary == nil {
		return ""
	}
	return s.Summary.Row.Verdict
}

// Fails reports whether the batch needs attention: no summary yet, or a
// summary that is not pass.
func (s *BatchState) Fails() bool { return s.Summary == nil || Fails(s.Verdict()) }

// Rows returns the batch's current rows by tier, in the order they were
// published (the engine's order), the summary not included.
func (s *BatchState) Rows() []Entry {
	out := make([]Entry, 0, len(s.rows))
	for _, e := range s.rows {
		if s.Summary != nil && e.CheckedAt.Before(s.Summary.CheckedAt) {
			continue // superseded by the summary's run
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(x, y Entry) int {
		return cmp.Or(cmp.Compare(x.Row.Tier, y.Row.Tier), cmp.Compare(x.seq, y.seq))
	})
	return out
}
