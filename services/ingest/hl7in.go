package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/hl7receipt"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/telemetry"
)

// RejectedHeader, on a message kept in HL7_IN although it was rejected,
// says why (PHI-free); transform dead-letters such messages for review.
const RejectedHeader = "sinew-rejected"

// receiver commits each HL7 message to HL7_IN and builds the answer.
type receiver struct {
	cfg      Config
	bus      *bus.Bus
	group    *bus.Group // HL7_IN writes of concurrent connections, committed together
	js       jetstream.JetStream
	opts     hl7.Options
	hl7in    jetstream.Stream
	messages sync.Pool // of *hl7.Message, reused by ParseInto
	seqs     jetstream.KeyValue
	bodies   jetstream.ObjectStore // bodies too large for one JetStream message
	received *prometheus.CounterVec
	seqDups  *prometheus.CounterVec
	tracer   trace.Tracer
	// routed maps a sending application to the flows.yaml HL7 flow whose
	// subjects (and consumer) its messages take.
	routed map[string]string
}

func newReceiver(cfg Config, b *bus.Bus) (*receiver, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js := b.JetStream()
	hl7in, err := js.Stream(ctx, streams.HL7In)
	if err != nil {
		return nil, fmt.Errorf("ingest: stream %s: %w", streams.HL7In, err)
	}
	seqs, err := js.KeyValue(ctx, streams.KVSequences)
	if err != nil {
		return nil, fmt.Errorf("ingest: bucket %s: %w", streams.KVSequences, err)
	}
	bodies, err := js.ObjectStore(ctx, streams.ObjHL7Bodies)
	if err != nil {
		return nil, fmt.Errorf("ingest: object store %s: %w", streams.ObjHL7Bodies, err)
	}
	received, err := telemetry.Register(b.Metrics(), prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sinew_ingest_hl7_messages_total", Help: "HL7 v2 messages received over MLLP, by flow, message type (MSH-9-1; other: not a standard code) and acknowledgement code (none: the sender asked for none).",
	}, []string{"flow", "type", "ack"}))
	if err != nil {
		return nil, err
	}
	seqDups, err := telemetry.Register(b.Metrics(), prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sinew_ingest_hl7_sequence_duplicates_total",
		Help: "HL7 messages whose MSH-13 was below the expected number: result=resend (same body as stored, not stored again) or kept (another body: stored and flagged).",
	}, []string{"result"}))
	if err != nil {
		return nil, err
	}
	routed := map[string]string{}
	if cfg.FlowsFile != "" {
		inv, err := flows.Load(cfg.FlowsFile)
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		for _, f := range inv.Flows {
			if f.HL7 != nil {
				for _, app := range f.HL7.SendingApplications {
					routed[app] = f.ID
				}
			}
		}
	}
	return &receiver{
		cfg: cfg, bus: b, group: b.NewGroup("hl7_in", cfg.HL7.GroupCommit), js: js, hl7in: hl7in, seqs: seqs, bodies: bodies, received: received, seqDups: seqDups, routed: routed,
		tracer:   b.Tracer("github.com/sinewhq/sinew/services/ingest"),
		opts:     hl7.Options{Charset: cfg.HL7.Charset, FallbackCharset: cfg.HL7.FallbackCharset},
		messages: sync.Pool{New: func() any { return new(hl7.Message) }},
	}, nil
}

// ServeMLLP answers one frame: usually one message, or a batch (answered
// with a batch of ACKs).
func (r *receiver) ServeMLLP(ctx context.Context, c *mllp.Conn, frame []byte) []byte {
	msgs, batch, err := hl7.Split(frame)
	if err != nil {
		ctx, cancel := context.WithTimeout(ctx, r.commitTimeoutFor(len(frame)))
		defer cancel()
		return r.reject(ctx, c, frame, nil, &hl7.ParseError{Code: hl7.CodeSegmentSequence, Msg: err.Error()})
	}
	if len(msgs) == 1 && batch == nil {
		return r.receive(ctx, c, frame) // the frame as received, byte for byte
	}
	var out []byte
	out = append(out, "BHS|^~\\&|"+r.cfg.HL7.Application+"|"+r.cfg.HL7.Facility+"\r"...)
	for _, m := range msgs {
		out = append(out, r.receive(ctx, c, m)...)
	}
	out = append(out, "BTS|"+strconv.Itoa(len(msgs))+"\r"...)
	return out
}

// outcome of a receipt, before it is spelled in the sender's ack mode.
type outcome int

const (
	accepted outcome = iota
	errored          // not stored: the sender should resend
	rejected         // never acceptable as sent
)

// receive commits one message and returns its acknowledgement.
func (r *receiver) receive(ctx context.Context, c *mllp.Conn, raw []byte) []byte {
	start := time.Now()
	// The root of the message's trace: publishing carries it to HL7_IN
	// (traceparent), and every later hop continues it (answer adds the
	// flow, type and ACK code; nothing from the message's content).
	ctx, span := r.tracer.Start(ctx, "hl7 receive", trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(attribute.String("network.protocol.name", "mllp"), attribute.String("messaging.destination.name", streams.HL7In))
	}
	ctx, cancel := context.WithTimeout(ctx, r.commitTimeoutFor(len(raw)))
	defer cancel()
	m := r.messages.Get().(*hl7.Message)
	defer r.messages.Put(m)
	if err := r.opts.ParseInto(m, raw); err != nil {
		return r.reject(ctx, c, raw, nil, hl7.ErrorOf(err))
	}
	facility := m.SendingFacility()
	if perr := r.authorize(c, facility); perr != nil {
		return r.reject(ctx, c, raw, m, perr)
	}
	ack := hl7.AckOptions{Application: r.cfg.HL7.Application, Facility: r.cfg.HL7.Facility}

	// MSH-13 sequence-number protocol, when the sender uses it and the
	// connection's peer may own sequence state (by default an mTLS identity).
	seq, hasSeq := m.SequenceNumber()
	owner, seqOn := r.sequenceOwner(c)
	useSeq := hasSeq && seqOn
	if hasSeq && !seqOn && seq == 0 && m.SegmentCount() == 1 {
		// A header-only sync request from a peer whose numbers are not
		// tracked: nothing to store; accepted, no expected number.
		return r.answer(ctx, m, nil, accepted, ack, "sequence sync, numbers not tracked for this peer", start)
	}
	if !(useSeq && seq == 0) { // a sequence sync carries no message to store
		if perr := m.CheckRequired(); perr != nil {
			return r.reject(ctx, c, raw, m, perr)
		}
	}
	var seqKey string
	var expected int64
	var seqRev uint64
	seqDup := false
	if useSeq {
		seqKey = bus.HashKey(owner, facility, m.SendingApplication())
		expected, seqRev = r.expectedSeq(ctx, seqKey)
		switch {
		case seq == 0: // the sender asks where to start
			next := max(expected, 1)
			ack.ExpectedSeq = &next
			return r.answer(ctx, m, nil, accepted, ack, "sequence sync", start)
		case expected > 0 && seq < expected:
			// A duplicate by number, but the number alone never drops a
			// message: it is stored as any other, so a resend (same control
			// id, same body) is recognised below and stored once, and
			// anything else is kept, flagged.
			seqDup = true
		case expected > 0 && seq > expected:
			ack.ExpectedSeq = &expected
			ack.Errors = []*hl7.ParseError{{Segment: "MSH", SegmentSeq: 1, Field: 13, Code: hl7.CodeSegmentSequence,
				Msg: fmt.Sprintf("sequence number %d received, %d expected", seq, expected)}}
			return r.answer(ctx, m, nil, rejected, ack, "sequence gap", start)
		}
	}

	bodyHex := hl7receipt.BodyHash(m)
	controlID := m.ControlID()
	// The first message with a control id is stored under facility + MSH-10;
	// a duplicate answer from JetStream then means a resend (same body: the
	// same answer again) or a reuse (another body: kept too, flagged, under
	// an id that adds the body hash). One write per message; reuse is seen
	// within the stream's duplicate window.
	// Sender = facility + application: two interfaces of one facility keep
	// independent MSH-10 counters.
	msgID := hl7receipt.MsgID(m, bodyHex)
	reused := false
	mkEvent := func(id string, reused bool) *sinewv1.Hl7Received {
		ev := r.event(m, raw, id, bodyHex, reused, c)
		if seqDup {
			ev.Warnings = append(ev.Warnings, fmt.Sprintf("sequence-duplicate: MSH-13 %d below the expected %d; kept, not dropped", seq, expected))
			ev.Envelope.BusinessKeys = sinewv1.SetKey(ev.Envelope.BusinessKeys, "sequence_duplicate", strconv.FormatInt(seq, 10))
		}
		return ev
	}
	ev := mkEvent(msgID, false)
	subject := r.subject(m)
	var pub *jetstream.PubAck
	err := r.fit(ctx, ev)
	if err == nil {
		pub, err = r.group.Publish(ctx, subject, msgID, ev)
	}
	if err == nil && pub.Duplicate && controlID != "" {
		same, cerr := r.sameBody(ctx, pub.Sequence, bodyHex)
		switch {
		case cerr != nil:
			// Cannot tell a resend from a new message: never guess "resend".
			err = cerr
		case !same:
			reused = true
			msgID += ":" + bodyHex
			ev = mkEvent(msgID, true)
			if err = r.fit(ctx, ev); err == nil {
				pub, err = r.group.Publish(ctx, subject, msgID, ev)
			}
		}
	}
	if err != nil {
		ack.Errors = []*hl7.ParseError{{Code: hl7.CodeInternal,
			Msg: "message not stored (" + publishReason(err) + "); please resend"}}
		return r.answer(ctx, m, ev, errored, ack, publishReason(err), start)
	}
	switch {
	case seqDup:
		// The expected number stays: this one was below it.
		ack.ExpectedSeq = &expected
		result := "kept"
		if pub.Duplicate {
			result = "resend"
		}
		r.seqDups.WithLabelValues(result).Inc()
		if !pub.Duplicate {
			r.bus.Logger().Warn().Str("control_id", controlID).Str("facility", facility).Int64("msh13", seq).
				Int64("expected", expected).Msg("hl7 sequence number below the expected one with a new body: stored and flagged")
		}
	case useSeq:
		next := seq + 1
		if err := r.storeSeq(ctx, seqKey, next, seqRev); err != nil {
			r.bus.Logger().Warn().Err(err).Str("control_id", controlID).Msg("sequence number not stored")
		}
		ack.ExpectedSeq = &next
	}
	detail := "stored"
	switch {
	case seqDup && !pub.Duplicate:
		detail = "sequence number " + strconv.FormatInt(seq, 10) + " below the expected " + strconv.FormatInt(expected, 10) + ": stored and flagged"
	case pub.Duplicate:
		detail = "duplicate of stream seq " + strconv.FormatUint(pub.Sequence, 10)
	case reused:
		detail = "control id reused with a different body"
	}
	ev.Envelope.BusinessKeys = sinewv1.SetKey(ev.Envelope.BusinessKeys, "stream_seq", strconv.FormatUint(pub.Sequence, 10))
	return r.answer(ctx, m, ev, accepted, ack, detail, start)
}

// answer audits the receipt and builds the ACK in the sender's mode.
func (r *receiver) answer(ctx context.Context, m *hl7.Message, ev *sinewv1.Hl7Received, o outcome, ack hl7.AckOptions, detail string, start time.Time) []byte {
	code, send := ackCode(m, o)
	label := code
	if !send {
		label = "none"
	}
	if err := r.audit(ctx, m, ev, label, detail); err != nil && o == accepted {
		// Stored but not audited: have the sender resend; the resend is a
		// duplicate and is audited then.
		o = errored
		ack.Errors = []*hl7.ParseError{{Code: hl7.CodeInternal, Msg: "receipt not recorded; please resend"}}
		code, send = ackCode(m, o)
		label = code
	}
	flow := ev.GetEnvelope().GetFlow()
	if flow == "" {
		flow = r.routed[m.SendingApplication()]
	}
	typ := hl7TypeLabel(m.Type())
	r.received.WithLabelValues(telemetry.SafeLabel(flow), typ, label).Inc()
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.String("sinew.flow", telemetry.SafeLabel(flow)), attribute.String("hl7.message_type", typ),
			attribute.String("hl7.ack_code", label))
		if o != accepted {
			span.SetStatus(codes.Error, "answered "+label)
		}
	}
	r.bus.Logger().Debug().Str("control_id", m.ControlID()).Str("facility", m.SendingFacility()).
		Str("type", m.Type()+"^"+m.Event()).Str("ack", label).Str("detail", detail).
		Int64("took_ms", time.Since(start).Milliseconds()).Msg("hl7 received")
	if !send {
		return nil
	}
	ack.Code = code
	return m.Ack(ack)
}

// ackCode spells an outcome in the sender's acknowledgement mode: original
// mode AA/AE/AR; enhanced mode a commit ACK (CA/CE/CR) when MSH-15 asks for
// one, else an application ACK (AA/AE/AR) when MSH-16 does, else nothing.
func ackCode(m *hl7.Message, o outcome) (string, bool) {
	original := [...]string{hl7.AA, hl7.AE, hl7.AR}
	if !m.EnhancedMode() {
		return original[o], true
	}
	wants := func(mode string) bool {
		switch mode {
		case "AL":
			return true
		case "SU":
			return o == accepted
		case "ER":
			return o != accepted
		}
		return false
	}
	accept := m.AcceptAckType()
	if accept == "" {
		accept = "AL"
	}
	if wants(accept) {
		return [...]string{hl7.CA, hl7.CE, hl7.CR}[o], true
	}
	if wants(m.AppAckType()) {
		return original[o], true
	}
	return "", false
}

// ServeMLLPOversize answers a frame over mllp.max_frame_size: AR (CR)
// with an ERR saying so, after keeping its first bytes (head) in HL7_IN as
// a rejected message, marked truncated, with the size that arrived.
func (r *receiver) ServeMLLPOversize(ctx context.Context, c *mllp.Conn, head []byte, size int) []byte {
	ctx, cancel := context.WithTimeout(ctx, r.commitTimeout())
	defer cancel()
	limit := r.cfg.MLLP.MaxFrameSize
	if limit <= 0 {
		limit = mllp.DefaultMaxFrameSize
	}
	perr := &hl7.ParseError{Code: hl7.CodeValueTooLong,
		Msg: fmt.Sprintf("message too large: %d bytes, limit %d; first %d bytes kept", size, limit, len(head))}
	m := r.messages.Get().(*hl7.Message)
	defer r.messages.Put(m)
	// The head usually holds the whole MSH: answer in the sender's mode,
	// with its control id, when it parses.
	if err := r.opts.ParseInto(m, head); err != nil {
		return r.rejectSized(ctx, c, head, int64(size), nil, perr)
	}
	return r.rejectSized(ctx, c, head, int64(size), m, perr)
}

// reject answers a message that is not acceptable as sent (AR/CR), after
// keeping its bytes in HL7_IN, marked, for review.
func (r *receiver) reject(ctx context.Context, c *mllp.Conn, raw []byte, m *hl7.Message, perr *hl7.ParseError) []byte {
	return r.rejectSized(ctx, c, raw, int64(len(raw)), m, perr)
}

// rejectSized is reject for raw, the first bytes of size that arrived.
func (r *receiver) rejectSized(ctx context.Context, c *mllp.Conn, raw []byte, size int64, m *hl7.Message, perr *hl7.ParseError) []byte {
	if perr == nil {
		perr = &hl7.ParseError{Code: hl7.CodeInternal, Msg: "unreadable message"}
	}
	sum := sha256.Sum256(raw)
	ev := &sinewv1.Hl7Received{
		Envelope: &sinewv1.Envelope{
			EventId: bus.EventID("hl7-rejected:" + hex.EncodeToString(sum[:])), Flow: r.cfg.HL7.DefaultFlow,
			SourceSystem: "hl7", ReceivedAt: timestamppb.Now(),
			BusinessKeys: sinewv1.KeysOf("rejected", strconv.Itoa(perr.Code)),
		},
		Raw: raw, Listener: r.cfg.MLLPAddr, Warnings: []string{"rejected: " + perr.Error()},
		RawSize: size, RawTruncated: size > int64(len(raw)),
	}
	if c != nil {
		ev.Peer = c.RemoteAddr().String()
	}
	facility, typ := "unknown", "REJECTED"
	if m != nil {
		facility = m.SendingFacility()
		ev.SendingApplication, ev.SendingFacility, ev.ControlId = m.SendingApplication(), facility, m.ControlID()
		ev.MessageType, ev.TriggerEvent, ev.Version = m.Type(), m.Event(), m.Version()
		ev.Envelope.SourceId = ev.ControlId
	}
	msg := &nats.Msg{Subject: streams.HL7Subject(facility, typ, strconv.Itoa(perr.Code)), Header: nats.Header{}}
	msg.Header.Set(RejectedHeader, perr.Error())
	msg.Header.Set(reason.Header, string(perr.ReasonCode()))
	kept := r.fit(ctx, ev)
	if kept == nil {
		if data, err := proto.Marshal(ev); err == nil {
			msg.Data = data
			_, kept = r.group.PublishRaw(ctx, msg, "hl7-rejected:"+hex.EncodeToString(sum[:16]))
		} else {
			kept = err
		}
	}
	opts := hl7.AckOptions{Code: hl7.AR, Application: r.cfg.HL7.Application, Facility: r.cfg.HL7.Facility, Errors: []*hl7.ParseError{perr}}
	detail := "rejected and kept"
	outcomeIfParsed := rejected
	if kept != nil {
		// Not kept: an AR would make the sender drop it. AE asks it to resend.
		detail = "rejected; not kept: " + publishReason(kept)
		opts.Code = hl7.AE
		outcomeIfParsed = errored
	}
	r.bus.Logger().Info().Str("error", perr.Error()).Str("kept", fmt.Sprint(kept == nil)).Msg("hl7 rejected")
	if m == nil {
		_ = r.audit(ctx, nil, ev, hl7.AR, detail)
		r.received.WithLabelValues(telemetry.SafeLabel(r.cfg.HL7.DefaultFlow), "unparsed", hl7.AR).Inc()
		return hl7.Nak(raw, opts)
	}
	return r.answer(ctx, m, ev, outcomeIfParsed, opts, detail, time.Now())
}

// Sequence-number modes (HL7Config.SequenceNumbers).
const (
	SeqMTLS = "mtls" // MSH-13 state only for peers with a verified client certificate (default)
	SeqAll  = "all"  // also plain MLLP peers, keyed by their IP address
	SeqOff  = "off"  // MSH-13 ignored
)

// sequenceOwner names who owns the MSH-13 state of c's messages, and
// whether there is one. An unauthenticated client must not be able to move
// another sender's expected number, so by default only an mTLS identity
// (the certificate's common name) owns state.
func (r *receiver) sequenceOwner(c *mllp.Conn) (string, bool) {
	mode := r.cfg.HL7.SequenceNumbers
	if mode == SeqOff || c == nil {
		return "", false
	}
	if certs := c.PeerCertificates(); len(certs) > 0 {
		return "cn:" + certs[0].Subject.CommonName, true
	}
	if mode != SeqAll {
		return "", false
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		host = c.RemoteAddr().String()
	}
	return "ip:" + host, true
}

// authorize checks, under mutual TLS, that the client certificate may send
// for facility.
func (r *receiver) authorize(c *mllp.Conn, facility string) *hl7.ParseError {
	allowed := r.cfg.MLLP.TLS.Facilities
	if c == nil || len(allowed) == 0 || len(c.PeerCertificates()) == 0 {
		return nil
	}
	cn := c.PeerCertificates()[0].Subject.CommonName
	if slices.Contains(allowed[cn], facility) {
		return nil
	}
	return &hl7.ParseError{Segment: "MSH", SegmentSeq: 1, Field: 4, Component: 1, Code: hl7.CodeTableValue,
		Msg: "sending facility not allowed for client certificate " + cn}
}

// event is the Hl7Received committed for m.
// subject is where m is kept: its flow's subjects when flows.yaml routes
// its sending application, else the default four-token subject.
func (r *receiver) subject(m *hl7.Message) string {
	if flow, ok := r.routed[m.SendingApplication()]; ok {
		return streams.HL7FlowSubject(flow, m.SendingFacility(), m.Type(), m.Event())
	}
	return streams.HL7Subject(m.SendingFacility(), m.Type(), m.Event())
}

func (r *receiver) event(m *hl7.Message, raw []byte, msgID, bodyHex string, reused bool, c *mllp.Conn) *sinewv1.Hl7Received {
	flow := r.routed[m.SendingApplication()]
	if f := r.cfg.HL7.Flows[m.SendingApplication()]; f != "" {
		flow = f
	}
	if flow == "" {
		flow = r.cfg.HL7.DefaultFlow
	}
	ev := hl7receipt.New(m, raw, hl7receipt.Receipt{MsgID: msgID, BodySHA256: bodyHex, Flow: flow,
		Listener: r.cfg.MLLPAddr, Reused: reused, ReceivedAt: time.Now()})
	if c != nil {
		ev.Peer = c.RemoteAddr().String()
	}
	return ev
}

// audit records the receipt: control id, facility, type and answer; the
// patient only as a keyed hash.
func (r *receiver) audit(ctx context.Context, m *hl7.Message, ev *sinewv1.Hl7Received, code, detail string) error {
	a := &sinewv1.AuditEvent{
		Actor: r.bus.Service(), Action: "receive", Flow: ev.GetEnvelope().GetFlow(), Hop: "ingest", Outcome: code,
		EventId: ev.GetEnvelope().GetEventId(), IdempotencyKey: ev.GetEnvelope().GetIdempotencyKey(),
		Stream: streams.HL7In, BusinessKeys: ev.GetEnvelope().GetBusinessKeys(),
	}
	if m != nil {
		a.Subject = r.subject(m)
		a.Detail = fmt.Sprintf("control_id=%s facility=%s type=%s^%s ack=%s: %s", m.ControlID(), m.SendingFacility(), m.Type(), m.Event(), code, detail)
		if id := m.Get("PID-3-1"); id != "" {
			a.PatientRefs = []string{r.bus.PatientRef("PID-3:"+m.Get("PID-3-4"), id)}
		}
		if s := ev.GetEnvelope().BusinessKey("stream_seq"); s != "" {
			a.StreamSeq, _ = strconv.ParseUint(s, 10, 64)
		}
	} else {
		a.Detail = "unparseable message, ack=" + code + ": " + detail
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.commitTimeout())
	defer cancel()
	return r.bus.Audit().Write(wctx, a)
}

// hl7TypeLabel is an MSH-9-1 message type as a label: three capitals or
// digits (ADT, RDS, DFT, Z01...), else "other". The field is the sender's,
// so anything else is not trusted into a series.
func hl7TypeLabel(t string) string {
	if len(t) != 3 {
		return "other"
	}
	for i := 0; i < 3; i++ {
		if c := t[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return "other"
		}
	}
	return t
}

// payloadHeadroom is left in a JetStream message for its headers
// (Nats-Msg-Id, traceparent, sinew-rejected).
const payloadHeadroom = 4 << 10

// fit keeps ev within one JetStream message: a body too large for one
// (over NATS's max payload) is put whole in the hl7_bodies object store,
// named by its SHA-256 so a resend finds it there, and ev carries that name
// (body_object) instead of the bytes. The object is written before the
// HL7_IN message that references it, and both before the answer.
func (r *receiver) fit(ctx context.Context, ev *sinewv1.Hl7Received) error {
	if int64(proto.Size(ev))+payloadHeadroom <= r.bus.Conn().MaxPayload() {
		return nil
	}
	sum := sha256.Sum256(ev.Raw)
	name := "sha256-" + hex.EncodeToString(sum[:])
	if info, err := r.bodies.GetInfo(ctx, name); err != nil || info.Size != uint64(len(ev.Raw)) {
		if _, err := r.bodies.PutBytes(ctx, name, ev.Raw); err != nil {
			return fmt.Errorf("keep body in object store %s: %w", streams.ObjHL7Bodies, err)
		}
	}
	ev.BodyObject, ev.Raw = name, nil
	ev.Envelope.BusinessKeys = sinewv1.SetKey(ev.Envelope.BusinessKeys, "body_object", name)
	return nil
}

// commitTimeoutFor is the commit timeout for a message of n bytes: large
// ones get a second more per MiB (they go to the object store in chunks).
func (r *receiver) commitTimeoutFor(n int) time.Duration {
	return r.commitTimeout() + time.Duration(n>>20)*time.Second
}

func (r *receiver) commitTimeout() time.Duration {
	if t := r.cfg.HL7.CommitTimeout; t > 0 {
		return t
	}
	return 5 * time.Second
}

// sameBody reports whether the message stored at HL7_IN seq has the body
// hash bodyHex (a resend), as opposed to another body (a reused control id).
// When it cannot tell, it returns an error: the sender is asked to resend.
func (r *receiver) sameBody(ctx context.Context, seq uint64, bodyHex string) (bool, error) {
	stored, err := r.hl7in.GetMsg(ctx, seq)
	if err != nil {
		return false, fmt.Errorf("compare with stored message: %w", err)
	}
	var ev sinewv1.Hl7Received
	if err := proto.Unmarshal(stored.Data, &ev); err != nil {
		return false, fmt.Errorf("compare with stored message: %w", err)
	}
	return ev.GetEnvelope().BusinessKey("body_sha256") == bodyHex, nil
}

// expectedSeq is the next MSH-13 expected from a sender (0 = unknown).
func (r *receiver) expectedSeq(ctx context.Context, key string) (int64, uint64) {
	e, err := r.seqs.Get(ctx, key)
	if err != nil || len(e.Value()) != 8 {
		return 0, 0
	}
	return int64(binary.BigEndian.Uint64(e.Value())), e.Revision()
}

func (r *receiver) storeSeq(ctx context.Context, key string, next int64, rev uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(next))
	if rev == 0 {
		_, err := r.seqs.Put(ctx, key, b[:])
		return err
	}
	_, err := r.seqs.Update(ctx, key, b[:], rev)
	return err
}

// publishReason names a publish failure for the sender and the log (no PHI).
func publishReason(err error) string {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr):
		return "JetStream: " + apiErr.Description
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return "JetStream unavailable"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return "JetStream did not answer in time"
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrDisconnected):
		return "NATS connection down"
	}
	return "store failed"
}
