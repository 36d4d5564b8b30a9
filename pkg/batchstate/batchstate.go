// Package batchstate keeps the durable state of each batch a flow moves
// through Fusion — received, validated, built, submitted, imported,
// reconciled — with the Fusion request ids of every step, in a JetStream
// key-value bucket. Any service can read where a batch is, and the loader
// resumes a batch at the step that failed instead of starting over: a
// restart never uploads a file twice or imports a group twice.
package batchstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/ids"
	"github.com/sinewhq/sinew/pkg/streams"
)

// Steps of a batch, in order. Rejected and Failed end a batch early;
// FileRejected (review.go) ends a file before it becomes a batch.
const (
	Received   = "received"   // the file is in the object store
	Validated  = "validated"  // every line passed validation and mapping
	Built      = "built"      // the FBDI zip is in the object store
	Submitted  = "submitted"  // Fusion accepted the upload (load request id known)
	Imported   = "imported"   // every journal group imported
	Rejected   = "rejected"   // Fusion rejected some groups (lines carry its codes)
	Failed     = "failed"     // the load or an import failed as a whole
	Reconciled = "reconciled" // the reconciler has checked it against Fusion
)

// Group steps.
const (
	GroupPending   = "pending"
	GroupSubmitted = "submitted"
	GroupImported  = "imported"
	GroupRejected  = "rejected"
	GroupFailed    = "failed"
)

// maxHistory bounds the history kept per batch.
const maxHistory = 64

// State is one batch.
type State struct {
	Flow      string `json:"flow"`
	BatchID   string `json:"batch_id"`
	SHA256    string `json:"sha256"`
	ObjectKey string `json:"object_key"` // the FBDI zip in the object store
	Step      string `json:"step"`
	Detail    string `json:"detail,omitempty"`

	Upload Upload  `json:"upload"`
	Groups []Group `json:"groups"`

	// Verdict is the reconciler's summary once Reconciled.
	Verdict string    `json:"verdict,omitempty"`
	History []Event   `json:"history"`
	Updated time.Time `json:"updated"`

	// ByFile marks a file's own record, kept under FileID (a rejected file,
	// or a resolved file that never became a batch).
	ByFile   bool   `json:"by_file,omitempty"`
	FileName string `json:"file_name,omitempty"`
	// Findings of a rejected file (the first MaxFindings), their number
	// and the object key of the full report in batch_files.
	Findings      []string `json:"findings,omitempty"`
	FindingsTotal int      `json:"findings_total,omitempty"`
	Report        string   `json:"report,omitempty"`
	// Recon counts the reconciler's failed attempts.
	Recon *ReconAttempts `json:"recon,omitempty"`
	// Resolved is an operator's resolution (see IsResolved).
	Resolved *Resolution `json:"resolved,omitempty"`
}

// Upload is the file's trip to Fusion. IntentAt is written before the
// upload is sent: an intent without a request id means an upload may have
// reached Fusion unrecorded, which must be settled by asking Fusion.
type Upload struct {
	Attempt   int       `json:"attempt"`
	FileName  string    `json:"file_name,omitempty"`
	IntentAt  time.Time `json:"intent_at,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
	Status    string    `json:"status,omitempty"` // the load job's terminal ESS status
}

// Group is one journal's GROUP_ID and its import.
type Group struct {
	ID        int64       `json:"id"`
	Journal   string      `json:"journal"`
	Step      string      `json:"step"`
	IntentAt  time.Time   `json:"intent_at,omitempty"`
	RequestID string      `json:"request_id,omitempty"` // the Import Journals request
	Status    string      `json:"status,omitempty"`     // its terminal ESS status
	Detail    string      `json:"detail,omitempty"`
	Errors    []LineError `json:"errors,omitempty"`
}

// LineError is Fusion's verdict on one rejected line.
type LineError struct {
	Reference21 string `json:"reference21"`
	Code        string `json:"code"`
	Text        string `json:"text"`
}

// Event is one step taken.
type Event struct {
	Step   string    `json:"step"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail,omitempty"`
}

// Advance moves the batch to step (recorded in its history once).
func (s *State) Advance(step, detail string, at time.Time) {
	if s.Step == step && s.Detail == detail {
		return
	}
	s.Step, s.Detail = step, detail
	s.History = append(s.History, Event{Step: step, At: at.UTC(), Detail: detail})
	if len(s.History) > maxHistory {
		s.History = append(s.History[:1], s.History[len(s.History)-maxHistory+1:]...)
	}
}

// Group returns the group with id, or nil.
func (s *State) Group(id int64) *Group {
	for i := range s.Groups {
		if s.Groups[i].ID == id {
			return &s.Groups[i]
		}
	}
	return nil
}

// Done reports whether the loader has nothing left to do for the batch.
func (s *State) Done() bool {
	switch s.Step {
	case Imported, Rejected, Reconciled:
		return true
	}
	return false
}

// Store reads and updates batch states.
type Store struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

// Open returns the store in js's batch-state bucket.
func Open(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	kv, err := js.KeyValue(ctx, streams.KVBatchState)
	if err != nil {
		return nil, fmt.Errorf("batchstate: bucket %s: %w", streams.KVBatchState, err)
	}
	return &Store{kv: kv, now: time.Now}, nil
}

// Key is the bucket key of a batch: batch ids are the source's and may hold
// characters keys cannot.
func Key(flow, batchID string) string { return flow + "." + ids.HashKey(batchID) }

// ErrNotFound means no state was recorded for the batch.
var ErrNotFound = errors.New("batchstate: no such batch")

// Get returns the batch's state.
func (st *Store) Get(ctx context.Context, flow, batchID string) (*State, error) {
	e, err := st.kv.Get(ctx, Key(flow, batchID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("batchstate: get %s %s: %w", flow, batchID, err)
	}
	var s State
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return nil, fmt.Errorf("batchstate: decode %s %s: %w", flow, batchID, err)
	}
	return &s, nil
}

// Update applies fn to the batch's state (a new one when none exists) and
// writes it back with compare-and-set, retrying fn when another writer got
// there first. fn must be safe to run more than once.
func (st *Store) Update(ctx context.Context, flow, batchID string, fn func(*State) error) (*State, error) {
	key := Key(flow, batchID)
	for {
		var s State
		var rev uint64
		e, err := st.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			s = State{Flow: flow, BatchID: batchID}
		case err != nil:
			return nil, fmt.Errorf("batchstate: get %s %s: %w", flow, batchID, err)
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &s); err != nil {
				return nil, fmt.Errorf("batchstate: decode %s %s: %w", flow, batchID, err)
			}
		}
		if err := fn(&s); err != nil {
			return nil, err
		}
		s.Updated = st.now().UTC()
		b, err := json.Marshal(&s)
		if err != nil {
			return nil, err
		}
		if rev == 0 {
			_, err = st.kv.Create(ctx, key, b)
		} else {
			_, err = st.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return &s, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return nil, fmt.Errorf("batchstate: write %s %s: %w", flow, batchID, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// List returns the states of flow's batches (every flow when flow is "").
func (st *Store) List(ctx context.Context, flow string) ([]*State, error) {
	filter := ">"
	if flow != "" {
		filter = flow + ".>"
	}
	lister, err := st.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("batchstate: list: %w", err)
	}
	var out []*State
	for k := range lister.Keys() {
		e, err := st.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		var s State
		if err := json.Unmarshal(e.Value(), &s); err != nil {
			return nil, fmt.Errorf("batchstate: decode %s: %w", k, err)
		}
		out = append(out, &s)
	}
	return out, nil
}
