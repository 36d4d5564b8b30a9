package transform

import (
	"context"
	"errors"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/reason"
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
	raw, err := streams.HL7Body(ctx, s.bus.JetStream(), name)
	if errors.Is(err, streams.ErrBodyMissing) {
		return bus.Permanent(reason.Wrap(reason.TransformBodyMissing, err))
	}
	if err != nil {
		return err
	}
	ev.Raw = raw
	return nil
}
