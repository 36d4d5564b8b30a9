package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publish stores m in the stream that holds its subject and returns the
// stream's acknowledgement. It behaves as jetstream's PublishMsg (the same
// errors; "no responders" retried twice, 250 ms apart, as a stream leader
// may be moving) but reads the usual acknowledgement without reflection:
// every message Sinew moves passes here several times.
func Publish(ctx context.Context, nc *nats.Conn, m *nats.Msg) (*jetstream.PubAck, error) {
	resp, err := nc.RequestMsgWithContext(ctx, m)
	for r := 0; errors.Is(err, nats.ErrNoResponders) && r < jetstream.DefaultPubRetryAttempts; r++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(jetstream.DefaultPubRetryWait):
		}
		resp, err = nc.RequestMsgWithContext(ctx, m)
	}
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, &UnavailableError{Err: jetstream.ErrNoStreamResponse}
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
			errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected) {
			return nil, &UnavailableError{Err: err}
		}
		return nil, err
	}
	ack, err := ParsePubAck(resp.Data)
	var api *jetstream.APIError
	if errors.As(err, &api) && api.Code == 503 {
		// "JetStream system temporarily unavailable", no quorum, a
		// leader not elected yet: the stream was not there to answer.
		return nil, &UnavailableError{Err: err}
	}
	return ack, err
}

// UnavailableError is a publish JetStream did not answer (no responders,
// a timeout, a lost connection) or answered "temporarily unavailable" (503):
// the bus was not there, the message was not refused. It wraps the cause,
// so errors.Is on jetstream's and nats's errors still holds.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return "jetstream unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// IsUnavailable reports whether err is, or wraps, an UnavailableError.
func IsUnavailable(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u)
}

// ParsePubAck reads a JetStream publish answer: the acknowledgement, or
// the *jetstream.APIError it carries. The shapes nats-server writes on
// success ({"stream":S[,"domain":D],"seq":N[,"duplicate": true]}) are read
// by hand; any other goes through encoding/json.
func ParsePubAck(b []byte) (*jetstream.PubAck, error) {
	if ack, ok := fastPubAck(b); ok {
		return ack, nil
	}
	var r struct {
		Error *jetstream.APIError `json:"error"`
		jetstream.PubAck
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, jetstream.ErrInvalidJSAck
	}
	if r.Error != nil {
		return nil, fmt.Errorf("nats: %w", r.Error)
	}
	if r.Stream == "" {
		return nil, jetstream.ErrInvalidJSAck
	}
	return &r.PubAck, nil
}

// fastPubAck reads the success shapes; ok is false for anything else.
func fastPubAck(b []byte) (*jetstream.PubAck, bool) {
	var ack jetstream.PubAck
	var ok bool
	if b, ok = cut(b, `{"stream":`); !ok {
		return nil, false
	}
	if ack.Stream, b, ok = plainString(b); !ok || ack.Stream == "" {
		return nil, false
	}
	if rest, found := cut(b, `,"domain":`); found {
		if ack.Domain, b, ok = plainString(rest); !ok {
			return nil, false
		}
	}
	if b, ok = cut(b, `,"seq":`); !ok {
		return nil, false
	}
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i > 1 && b[0] == '0' { // JSON has no leading zeros
		return nil, false
	}
	seq, err := strconv.ParseUint(string(b[:i]), 10, 64)
	if err != nil {
		return nil, false
	}
	ack.Sequence = seq
	switch b = b[i:]; {
	case string(b) == "}":
	case string(b) == `,"duplicate": true}`, string(b) == `,"duplicate":true}`:
		ack.Duplicate = true
	default:
		return nil, false
	}
	return &ack, true
}

// cut removes prefix from b.
func cut(b []byte, prefix string) ([]byte, bool) {
	if !bytes.HasPrefix(b, []byte(prefix)) {
		return b, false
	}
	return b[len(prefix):], true
}

// plainString reads a JSON string of printable ASCII without escapes (as
// stream and domain names are) at the start of b.
func plainString(b []byte) (string, []byte, bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", b, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return string(b[1:i]), b[i+1:], true
		case c < '!' || c > '~' || c == '\\':
			return "", b, false
		}
	}
	return "", b, false
}
