package loader_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/streams"
)

// TestItemUpsertSendsOnlyWhatItCarries: issue 9 item 1 at the loader.
// Updates without flags keep RX-1002's 340B flag and IMP-3001's lot and
// serial control; a command that switches IMP-3001's lot control off while
// it has stock is refused by Fusion and dead-lettered with Fusion's code.
func TestItemUpsertSendsOnlyWhatItCarries(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	item := func(key, number, flow, desc string, lot *bool) *sinewv1.ItemUpsert {
		return &sinewv1.ItemUpsert{Envelope: &sinewv1.Envelope{EventId: bus.EventID(key), Flow: flow, SourceId: number, IdempotencyKey: key},
			ItemNumber: number, Organization: "MAIN", Description: desc, PrimaryUom: "EA", LotControlled: lot, Action: "update"}
	}
	cmds := []*sinewv1.ItemUpsert{
		item("willow-inventory:epic.willow:item-0781-3207-95:1", "RX-1002", "willow-inventory", "New text", nil),
		item("optime-materials:epic.optime:item-OR-HIP4:1", "IMP-3001", "optime-materials", "Hip stem (rev B)", nil),
		item("optime-materials:epic.optime:item-OR-HIP4:2", "IMP-3001", "optime-materials", "", proto.Bool(false)),
	}
	for _, c := range cmds {
		if _, err := e.pub.Publish(ctx, streams.FusionCmdSubject(c.Envelope.Flow, "item"), c.Envelope.IdempotencyKey, c); err != nil {
			t.Fatal(err)
		}
	}
	outcome := map[string]*sinewv1.LoadResult{}
	for deadline := time.Now().Add(10 * time.Second); len(outcome) < 3 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_ = streams.Scan(ctx, e.js, streams.Results, "result.>", time.Time{}, func(m jetstream.Msg) error {
			r := &sinewv1.LoadResult{}
			if proto.Unmarshal(m.Data(), r) == nil {
				outcome[r.GetEnvelope().GetIdempotencyKey()] = r
			}
			return nil
		})
	}
	for i, want := range []string{"accepted", "accepted", "rejected"} {
		r := outcome[cmds[i].Envelope.IdempotencyKey]
		if r == nil || r.Outcome != want {
			t.Fatalf("command %d: result %v, want %s", i+1, r, want)
		}
	}
	if r := outcome[cmds[2].Envelope.IdempotencyKey]; len(r.Errors) != 1 || r.Errors[0].Code != "EGP_CONTROL_ONHAND_EXISTS" {
		t.Errorf("refusal: %v", r.Errors)
	}
	by := map[string]fusion.Item{}
	for _, it := range e.sim.Items() {
		by[it.ItemNumber] = it
	}
	if it := by["RX-1002"]; it.Description != "New text" || !fusion.IsTrue(it.Program340B) {
		t.Errorf("RX-1002: %q 340B %v", it.Description, it.Program340B)
	}
	if it := by["IMP-3001"]; it.Description != "Hip stem (rev B)" || !fusion.IsTrue(it.LotControlled) || !fusion.IsTrue(it.SerialControlled) {
		t.Errorf("IMP-3001: %q lot %v serial %v", it.Description, it.LotControlled, it.SerialControlled)
	}
	store, err := dlq.Open(ctx, e.js, nil)
	if err != nil {
		t.Fatal(err)
	}
	var reasons, codes []string
	for deadline := time.Now().Add(5 * time.Second); len(reasons) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_ = store.List(ctx, "", func(en *dlq.Entry) error {
			reasons = append(reasons, en.Letter.Reason)
			codes = append(codes, en.Letter.ReasonCode)
			return nil
		})
	}
	if len(reasons) != 1 || !strings.HasPrefix(reasons[0], "permanent: refused by Fusion: "+cmds[2].Envelope.IdempotencyKey+": EGP_CONTROL_ONHAND_EXISTS") {
		t.Errorf("dead letters %q", reasons)
	}
	if len(codes) != 1 || codes[0] != string(reason.FusionOnhandControlExists) {
		t.Errorf("reason codes %q, want %s", codes, reason.FusionOnhandControlExists)
	}
}
