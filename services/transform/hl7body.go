package transform

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/streams"
)

// hl7Body reads into ev.Raw the bytes of a message that ingest kept in the
// hl7_bodies object store because it was too large for one JetStream
// message (ev.BodyObject names it). A missing object is permanent (dead
// letter); any other failure is retried.
func (s *Service) hl7Body(ctx context.Context, ev *sinewv1.Hl7Received) error {
	name := ev.GetBodyObject()
	if name == "" {
		return nil
	}
	store, err := s.bus.JetStream().ObjectStore(ctx, streams.ObjHL7Bodies)
	if err != nil {
		return fmt.Errorf("object store %s: %w", streams.ObjHL7Bodies, err)
	}
	raw, err := store.GetBytes(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrObjectNotFound):
		return bus.Permanent(fmt.Errorf("body object %s not in %s", name, streams.ObjHL7Bodies))
	case err != nil:
		return fmt.Errorf("read body object %s: %w", name, err)
	}
	ev.Raw = raw
	return nil
}
