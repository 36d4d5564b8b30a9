package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/telemetry"
)

// Delivery is one delivery of a stream message to a handler. It lives for
// one handler call: the loop settles (acks, naks, dead-letters) and reuses
// nothing of it after the handler returns, so a handler must not keep it,
// its Header or its Data past its return (copy what it needs). Only the
// handler's goroutine may write its fields.
type Delivery struct {
	Subject      string
	Header       nats.Header
	Data         []byte
	Stream       string
	Consumer     string
	StreamSeq    uint64
	NumDelivered uint64
	Published    time.Time
	// Envelope of a decoded event (set by Proto), used for audit and dead letters.
	Envelope *sinewv1.Envelope
	// Audit additions for this hop: keyed patient references (Bus.PatientRef)
	// and a PHI-free detail.
	PatientRefs []string
	AuditDetail string

	msg jetstream.Msg
}

// InProgress tells the server the handler is still working; the loop also
// does this on its own every AckWait/3 while a handler runs.
func (d *Delivery) InProgress() error { return d.msg.InProgress() }

// Handler handles one delivery. Returning nil acknowledges it; an error
// that is permanent (IsPermanent) dead-letters it at once; any other error
// retries it. The dead letter records the error's reason code (reason.Of).
//
// Contract: with ConsumeOptions.Workers > 1 the same Handler is called
// concurrently, on different deliveries, and in no particular order (only
// Workers 1 keeps stream order), so it must be safe for concurrent use.
// Whatever it publishes it must have committed (streams.Publish answered)
// before returning nil: the loop acknowledges right after. It may be
// called again for the same message (a redelivery after a crash or
// AckWait), so what it publishes carries the message's idempotency key.
// ctx ends MaxHandlerTime after the call or ShutdownGrace after shutdown.
type Handler func(ctx context.Context, d *Delivery) error

// Proto adapts a typed handler: the payload is decoded into a new T (an
// undecodable payload is a permanent error) and its envelope recorded.
func Proto[T proto.Message](h func(ctx context.Context, d *Delivery, ev T) error) Handler {
	var zero T
	mt := zero.ProtoReflect().Type()
	return func(ctx context.Context, d *Delivery) error {
		ev := mt.New().Interface().(T)
		if err := proto.Unmarshal(d.Data, ev); err != nil {
			return Permanent(reason.Wrap(reason.BusUndecodable, fmt.Errorf("decode %s: %w", mt.Descriptor().FullName(), err)))
		}
		if e, ok := any(ev).(interface{ GetEnvelope() *sinewv1.Envelope }); ok {
			d.Envelope = e.GetEnvelope()
		}
		return h(ctx, d, ev)
	}
}

// PermanentError marks a failure that no retry can fix (bad data, unmapped
// code): the message goes to the DLQ at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent reports true: the runtime recognises any error in the chain
// with this method, so pure packages mark errors without importing bus.
func (e *PermanentError) Permanent() bool { return true }

// IsPermanent reports whether an error in err's chain has a
// Permanent() bool method that returns true.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// Permanent marks err as permanent.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// RetryAfterError is a transient failure with a minimum delay (HTTP 429
// Retry-After).
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter marks err as transient, to be retried no sooner than after.
func RetryAfter(after time.Duration, err error) error {
	return &RetryAfterError{Err: err, After: after}
}

// ConsumeOptions tune one consumer loop.
type ConsumeOptions struct {
	// Workers handling deliveries concurrently; 1 keeps stream order.
	Workers int
	// Buffer is how many messages the client pulls ahead; 2×Workers+64 when 0.
	Buffer int
	// ShutdownGrace is how long in-flight handlers may finish after ctx ends
	// before their contexts are cancelled; 10 s when 0.
	ShutdownGrace time.Duration
	// MaxHandlerTime bounds one handler call (its context times out, and
	// InProgress stops, so a hung handler's message is redelivered); 5 min when 0.
	MaxHandlerTime time.Duration
	// NoAudit skips the per-hop audit record (the deadletter consumer of
	// advisories, which records its own).
	NoAudit bool
	// Ready, if set, is called once the loop is consuming.
	Ready func()
}

// maxReason bounds reasons sent to the server and stored in records.
const maxReason = 512

// Consume runs the handler loop for consumer c until ctx ends, then drains:
// no new messages are pulled, in-flight ones finish (within ShutdownGrace)
// and Consume returns nil.
func (b *Bus) Consume(ctx context.Context, c streams.Consumer, h Handler, o ConsumeOptions) error {
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.Buffer <= 0 {
		o.Buffer = 2*o.Workers + 64
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 10 * time.Second
	}
	if o.MaxHandlerTime <= 0 {
		o.MaxHandlerTime = 5 * time.Minute
	}
	cons, err := b.js.Consumer(ctx, c.Stream, c.Name)
	if err != nil {
		return fmt.Errorf("bus: consumer %s/%s: %w", c.Stream, c.Name, err)
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(o.Buffer))
	if err != nil {
		return fmt.Errorf("bus: consume %s/%s: %w", c.Stream, c.Name, err)
	}
	// Handlers get a context that outlives ctx by the grace period.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	stop := context.AfterFunc(ctx, func() {
		iter.Drain()
		time.AfterFunc(o.ShutdownGrace, hcancel)
	})
	defer stop()

	l := &loop{b: b, c: c, o: o, h: h, m: b.metrics.forConsumer(c.Name), span: "consume " + c.Name,
		slots: make([]slot, o.Workers)}
	if every := c.AckWait / 3; every > 0 {
		go l.keepAlive(hctx, every)
	}
	if o.Ready != nil {
		o.Ready()
	}
	var wg sync.WaitGroup
	for i := range o.Workers {
		wg.Go(func() {
			for {
				msg, err := iter.Next()
				if err != nil {
					if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						return
					}
					b.log.Warn().Err(err).Str("consumer", c.Name).Msg("consume: next")
					continue
				}
				l.deliver(hctx, &l.slots[i], msg)
			}
		})
	}
	wg.Wait()
	iter.Stop()
	return nil
}

// loop is one Consume call's state.
type loop struct {
	b     *Bus
	c     streams.Consumer
	o     ConsumeOptions
	h     Handler
	m     *consumerMetrics
	span  string
	slots []slot // one per worker
}

// slot is what a worker is handling, for keepAlive.
type slot struct {
	mu      sync.Mutex
	msg     jetstream.Msg
	started time.Time // when the handler was called
	since   time.Time // last InProgress (or start)
}

// keepAlive sends InProgress for deliveries running longer than every
// (AckWait/3): one ticker per loop rather than a timer per delivery.
func (l *loop) keepAlive(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for i := range l.slots {
				s := &l.slots[i]
				s.mu.Lock()
				// Past MaxHandlerTime the handler is presumed hung: stop
				// extending, so the message is redelivered after AckWait.
				if s.msg != nil && now.Sub(s.since) >= every && now.Sub(s.started) < l.o.MaxHandlerTime {
					_ = s.msg.InProgress()
					s.since = now
				}
				s.mu.Unlock()
			}
		}
	}
}

// deliver runs one delivery through the handler and settles it.
func (l *loop) deliver(ctx context.Context, s *slot, msg jetstream.Msg) {
	b, c := l.b, l.c
	start := time.Now()
	meta, err := msg.Metadata()
	if err != nil {
		b.log.Error().Err(err).Str("consumer", c.Name).Msg("delivery without metadata; terminated")
		_ = msg.Term()
		return
	}
	d := &Delivery{
		Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data(),
		Stream: meta.Stream, Consumer: meta.Consumer, StreamSeq: meta.Sequence.Stream,
		NumDelivered: meta.NumDelivered, Published: meta.Timestamp, msg: msg,
	}
	pctx := telemetry.Extract(ctx, d.Header)
	ctx, span := b.tracer.Start(pctx, l.span, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(trace.LinkFromContext(pctx)))
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", d.Subject),
			attribute.String("messaging.consumer.group.name", c.Name),
			attribute.Int64("messaging.nats.stream_sequence", int64(d.StreamSeq)),
			attribute.Int64("messaging.nats.num_delivered", int64(d.NumDelivered)),
		)
	}
	l.m.inflight.Inc()
	defer l.m.inflight.Dec()

	s.mu.Lock()
	s.msg, s.started, s.since = msg, start, start
	s.mu.Unlock()
	hctx, cancel := context.WithTimeout(ctx, l.o.MaxHandlerTime)
	herr := l.run(hctx, d)
	// JetStream itself, not the message, failed (a publish unanswered while
	// a node catches up): run the handler again here, within MaxHandlerTime,
	// instead of using up one of the message's MaxDeliver attempts. keepAlive
	// goes on sending InProgress meanwhile. Handlers publish with idempotency
	// keys, so running again is safe.
	for wait := unavailableRetryBase; herr != nil && streams.IsUnavailable(herr) && hctx.Err() == nil; wait = min(2*wait, unavailableRetryMax) {
		l.m.handled(OutcomeUnavailable).Inc()
		select {
		case <-hctx.Done():
		case <-time.After(wait):
		}
		if hctx.Err() != nil {
			break
		}
		herr = l.run(hctx, d)
	}
	cancel()
	s.mu.Lock()
	s.msg = nil
	s.mu.Unlock()

	outcome := b.settle(ctx, c, l.o, d, herr)
	if herr != nil {
		span.RecordError(herr)
		span.SetStatus(codes.Error, outcome)
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.String("sinew.outcome", outcome))
	}
	l.m.handled(outcome).Inc()
	l.m.duration.Observe(time.Since(start).Seconds())
	flow := FlowOf(d)
	if d.NumDelivered == 1 {
		b.metrics.flowCounter(flow, StageReceived).Inc()
	}
	if st := stageOf(outcome); st != "" {
		b.metrics.flowCounter(flow, st).Inc()
	}
}

// The in-place retries of a handler that failed because JetStream did not
// answer: from 250 ms, doubling, at most 5 s apart.
const (
	unavailableRetryBase = 250 * time.Millisecond
	unavailableRetryMax  = 5 * time.Second
)

// run calls the handler; a panic is a permanent failure of this delivery.
func (l *loop) run(ctx context.Context, d *Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Permanent(reason.Wrap(reason.BusHandlerPanic, fmt.Errorf("handler panic: %v", r)))
		}
	}()
	return l.h(ctx, d)
}

// Outcomes recorded in metrics and spans.
const (
	OutcomeOK        = "ok"
	OutcomeRetry     = "retry"
	OutcomeDead      = "dead-lettered"
	OutcomeAbandoned = "abandoned"
	// OutcomeUnavailable counts in-place retries of a handler whose
	// publish JetStream did not answer (no delivery attempt used).
	OutcomeUnavailable = "unavailable"
)

// settle acks, naks or dead-letters according to the handler's result.
func (b *Bus) settle(ctx context.Context, c streams.Consumer, o ConsumeOptions, d *Delivery, herr error) string {
	// Built only on the paths that log: the success path stays allocation-light.
	logger := func() *zerolog.Logger {
		l := b.log.With().Str("consumer", c.Name).Uint64("stream_seq", d.StreamSeq).Uint64("delivery", d.NumDelivered).Logger()
		return &l
	}
	if herr == nil {
		if !o.NoAudit {
			if err := b.auditHop(ctx, c, d, "ok", d.AuditDetail); err != nil {
				// Without its audit record the hop is not done: run it again.
				logger().Error().Err(err).Msg("audit write failed; retrying delivery")
				return b.retry(c, d, err)
			}
		}
		if err := d.msg.Ack(); err != nil {
			logger().Warn().Err(err).Msg("ack failed; the delivery will be redelivered")
		}
		return OutcomeOK
	}
	if ctx.Err() != nil {
		// Shutting down past the grace period: leave it unacknowledged, it
		// is redelivered after AckWait.
		logger().Warn().Err(herr).Msg("handler abandoned at shutdown")
		return OutcomeAbandoned
	}
	switch {
	case IsPermanent(herr):
		return b.deadLetter(ctx, c, o, d, dlq.KindPermanent, codeOr(herr, reason.BusPermanent), "permanent: "+herr.Error())
	case c.MaxDeliver > 0 && d.NumDelivered >= uint64(c.MaxDeliver):
		return b.deadLetter(ctx, c, o, d, dlq.KindExhausted, codeOr(herr, reason.BusRetriesExhausted),
			fmt.Sprintf("retries exhausted after %d deliveries: %s", d.NumDelivered, herr))
	default:
		logger().Warn().Err(herr).Msg("handler failed; retrying")
		if !o.NoAudit {
			_ = b.auditHop(ctx, c, d, "retry", truncate(herr.Error()))
		}
		return b.retry(c, d, herr)
	}
}

// codeOr is err's reason code, or def when it carries none.
func codeOr(err error, def reason.Code) reason.Code {
	if c := reason.Of(err); c != "" {
		return c
	}
	return def
}

// retry naks with delay base·2^(n-1), or Retry-After if longer.
func (b *Bus) retry(c streams.Consumer, d *Delivery, err error) string {
	delay := RetryDelay(c.RetryBase, d.NumDelivered)
	if c.MaxRetryDelay > 0 {
		delay = min(delay, c.MaxRetryDelay)
	}
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.After > delay {
		delay = ra.After
	}
	if nerr := d.msg.NakWithDelay(delay); nerr != nil {
		b.log.Warn().Err(nerr).Str("consumer", c.Name).Msg("nak failed; redelivery after AckWait")
	}
	return OutcomeRetry
}

// RetryDelay is the delay before delivery n+1: base·2^(n-1), capped at an hour.
func RetryDelay(base time.Duration, n uint64) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > 20 {
		return time.Hour
	}
	return min(base<<(n-1), time.Hour)
}

// deadLetter writes the DLQ record, then terminates the message so the
// server stops redelivering. If the record cannot be written the message is
// retried instead; nothing is terminated without its record.
func (b *Bus) deadLetter(ctx context.Context, c streams.Consumer, o ConsumeOptions, d *Delivery, kind string, code reason.Code, why string) string {
	why = truncate(why)
	rec := &sinewv1.DeadLetter{
		Stream: d.Stream, Consumer: d.Consumer, Subject: d.Subject, StreamSeq: d.StreamSeq,
		Headers: dlq.Headers(d.Header), Payload: d.Data, PayloadAvailable: true,
		Reason: why, ReasonCode: string(code), Kind: kind, Deliveries: d.NumDelivered,
		PublishedAt: timestamppb.New(d.Published), RecordedBy: "bus:" + b.opts.Service,
	}
	if d.Envelope != nil {
		rec.Flow, rec.EventId = d.Envelope.Flow, d.Envelope.EventId
	}
	log := b.log.With().Str("consumer", c.Name).Uint64("stream_seq", d.StreamSeq).Logger()
	wctx, cancel := context.WithTimeout(ctx, b.pubWait)
	defer cancel()
	if _, err := dlq.Write(wctx, b.js, rec); err != nil {
		log.Error().Err(err).Msg("dead letter not written; retrying delivery")
		return b.retry(c, d, err)
	}
	if !o.NoAudit {
		_ = b.auditHop(ctx, c, d, "dead-lettered", why)
	}
	if err := d.msg.TermWithReason(why); err != nil {
		log.Warn().Err(err).Msg("term failed")
	}
	log.Warn().Str("kind", kind).Str("reason_code", string(code)).Str("reason", why).Msg("dead-lettered")
	b.metrics.dead.WithLabelValues(c.Name, kind).Inc()
	return OutcomeDead
}

// auditHop writes this hop's audit record.
func (b *Bus) auditHop(ctx context.Context, c streams.Consumer, d *Delivery, outcome, detail string) error {
	ev := &sinewv1.AuditEvent{
		Actor: b.opts.Service, Action: "consume", Hop: c.Hop, Outcome: outcome,
		Subject: d.Subject, Stream: d.Stream, StreamSeq: d.StreamSeq,
		PatientRefs: d.PatientRefs, Detail: detail,
	}
	if ev.Hop == "" {
		ev.Hop = c.Name
	}
	if env := d.Envelope; env != nil {
		ev.Flow, ev.EventId, ev.IdempotencyKey, ev.BusinessKeys = env.Flow, env.EventId, env.IdempotencyKey, env.BusinessKeys
		// The trace id lets `sinew track` name the trace of each hop (a
		// copy: the envelope's keys are not ours to change).
		if tp := strings.Split(env.Traceparent, "-"); len(tp) == 4 && len(tp[1]) == 32 {
			ev.BusinessKeys = append(slices.Clip(ev.BusinessKeys), &sinewv1.KeyValue{Key: "trace_id", Value: tp[1]})
		}
	}
	if ev.Detail == "" {
		ev.Detail = "delivery " + strconv.FormatUint(d.NumDelivered, 10)
	}
	wctx, cancel := context.WithTimeout(ctx, b.pubWait)
	defer cancel()
	return b.audit.Write(wctx, ev)
}

func truncate(s string) string {
	if len(s) <= maxReason {
		return s
	}
	return s[:maxReason-3] + "..."
}
