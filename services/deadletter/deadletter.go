// Package deadletter turns JetStream's max-deliveries and terminated
// advisories into durable DLQ records: it reads the advisory, fetches the
// original message by stream sequence, writes the record (or a "payload
// unavailable" record and an alert) and only then acknowledges.
package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/streams"
)

// Config is the deadletter service's configuration.
type Config struct {
	bus.ServiceConfig `yaml:",inline"`
	// Workers handling advisories concurrently.
	Workers int `yaml:"workers"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{ServiceConfig: bus.DefaultServiceConfig(), Workers: 2}
	c.HTTPAddr = "127.0.0.1:9105"
	return c
}

// Service is the running deadletter service.
type Service struct {
	cfg   Config
	bus   *bus.Bus
	cons  streams.Consumer
	ready atomic.Bool
}

// New returns the service on bus b.
func New(cfg Config, b *bus.Bus) (*Service, error) {
	c, ok := streams.New(cfg.Topology).Consumer(streams.Deadletter)
	if !ok {
		return nil, errors.New("deadletter: no deadletter consumer in the topology")
	}
	return &Service{cfg: cfg, bus: b, cons: c}, nil
}

// Run handles advisories until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	defer s.ready.Store(false)
	return s.bus.Consume(ctx, s.cons, s.handle, bus.ConsumeOptions{
		Workers: s.cfg.Workers,
		NoAudit: true, // it audits the dead letters it records, not every advisory
		Ready:   func() { s.ready.Store(true) },
	})
}

// Ready is nil while advisories are being consumed.
func (s *Service) Ready() error {
	if !s.ready.Load() {
		return errors.New("deadletter: not consuming")
	}
	return nil
}

// advisory holds the fields shared by the max_deliver and terminated advisories.
type advisory struct {
	Type       string `json:"type"`
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
	Reason     string `json:"reason"`
}

const (
	typeMaxDeliver = "io.nats.jetstream.advisory.v1.max_deliver"
	typeTerminated = "io.nats.jetstream.advisory.v1.terminated"
)

func (s *Service) handle(ctx context.Context, d *bus.Delivery) error {
	var a advisory
	if err := json.Unmarshal(d.Data, &a); err != nil {
		return bus.Permanent(reason.Wrap(reason.BusUndecodable, fmt.Errorf("advisory: %w", err)))
	}
	if a.Stream == streams.Advisories || a.Stream == streams.DLQ || a.Stream == "" {
		return nil // never dead-letter the dead-letter machinery itself
	}
	rec := &sinewv1.DeadLetter{
		Stream: a.Stream, Consumer: a.Consumer, StreamSeq: a.StreamSeq, Deliveries: a.Deliveries,
		DeadAt: timestamppb.New(d.Published), RecordedBy: "deadletter",
	}
	switch a.Type {
	case typeMaxDeliver:
		rec.Kind, rec.ReasonCode = dlq.KindMaxDeliveries, string(reason.DLQMaxDeliveries)
		rec.Reason = fmt.Sprintf("max deliveries (%d) reached without acknowledgement", a.Deliveries)
	case typeTerminated:
		rec.Kind, rec.ReasonCode = dlq.KindTerminated, string(reason.DLQTerminated)
		rec.Reason = "terminated"
		if a.Reason != "" {
			rec.Reason = "terminated: " + a.Reason
		}
	default:
		return nil
	}
	log := s.bus.Logger().With().Str("stream", a.Stream).Str("consumer", a.Consumer).Uint64("stream_seq", a.StreamSeq).Str("kind", rec.Kind).Logger()

	js := s.bus.JetStream()
	stream, err := js.Stream(ctx, a.Stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", a.Stream, err)
	}
	orig, err := stream.GetMsg(ctx, a.StreamSeq)
	switch {
	case err == nil:
		rec.Subject, rec.Payload, rec.PayloadAvailable = orig.Subject, orig.Data, true
		rec.Headers = dlq.Headers(orig.Header)
		rec.PublishedAt = timestamppb.New(orig.Time)
	case errors.Is(err, jetstream.ErrMsgNotFound):
		rec.Reason += "; original message no longer in the stream"
		log.Error().Str("alert", "dlq-payload-unavailable").Msg("dead letter recorded without payload: the original is gone")
	default:
		return fmt.Errorf("fetch %s seq %d: %w", a.Stream, a.StreamSeq, err)
	}
	dup, err := dlq.Write(ctx, js, rec)
	if err != nil {
		return err
	}
	if dup {
		return nil // the handler loop recorded it first, with its reason
	}
	log.Warn().Str("reason", rec.Reason).Msg("dead-lettered")
	return s.bus.Audit().Write(ctx, &sinewv1.AuditEvent{
		Actor: s.bus.Service(), Action: "dead-letter", Flow: "none", Hop: "dead-letter", Outcome: "dead-lettered",
		Subject: rec.Subject, Stream: rec.Stream, StreamSeq: rec.StreamSeq, Detail: rec.Reason,
	})
}
