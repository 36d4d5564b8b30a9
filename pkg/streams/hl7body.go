package streams

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrBodyMissing is returned by HL7Body when the referenced object is not
// in the bucket: a reference nothing can resolve, not a passing fault.
var ErrBodyMissing = errors.New("streams: hl7 body object missing")

// HL7Body reads the bytes of an HL7 message that ingest kept in the
// hl7_bodies object store because it was too large for one JetStream
// message; name is the HL7_IN receipt's body_object. Transform and the
// dead-letter views read it the same way.
func HL7Body(ctx context.Context, js jetstream.JetStream, name string) ([]byte, error) {
	store, err := js.ObjectStore(ctx, ObjHL7Bodies)
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", ObjHL7Bodies, err)
	}
	raw, err := store.GetBytes(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrObjectNotFound):
		return nil, fmt.Errorf("body object %s not in %s: %w", name, ObjHL7Bodies, ErrBodyMissing)
	case err != nil:
		return nil, fmt.Errorf("read body object %s: %w", name, err)
	}
	return raw, nil
}
