package transform_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/transform"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
)

// TestHL7BodyFromObjectStore: a message ingest kept in the hl7_bodies object
// store (too large for one JetStream message; HL7_IN carries body_object
// instead of raw) is read back and mapped like any other.
func TestHL7BodyFromObjectStore(t *testing.T) {
	opts := streams.DefaultOptions()
	_, nc, js := natstest.StartWithTopology(t, opts)
	newBus := func(name string) *bus.Bus {
		b, err := bus.New(nc, bus.Config{}, bus.Options{Service: name, Logger: zerolog.Nop(), AuditSecret: []byte("test-secret")})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cfg := transform.DefaultConfig()
	cfg.Topology = opts
	cfg.FlowsFile = "../../flows.yaml"
	cfg.Crosswalk, cfg.Chart = "", ""
	cfg.ItemCrosswalk, cfg.DepartmentCrosswalk = "../../deploy/demo/items.csv", "../../deploy/demo/departments.csv"
	tr, err := transform.New(cfg, newBus("transform"))
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, tr)

	ctx := context.Background()
	raw := fixture(t, "flows/willow-inventory/testdata/rds_o13_340b_ed.hl7")
	ev, m, err := hl7flow.Event(raw, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	obj, err := js.ObjectStore(ctx, streams.ObjHL7Bodies)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	name := "sha256-" + hex.EncodeToString(sum[:])
	if _, err := obj.PutBytes(ctx, name, raw); err != nil {
		t.Fatal(err)
	}
	ev.Raw, ev.BodyObject, ev.RawSize = nil, name, int64(len(raw))
	if _, err := newBus("ingest").Publish(ctx, streams.HL7Subject(m.SendingFacility(), m.Type(), m.Event()), ev.Envelope.IdempotencyKey, ev); err != nil {
		t.Fatal(err)
	}
	waitCount(t, js, streams.FusionCmd, 1)
}
