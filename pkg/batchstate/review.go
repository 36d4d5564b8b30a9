package batchstate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/streams"
)

// FileRejected is the step of a file that validation or mapping refused:
// its findings are recorded and nothing was posted. Such a record is
// keyed by the file's hash (FileID), not by its batch id, so a corrected
// file with the same batch id starts a batch of its own.
const FileRejected = "file-rejected"

// MaxFindings bounds the findings kept in a rejected file's state (the
// whole report is in the object store, State.Report).
const MaxFindings = 50

// DefaultStuckAfter is how long a batch may make no progress before it
// is reported stuck: above the loader's max_batch_time (2 h), which bounds
// a batch's time in Fusion.
const DefaultStuckAfter = 3 * time.Hour

// FileID is the batch-id argument under which a file's own record is
// kept (a rejected file, an operator's resolution of a file that never
// became a batch): the file's SHA-256.
func FileID(sha256 string) string { return "file:" + sha256 }

// ReconAttempts records the reconciler's failed attempts at a batch.
type ReconAttempts struct {
	Attempts     int       `json:"attempts"`
	LastError    string    `json:"last_error"`
	At           time.Time `json:"at"`
	DeadLettered bool      `json:"dead_lettered,omitempty"` // it gave up: the result is in the DLQ
}

// Resolution is an operator's decision that a batch needs nothing more
// (written by `sinew batches resolve`, audited).
type Resolution struct {
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	// The step, detail and verdict resolved: a batch that moves on (a
	// replay, a new verdict) is judged again.
	Step    string `json:"step"`
	Detail  string `json:"detail,omitempty"`
	Verdict string `json:"verdict,omitempty"`
}

// IsResolved reports whether an operator resolved the batch as it stands.
func (s *State) IsResolved() bool {
	r := s.Resolved
	return r != nil && r.Step == s.Step && r.Detail == s.Detail && r.Verdict == s.Verdict
}

// Problem kinds, the reasons a batch keeps a report from passing.
const (
	ProblemRejected     = "rejected"      // the file was refused with findings
	ProblemFailed       = "failed"        // the load or an import failed as a whole
	ProblemDeadLettered = "dead-lettered" // the reconciler gave up on it
	ProblemStuck        = "stuck"         // no progress for longer than the limit
	ProblemPending      = "unreconciled"  // on its way, not reconciled yet
)

// Problem is why a batch is not done.
type Problem struct {
	State *State
	Kind  string
	Why   string
}

// ReviewOptions are Review's clock and limit.
type ReviewOptions struct {
	Now        time.Time
	StuckAfter time.Duration // DefaultStuckAfter when 0
}

// Review returns the batches among states that keep a reconciliation
// report from passing, oldest first. A batch is done when it is reconciled
// (its verdict is the RECON board's to judge) or resolved by an operator;
// a rejected file is also done once a batch with its batch id or its bytes
// is reconciled with verdict pass or resolved (the corrected file
// superseded it). Everything else is a problem: rejected, failed,
// dead-lettered, stuck (no change for StuckAfter) or merely unreconciled.
func Review(states []*State, o ReviewOptions) []Problem {
	if o.StuckAfter <= 0 {
		o.StuckAfter = DefaultStuckAfter
	}
	settled := map[string]bool{} // batch ids and hashes of done batches
	for _, s := range states {
		if s.ByFile || !(s.IsResolved() || s.Step == Reconciled && s.Verdict == "pass") {
			continue
		}
		settled["id:"+s.Flow+"/"+s.BatchID] = true
		if s.SHA256 != "" {
			settled["sha:"+s.SHA256] = true
		}
	}
	var out []Problem
	for _, s := range states {
		if s.IsResolved() || s.Step == Reconciled {
			continue
		}
		p := Problem{State: s}
		switch {
		case s.Step == FileRejected:
			if s.BatchID != "" && settled["id:"+s.Flow+"/"+s.BatchID] || s.SHA256 != "" && settled["sha:"+s.SHA256] {
				continue
			}
			p.Kind = ProblemRejected
			p.Why = fmt.Sprintf("file %s rejected with %d findings", s.FileName, s.FindingsTotal)
			if len(s.Findings) > 0 {
				p.Why += "; first: " + s.Findings[0]
			}
		case s.Step == Failed:
			p.Kind, p.Why = ProblemFailed, "failed: "+s.Detail
		case s.Recon != nil && s.Recon.DeadLettered:
			p.Kind = ProblemDeadLettered
			p.Why = fmt.Sprintf("reconciliation dead-lettered after %d attempts (last %s): %s; step %s",
				s.Recon.Attempts, s.Recon.At.UTC().Format(time.RFC3339), s.Recon.LastError, s.Step)
		case o.Now.Sub(s.Updated) > o.StuckAfter:
			p.Kind = ProblemStuck
			p.Why = fmt.Sprintf("stuck at step %s: no progress since %s (%s, limit %s)", s.Step,
				s.Updated.UTC().Format(time.RFC3339), o.Now.Sub(s.Updated).Round(time.Minute), o.StuckAfter)
		default:
			p.Kind = ProblemPending
			p.Why = fmt.Sprintf("not reconciled yet: step %s since %s", s.Step, s.Updated.UTC().Format(time.RFC3339))
		}
		if s.Recon != nil && !s.Recon.DeadLettered && p.Kind != ProblemRejected {
			p.Why += fmt.Sprintf("; %d failed reconciliation attempts, last: %s", s.Recon.Attempts, s.Recon.LastError)
		}
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].State.Updated.Before(out[j].State.Updated) })
	return out
}

// Name is how a batch is named to an operator: its batch id, else its
// file name and hash.
func (s *State) Name() string {
	if s.BatchID != "" && !s.ByFile {
		return s.BatchID
	}
	if s.BatchID != "" && !strings.HasPrefix(s.BatchID, "file:") {
		return s.BatchID + " (file " + s.FileName + ")"
	}
	if len(s.SHA256) >= 12 {
		return s.FileName + " (sha256 " + s.SHA256[:12] + ")"
	}
	return s.FileName
}

// Arrived returns every batch of flow that arrived (flow "" is every
// flow): the recorded states, and a Received state for each manifest on
// BATCH_IN of a flow in perBatch whose file no state records yet (not
// mapped yet, or refused before it became a batch). Manifest-only states
// are not stored; they carry FileID as their batch id.
func (st *Store) Arrived(ctx context.Context, js jetstream.JetStream, flow string, perBatch []string) ([]*State, error) {
	all, err := st.List(ctx, flow)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, s := range all {
		if s.SHA256 != "" {
			known[s.Flow+"/"+s.SHA256] = true
		}
	}
	for _, f := range perBatch {
		if flow != "" && f != flow {
			continue
		}
		err := streams.Scan(ctx, js, streams.BatchIn, streams.BatchSubject(f), time.Time{}, func(m jetstream.Msg) error {
			var bm sinewv1.BatchManifest
			if proto.Unmarshal(m.Data(), &bm) != nil || bm.GetSha256() == "" || known[f+"/"+bm.GetSha256()] {
				return nil
			}
			known[f+"/"+bm.GetSha256()] = true
			at := time.Time{}
			if meta, err := m.Metadata(); err == nil {
				at = meta.Timestamp
			}
			if ra := bm.GetEnvelope().GetReceivedAt(); ra != nil {
				at = ra.AsTime()
			}
			s := &State{Flow: f, BatchID: bm.GetBatchId(), SHA256: bm.GetSha256(), FileName: bm.GetFileName(), Updated: at.UTC(), ByFile: true}
			if s.BatchID == "" {
				s.BatchID = FileID(bm.GetSha256())
			}
			s.Advance(Received, fmt.Sprintf("file %s, %d lines: not mapped yet", bm.GetFileName(), bm.GetLineCount()), at)
			all = append(all, s)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("batchstate: manifests of %s: %w", f, err)
		}
	}
	return all, nil
}

// ErrAmbiguous means a name matched more than one batch.
var ErrAmbiguous = errors.New("batchstate: more than one batch matches")

// Find returns the batch named id among states: by batch id, by its
// file's SHA-256 (or a prefix of at least 8 hex digits, or FileID), or by
// file name.
func Find(states []*State, id string) (*State, error) {
	var hits []*State
	for _, match := range []func(*State) bool{
		func(s *State) bool { return s.BatchID == id },
		func(s *State) bool {
			h := strings.TrimPrefix(id, "file:")
			return len(h) >= 8 && strings.HasPrefix(s.SHA256, h)
		},
		func(s *State) bool { return s.FileName != "" && s.FileName == id },
	} {
		for _, s := range states {
			if match(s) {
				hits = append(hits, s)
			}
		}
		if len(hits) > 0 {
			break
		}
	}
	switch len(hits) {
	case 0:
		return nil, fmt.Errorf("%w %q (not by batch id, file hash or file name)", ErrNotFound, id)
	case 1:
		return hits[0], nil
	}
	// A rejected file and its corrected batch share a batch id: the batch
	// of its own wins.
	var own []*State
	for _, s := range hits {
		if !s.ByFile {
			own = append(own, s)
		}
	}
	if len(own) == 1 {
		return own[0], nil
	}
	return nil, fmt.Errorf("%w: %q (%d); name it by file hash", ErrAmbiguous, id, len(hits))
}

// key is the batch-id argument s is stored under.
func (s *State) key() string {
	if s.ByFile {
		return FileID(s.SHA256)
	}
	return s.BatchID
}

// Resolve records an operator's resolution of s (a state from Arrived):
// the batch no longer fails a report. A manifest-only state is stored
// under its file's id.
func (st *Store) Resolve(ctx context.Context, s *State, by, reason string) (*State, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, errors.New("batchstate: a resolution needs a reason")
	}
	now := st.now().UTC()
	return st.Update(ctx, s.Flow, s.key(), func(cur *State) error {
		if cur.Step == "" { // only on BATCH_IN so far
			*cur = *s
			cur.History = append([]Event(nil), s.History...)
		}
		cur.Resolved = &Resolution{By: by, Reason: reason, At: now, Step: cur.Step, Detail: cur.Detail, Verdict: cur.Verdict}
		cur.History = append(cur.History, Event{Step: "resolved", At: now, Detail: by + ": " + reason})
		if len(cur.History) > maxHistory {
			cur.History = append(cur.History[:1], cur.History[len(cur.History)-maxHistory+1:]...)
		}
		return nil
	})
}

// RecordRejectedFile records a file refused with findings under its
// file's id (FileID): batchID may be empty when the header could not be read.
func (st *Store) RecordRejectedFile(ctx context.Context, flow, batchID, sha256, fileName string, received time.Time, findings []string, total int, report string) error {
	_, err := st.Update(ctx, flow, FileID(sha256), func(s *State) error {
		s.BatchID, s.SHA256, s.FileName, s.Report, s.ByFile = batchID, sha256, fileName, report, true
		s.Findings = append([]string(nil), findings[:min(len(findings), MaxFindings)]...)
		s.FindingsTotal = total
		if len(s.History) == 0 {
			s.Advance(Received, "file "+fileName, received)
		}
		s.Advance(FileRejected, fmt.Sprintf("%d findings (report %s)", total, report), st.now())
		return nil
	})
	return err
}

// RecordReconFailure counts a failed reconciliation attempt of a batch;
// final says the reconciler gave up (the result goes to the DLQ).
func (st *Store) RecordReconFailure(ctx context.Context, flow, batchID string, cause error, final bool) error {
	_, err := st.Update(ctx, flow, batchID, func(s *State) error {
		if s.Recon == nil {
			s.Recon = &ReconAttempts{}
		}
		s.Recon.Attempts++
		s.Recon.LastError, s.Recon.At, s.Recon.DeadLettered = truncate(cause.Error(), 300), st.now().UTC(), final
		return nil
	})
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
