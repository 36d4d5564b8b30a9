package transform_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/transform"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
)

// publishHL7 commits raw to HL7_IN as ingest does: Hl7Received on
// hl7.in.<facility>.<type>.<event>, id hl7:<facility>:<app>:<control id>.
func publishHL7(t *testing.T, b *bus.Bus, raw []byte) {
	t.Helper()
	ev, m, err := hl7flow.Event(raw, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(context.Background(), streams.HL7Subject(m.SendingFacility(), m.Type(), m.Event()), ev.Envelope.IdempotencyKey, ev); err != nil {
		t.Fatal(err)
	}
}

func fixture(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// waitCount waits until stream holds n messages.
func waitCount(t *testing.T, js jetstream.JetStream, stream string, n uint64) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d messages, want %d", stream, info.State.Msgs, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHL7FlowsEndToEnd(t *testing.T) {
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
	ingest := newBus("ingest")

	const w, o = "flows/willow-inventory/testdata/", "flows/optime-materials/testdata/"
	publishHL7(t, ingest, fixture(t, w+"rds_o13_340b_ed.hl7"))
	publishHL7(t, ingest, fixture(t, w+"rds_o13_heparin_ml_not340b.hl7"))
	publishHL7(t, ingest, fixture(t, o+"dft_p03_case_complete_implants.hl7"))
	publishHL7(t, ingest, fixture(t, w+"bar_p01_account.hl7"))
	// The same dispense resent by Epic with a new MSH-10: a new HL7_IN
	// message, the same commands (deduplicated by their id).
	publishHL7(t, ingest, fixture(t, w+"rds_o13_resend_new_control_id.hl7"))
	waitCount(t, js, streams.FusionCmd, 1+1+4)

	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, streams.FusionCmd, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(6, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []*sinewv1.InventoryTransaction
	for msg := range batch.Messages() {
		c := &sinewv1.InventoryTransaction{}
		if err := proto.Unmarshal(msg.Data(), c); err != nil {
			t.Fatal(err)
		}
		if id := msg.Headers().Get(nats.MsgIdHdr); id != c.Envelope.IdempotencyKey {
			t.Errorf("msg id %q, idempotency key %q", id, c.Envelope.IdempotencyKey)
		}
		if !strings.HasPrefix(msg.Subject(), "fusion.cmd.") || !strings.HasSuffix(msg.Subject(), ".inventory") {
			t.Errorf("subject %s", msg.Subject())
		}
		got = append(got, c)
	}
	if len(got) != 6 {
		t.Fatalf("%d commands", len(got))
	}
	by := map[string]*sinewv1.InventoryTransaction{}
	for _, c := range got {
		by[c.ItemNumber] = c
	}
	if c := by["RX-1002"]; c == nil || !c.Program_340B || c.Quantity.Value != "-2" || c.Envelope.BusinessKey("program_340b") != "true" {
		t.Errorf("340B dispense: %v", c)
	}
	if c := by["RX-1003"]; c == nil || c.Program_340B || c.Envelope.BusinessKey("program_340b") != "false" {
		t.Errorf("non-340B dispense: %v", c)
	}
	if c := by["IMP-3001"]; c == nil || c.LotNumber != "LOT-H4-7781" || c.SerialNumber != "SN-000991" || c.Subinventory != "OR-CORE" {
		t.Errorf("implant: %v", c)
	}

	// An unmapped NDC is dead-lettered, naming the code's path (not the code); a crosswalk fix
	// and a replay deliver it.
	publishHL7(t, ingest, fixture(t, w+"rds_o13_unmapped_ndc.hl7"))
	waitCount(t, js, streams.DLQ, 1)
	store, err := dlq.Open(ctx, js, ingest.Audit())
	if err != nil {
		t.Fatal(err)
	}
	var seq uint64
	if err := store.List(ctx, "", func(e *dlq.Entry) error {
		seq = e.Seq
		if strings.Contains(e.Letter.Reason, "9999-9999-99") || !strings.Contains(e.Letter.Reason, "RXD-2-1") || !strings.Contains(e.Letter.Reason, "item") || e.Letter.Flow != "willow-inventory" {
			t.Errorf("dead letter: %s (flow %s)", e.Letter.Reason, e.Letter.Flow)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, streams.KVCrosswalk)
	if err != nil {
		t.Fatal(err)
	}
	items := string(fixture(t, "../../deploy/demo/items.csv")) + "ndc,9999-9999-99,RX-1004,MAIN,,EA,\n"
	if _, err := crosswalk.NewStore(kv).LoadCodes(ctx, crosswalk.Item, []byte(items), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Replay(ctx, seq, "test", "crosswalk fixed", false); err != nil {
		t.Fatal(err)
	}
	waitCount(t, js, streams.FusionCmd, 7)
}
