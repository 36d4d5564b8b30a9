package audit

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/streams"
)

// Checkpoint is what a verification saw, kept outside the AUDIT stream (a
// file in the operator's data dir): each chain's last verified record and
// the stream's last sequence. The next verification fails if any of it is
// gone — an emptied, deleted or re-created stream cannot pass as "0 records,
// chains intact".
type Checkpoint struct {
	// LastSeq is AUDIT's last stream sequence at the checkpoint.
	LastSeq uint64 `json:"last_seq"`
	// Writers maps a chain id to its last verified record.
	Writers map[string]Mark `json:"writers"`
	// Accepted maps a stream sequence to the operator's review of its
	// problem ("who, when, why"): reported, no longer failing.
	Accepted map[string]string `json:"accepted,omitempty"`
	// UnsignedBefore: records below this stream sequence were written
	// before records carried a MAC; they are checked by hash and link only.
	UnsignedBefore uint64 `json:"unsigned_before,omitempty"`
	// At is when the checkpoint was written.
	At time.Time `json:"at"`
}

// Mark is one chain's last verified record.
type Mark struct {
	Seq       uint64 `json:"seq"`
	Hash      string `json:"hash"` // hex
	StreamSeq uint64 `json:"stream_seq"`
}

// LoadCheckpoint reads a checkpoint file; a missing file is an empty
// checkpoint and found false.
func LoadCheckpoint(path string) (cp Checkpoint, found bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Checkpoint{Writers: map[string]Mark{}}, false, nil
	}
	if err != nil {
		return cp, false, fmt.Errorf("audit: checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		return cp, false, fmt.Errorf("audit: checkpoint %s: %w", path, err)
	}
	if cp.Writers == nil {
		cp.Writers = map[string]Mark{}
	}
	return cp, true, nil
}

// Save writes the checkpoint atomically, mode 0600.
func (cp Checkpoint) Save(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("audit: checkpoint: %w", err)
	}
	b, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("audit: checkpoint: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("audit: checkpoint: %w", err)
	}
	return nil
}

// Accept marks the problems found at these stream sequences as reviewed.
func (v *Verifier) Accept(cp Checkpoint) {
	for i, p := range v.Problems {
		if why, ok := cp.Accepted[strconv.FormatUint(p.StreamSeq, 10)]; ok && p.StreamSeq != 0 {
			v.Problems[i].Accepted = why
		}
	}
}

// CheckAgainst compares what was read with a checkpoint: every chain it
// holds must still reach its mark with the same hash, and the stream must
// not have gone back. Call it after the last Add.
func (v *Verifier) CheckAgainst(cp Checkpoint, lastSeq uint64) {
	if lastSeq < cp.LastSeq {
		v.Problems = append(v.Problems, Problem{Kind: ProblemMissing, StreamSeq: lastSeq,
			Detail: fmt.Sprintf("AUDIT's last sequence is %d, the checkpoint saw %d: the stream was emptied or re-created", lastSeq, cp.LastSeq)})
	}
	ids := make([]string, 0, len(cp.Writers))
	for id := range cp.Writers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := cp.Writers[id]
		h, ok := v.heads[id]
		switch {
		case !ok:
			v.Problems = append(v.Problems, Problem{Writer: id, Seq: m.Seq, StreamSeq: m.StreamSeq, Kind: ProblemMissing,
				Detail: fmt.Sprintf("the chain (verified up to seq %d) is gone from the stream", m.Seq)})
		case h.seq < m.Seq:
			v.Problems = append(v.Problems, Problem{Writer: id, Seq: m.Seq, StreamSeq: m.StreamSeq, Kind: ProblemMissing,
				Detail: fmt.Sprintf("the chain ends at seq %d, the checkpoint verified seq %d", h.seq, m.Seq)})
		case h.seq == m.Seq && hex.EncodeToString(h.hash) != m.Hash:
			v.Problems = append(v.Problems, Problem{Writer: id, Seq: m.Seq, StreamSeq: h.streamSeq, Kind: ProblemMissing,
				Detail: "the record at the checkpoint's seq has another hash: the chain was replaced"})
		}
	}
}

// Checkpoint is cp advanced to what v verified: chain marks never go back,
// and the stream's last sequence is lastSeq.
func (v *Verifier) Checkpoint(cp Checkpoint, lastSeq uint64) Checkpoint {
	out := Checkpoint{LastSeq: max(cp.LastSeq, lastSeq), Writers: map[string]Mark{}, Accepted: cp.Accepted,
		UnsignedBefore: cp.UnsignedBefore, At: time.Now().UTC()}
	for id, m := range cp.Writers {
		out.Writers[id] = m
	}
	for id, h := range v.heads {
		if m, ok := out.Writers[id]; !ok || h.seq >= m.Seq {
			out.Writers[id] = Mark{Seq: h.seq, Hash: hex.EncodeToString(h.hash), StreamSeq: h.streamSeq}
		}
	}
	return out
}

// CheckConfig reports where the stream's configuration is weaker than the
// topology's (want): shorter retention, deletes or purges allowed, fewer
// replicas, memory storage, a message or byte limit, another retention.
func CheckConfig(got, want jetstream.StreamConfig) []Problem {
	var out []Problem
	weak := func(format string, a ...any) {
		out = append(out, Problem{Kind: ProblemConfig, Detail: got.Name + ": " + fmt.Sprintf(format, a...)})
	}
	if want.MaxAge > 0 && got.MaxAge != 0 && got.MaxAge < want.MaxAge { // 0 keeps forever
		weak("max age %s, configured %s", got.MaxAge, want.MaxAge)
	}
	if want.DenyDelete && !got.DenyDelete {
		weak("deny delete is off")
	}
	if want.DenyPurge && !got.DenyPurge {
		weak("deny purge is off")
	}
	if got.Replicas < want.Replicas {
		weak("%d replicas, configured %d", got.Replicas, want.Replicas)
	}
	if got.Storage != want.Storage {
		weak("storage %s, configured %s", got.Storage, want.Storage)
	}
	if got.Retention != want.Retention {
		weak("retention %s, configured %s", got.Retention, want.Retention)
	}
	limit := func(name string, g, w int64) {
		if g > 0 && (w <= 0 || g < w) {
			weak("%s %d, configured %d", name, g, w)
		}
	}
	limit("max messages", got.MaxMsgs, want.MaxMsgs)
	limit("max bytes", got.MaxBytes, want.MaxBytes)
	limit("max messages per subject", got.MaxMsgsPerSubject, want.MaxMsgsPerSubject)
	if got.Sealed != want.Sealed && !got.Sealed {
		weak("no longer sealed")
	}
	for _, s := range want.Subjects {
		found := false
		for _, g := range got.Subjects {
			found = found || g == s
		}
		if !found {
			weak("subjects %v lack %s", got.Subjects, s)
		}
	}
	return out
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Secret is the deployment's audit secret: every record's MAC is
	// checked. Empty: hashes and links only (a forgery with a correct hash
	// then blames the genuine record).
	Secret []byte
	// Want is AUDIT's configuration in the topology (streams.New).
	Want jetstream.StreamConfig
	// Checkpoint is the previous verification's (LoadCheckpoint).
	Checkpoint Checkpoint
	// HopWriters, when set, maps an audit hop to the services whose chains
	// may write it (streams.Topology.HopUsers); a record of another
	// service on that hop is named as forged. Hops not listed are free.
	HopWriters map[string][]string
}

// Verify checks the whole AUDIT stream: its configuration against Want, its
// state (nothing deleted, nothing dropped from the front), every record's
// MAC, hash and link, and that everything the checkpoint saw is still
// there. It returns the findings and the checkpoint to keep.
func Verify(ctx context.Context, js jetstream.JetStream, o VerifyOptions) (*Verifier, Checkpoint, error) {
	v := NewVerifier()
	if len(o.Secret) > 0 {
		v = NewKeyedVerifier(o.Secret)
	}
	v.hops = o.HopWriters
	v.unsignedBefore = o.Checkpoint.UnsignedBefore
	cp := o.Checkpoint
	if cp.Writers == nil {
		cp.Writers = map[string]Mark{}
	}
	st, err := js.Stream(ctx, streams.Audit)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		v.Problems = append(v.Problems, Problem{Kind: ProblemMissing, Detail: "stream " + streams.Audit + " does not exist"})
		v.CheckAgainst(cp, 0)
		return v, cp, nil
	}
	if err != nil {
		return nil, cp, fmt.Errorf("audit: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, cp, fmt.Errorf("audit: %w", err)
	}
	v.Problems = append(v.Problems, CheckConfig(info.Config, o.Want)...)
	state := info.State
	switch {
	case state.Msgs == 0 && state.LastSeq > 0:
		v.Problems = append(v.Problems, Problem{Kind: ProblemMissing, StreamSeq: state.LastSeq,
			Detail: fmt.Sprintf("the stream is empty after %d records: emptied", state.LastSeq)})
	case state.Msgs > 0 && state.FirstSeq > 1:
		v.Problems = append(v.Problems, Problem{Kind: ProblemMissing, StreamSeq: state.FirstSeq,
			Detail: fmt.Sprintf("records before stream seq %d are gone", state.FirstSeq)})
	}
	if state.NumDeleted > 0 {
		v.Problems = append(v.Problems, Problem{Kind: ProblemMissing,
			Detail: fmt.Sprintf("%d records were deleted from the stream", state.NumDeleted)})
	}
	if err := Read(ctx, js, "audit.>", func(e Entry) error { v.AddEntry(e); return nil }); err != nil {
		return nil, cp, err
	}
	v.Accept(cp)
	v.CheckAgainst(cp, state.LastSeq)
	return v, v.Checkpoint(cp, state.LastSeq), nil
}
