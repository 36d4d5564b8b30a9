package loader

import (
	"context"
	"errors"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// The route table comes from the registry by flow id: a kind the flow's
// entry names goes to its operation, any other subject (another flow's,
// an unknown kind) is dead-lettered with SINEW-LOADER-001, and a GL flow
// without gl.ledger_id is retried (a configuration fix, then a replay).
func TestRoutesByFlowID(t *testing.T) {
	batch := func(context.Context, *flows.Flow, registry.Env) (registry.Batch, error) { return nil, nil }
	reg, err := registry.New(registry.Entry{ID: "gl-a", NewBatch: batch, Fusion: map[string]registry.Op{"import": registry.OpJournalImport}})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := reg.Resolve(&flows.Inventory{Flows: []flows.Flow{{ID: "ward", HL7: &flows.HL7{}}, {ID: "gl-a", GL: &flows.GL{}}}})
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.Nop()
	s := &Service{flows: fs, log: &log}
	routes := bus.Routes(s.table()...)
	for _, tc := range []struct {
		subject   string
		permanent bool
		code      reason.Code
	}{
		{streams.FusionCmdSubject("ward", "item"), true, reason.BusUndecodable}, // routed: the payload is decoded (and is not an item)
		{streams.FusionCmdSubject("ward", "import"), true, reason.LoaderNoRoute},
		{streams.FusionCmdSubject("other", "inventory"), true, reason.LoaderNoRoute},
		{streams.FusionCmdSubject("gl-a", "import"), false, ""}, // no gl.ledger_id here
	} {
		err := routes(context.Background(), &bus.Delivery{Subject: tc.subject, Data: []byte{0xff}})
		if err == nil || bus.IsPermanent(err) != tc.permanent {
			t.Errorf("%s: %v (permanent %v), want permanent %v", tc.subject, err, bus.IsPermanent(err), tc.permanent)
			continue
		}
		var re *reason.Error
		if tc.code != "" && (!errors.As(err, &re) || re.Code != tc.code) {
			t.Errorf("%s: %v, want reason %s", tc.subject, err, tc.code)
		}
	}
}
