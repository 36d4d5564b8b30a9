package dlq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/streams"
)

// ErrNoReason is returned by Replay without a reason: the audit record of
// a replay says why it was done.
var ErrNoReason = errors.New("dlq: a replay needs a reason")

// ErrNotAnEvent is returned by Event for a payload that is not a Sinew
// event with an envelope.
var ErrNotAnEvent = errors.New("dlq: payload is not a Sinew event")

// eventTypes are the events of the streams whose payload wraps what a
// source sent; the other streams' events are read by their envelope.
var eventTypes = map[string]func() proto.Message{
	streams.HL7In:   func() proto.Message { return &sinewv1.Hl7Received{} },
	streams.FHIRIn:  func() proto.Message { return &sinewv1.FhirResourceReceived{} },
	streams.BatchIn: func() proto.Message { return &sinewv1.BatchManifest{} },
}

// Original returns the bytes the source sent, exactly as received: an
// HL7 message's text (HL7_IN), a FHIR resource's JSON (FHIR_IN). For
// other streams, whose messages Sinew made, it is the stored message.
// An HL7 message too large for one JetStream message is read back from
// the hl7_bodies object store its receipt names.
func (s *Store) Original(ctx context.Context, d *sinewv1.DeadLetter) ([]byte, error) {
	if !d.GetPayloadAvailable() {
		return nil, ErrNoPayload
	}
	ev, err := decode(d)
	if err != nil {
		return nil, err
	}
	switch ev := ev.(type) {
	case *sinewv1.Hl7Received:
		if name := ev.GetBodyObject(); name != "" && len(ev.GetRaw()) == 0 {
			return streams.HL7Body(ctx, s.js, name)
		}
		return ev.GetRaw(), nil
	case *sinewv1.FhirResourceReceived:
		return ev.GetJson(), nil
	}
	return d.GetPayload(), nil
}

// Event returns the stored event without the source's bytes (Original
// has them): the receipt (Hl7Received, FhirResourceReceived,
// BatchManifest) on an ingest stream, else the event's Envelope.
func Event(d *sinewv1.DeadLetter) (proto.Message, error) {
	if !d.GetPayloadAvailable() {
		return nil, ErrNoPayload
	}
	ev, err := decode(d)
	if err != nil {
		return nil, err
	}
	switch ev := ev.(type) {
	case *sinewv1.Hl7Received:
		ev.Raw = nil
	case *sinewv1.FhirResourceReceived:
		ev.Json = nil
	case nil:
		return envelope(d.GetPayload())
	}
	return ev, nil
}

// decode returns the payload as its stream's event type, or nil when the
// stream has none in eventTypes.
func decode(d *sinewv1.DeadLetter) (proto.Message, error) {
	mk, ok := eventTypes[d.GetStream()]
	if !ok {
		return nil, nil
	}
	ev := mk()
	if err := proto.Unmarshal(d.GetPayload(), ev); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotAnEvent, d.GetStream(), err)
	}
	return ev, nil
}

// envelope reads field 1 of any Sinew event, its Envelope.
func envelope(b []byte) (*sinewv1.Envelope, error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, ErrNotAnEvent
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, ErrNotAnEvent
			}
			env := &sinewv1.Envelope{}
			if err := proto.Unmarshal(v, env); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrNotAnEvent, err)
			}
			return env, nil
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, ErrNotAnEvent
		}
		b = b[n:]
	}
	return nil, ErrNotAnEvent
}

// Selector chooses dead letters for a bulk replay (or a listing). Zero
// fields match everything.
type Selector struct {
	Flow string // the letter's flow
	Kind string // permanent, retries-exhausted, max-deliveries, terminated
	// Reason matches letters whose reason contains it, ignoring case: an
	// error code (EF04, "code 103") or any words of the text.
	Reason string
	// Code matches letters with this reason code (reason_code, e.g.
	// SINEW-HL7-103), ignoring case; "-" matches letters without one.
	Code string
	// Subject is a NATS subject filter (wildcards * and >) on the
	// original subject, e.g. hl7.in.*.RDS.>.
	Subject      string
	Since, Until time.Time // dead at in [Since, Until)
	// Replayed includes letters replayed or discarded before (a bulk
	// replay skips them unless forced).
	Replayed bool
}

// Match reports whether e is selected.
func (s Selector) Match(e *Entry) bool {
	d := e.Letter
	at := d.GetDeadAt().AsTime()
	switch {
	case s.Flow != "" && d.GetFlow() != s.Flow,
		s.Kind != "" && d.GetKind() != s.Kind,
		s.Reason != "" && !strings.Contains(strings.ToLower(d.GetReason()), strings.ToLower(s.Reason)),
		s.Code != "" && !codeMatches(s.Code, d.GetReasonCode()),
		s.Subject != "" && !SubjectMatches(s.Subject, d.GetSubject()),
		!s.Since.IsZero() && at.Before(s.Since),
		!s.Until.IsZero() && !at.Before(s.Until),
		!s.Replayed && e.Handled():
		return false
	}
	return true
}

// Empty reports whether s selects by nothing but Replayed.
func (s Selector) Empty() bool {
	return s.Flow == "" && s.Kind == "" && s.Reason == "" && s.Code == "" && s.Subject == "" && s.Since.IsZero() && s.Until.IsZero()
}

// codeMatches reports whether a letter's code is want ("-": no code).
func codeMatches(want, code string) bool {
	if want == "-" {
		return code == ""
	}
	return strings.EqualFold(want, code)
}

// SubjectMatches reports whether subject matches the NATS filter: "*"
// matches one token, a final ">" one or more.
func SubjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		switch {
		case tok == ">" && i == len(f)-1:
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(f) == len(s)
}

// Select returns the dead letters sel chooses among those on the DLQ
// subject filter (dlq.> when empty), oldest first.
func (s *Store) Select(ctx context.Context, filter string, sel Selector) ([]*Entry, error) {
	var out []*Entry
	err := s.List(ctx, filter, func(e *Entry) error {
		if sel.Match(e) {
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// ReplayAll replays each entry in order (see Replay) and calls done after
// each, with the error of that replay. Each is idempotent: a retried bulk
// replay republishes a letter under the same message id, which JetStream
// keeps once. It stops at the first error done returns.
func (s *Store) ReplayAll(ctx context.Context, entries []*Entry, actor, reason string, force bool, done func(*Entry, *ReplayInfo, error) error) error {
	if strings.TrimSpace(reason) == "" {
		return ErrNoReason
	}
	for _, e := range entries {
		ri, err := s.Replay(ctx, e.Seq, actor, reason, force)
		if err := done(e, ri, err); err != nil {
			return err
		}
	}
	return nil
}
