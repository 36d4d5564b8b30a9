package track

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/streams"
)

// ErrNoIndex: no console answered a lookup (none running, or none
// reachable with the permission to answer).
var ErrNoIndex = errors.New("track: no console answers lookups (" + streams.TrackLookup + "): is the console running?")

// lookupRequest asks for the timeline of one key: the hash of an
// identifier, never the identifier.
type lookupRequest struct {
	Key string `json:"key"`
}

type lookupReply struct {
	Hops []Hop `json:"hops,omitempty"`
	// NotFound: no hop under the key (ErrNotFound).
	NotFound bool   `json:"not_found,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Status is how far an index has come.
type Status struct {
	// Watermark is the last audit sequence indexed.
	Watermark uint64 `json:"watermark"`
	// AuditLastSeq is AUDIT's last sequence when asked.
	AuditLastSeq uint64 `json:"audit_last_seq"`
	Error        string `json:"error,omitempty"`
}

// Lag is how many audit records the index has yet to read.
func (s Status) Lag() uint64 { return s.AuditLastSeq - min(s.Watermark, s.AuditLastSeq) }

// StatusOf reads idx's watermark and AUDIT's last sequence.
func StatusOf(ctx context.Context, js jetstream.JetStream, idx *Index) (Status, error) {
	wm, err := idx.Watermark()
	if err != nil {
		return Status{}, err
	}
	s, err := js.Stream(ctx, streams.Audit)
	if err != nil {
		return Status{}, fmt.Errorf("track: AUDIT: %w", err)
	}
	return Status{Watermark: wm, AuditLastSeq: s.CachedInfo().State.LastSeq}, nil
}

// Serve answers lookups and status requests from idx on nc (queue group
// streams.TrackQueue: one answer per request whatever the consoles) until
// ctx ends. It returns once subscribed.
func Serve(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, idx *Index) error {
	respond := func(m *nats.Msg, v any) {
		b, err := json.Marshal(v)
		if err == nil && int64(len(b)) > nc.MaxPayload() {
			b, _ = json.Marshal(lookupReply{Error: fmt.Sprintf("timeline of %d bytes exceeds the server's max payload", len(b))})
		}
		_ = m.Respond(b)
	}
	lookup, err := nc.QueueSubscribe(streams.TrackLookup, streams.TrackQueue, func(m *nats.Msg) {
		var req lookupRequest
		if err := json.Unmarshal(m.Data, &req); err != nil {
			respond(m, lookupReply{Error: "bad request"})
			return
		}
		hops, err := idx.Lookup(req.Key)
		switch {
		case errors.Is(err, ErrNotFound):
			respond(m, lookupReply{NotFound: true})
		case err != nil:
			respond(m, lookupReply{Error: err.Error()})
		default:
			respond(m, lookupReply{Hops: hops})
		}
	})
	if err != nil {
		return fmt.Errorf("track: serve lookups: %w", err)
	}
	status, err := nc.QueueSubscribe(streams.TrackStatus, streams.TrackQueue, func(m *nats.Msg) {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, err := StatusOf(sctx, js, idx)
		if err != nil {
			st.Error = err.Error()
		}
		respond(m, st)
	})
	if err != nil {
		_ = lookup.Unsubscribe()
		return fmt.Errorf("track: serve status: %w", err)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("track: serve: %w", err)
	}
	go func() {
		<-ctx.Done()
		_ = lookup.Unsubscribe()
		_ = status.Unsubscribe()
	}()
	return nil
}

// Ask asks a console for the timeline of key (Key of the identifier).
func Ask(ctx context.Context, nc *nats.Conn, key string) ([]Hop, error) {
	if _, err := decodeKey(key); err != nil {
		return nil, err
	}
	req, _ := json.Marshal(lookupRequest{Key: key})
	var rep lookupReply
	if err := request(ctx, nc, streams.TrackLookup, req, &rep); err != nil {
		return nil, err
	}
	switch {
	case rep.NotFound:
		return nil, ErrNotFound
	case rep.Error != "":
		return nil, fmt.Errorf("track: console: %s", rep.Error)
	}
	return rep.Hops, nil
}

// AskStatus asks a console how far its index has come.
func AskStatus(ctx context.Context, nc *nats.Conn) (Status, error) {
	var st Status
	if err := request(ctx, nc, streams.TrackStatus, []byte("{}"), &st); err != nil {
		return st, err
	}
	if st.Error != "" {
		return st, fmt.Errorf("track: console: %s", st.Error)
	}
	return st, nil
}

func request(ctx context.Context, nc *nats.Conn, subject string, data []byte, v any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	m, err := nc.RequestWithContext(ctx, subject, data)
	if errors.Is(err, nats.ErrNoResponders) {
		return ErrNoIndex
	}
	if err != nil {
		return fmt.Errorf("track: %s: %w", subject, err)
	}
	if err := json.Unmarshal(m.Data, v); err != nil {
		return fmt.Errorf("track: %s: answer: %w", subject, err)
	}
	return nil
}
