package transform_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/transform"
)

// syncBuffer is a log sink safe for the bus's concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// phiRDS is a Willow RDS^O13 of a synthetic patient with ZRX-1, RXD-2 and
// RXD-4 as given.
func phiRDS(id, zrx1, rxd2, rxd4 string) []byte {
	return []byte("MSH|^~\\&|WILLOW|STMARYS|SINEW|STMARYS|20261126075500||RDS^O13^RDS_O13|" + id + "|P|2.5.1\r" +
		"PID|1||E7654321^^^STMARYS^MR||TESTPATIENT^BRAVO||19700101|F\r" +
		"ORC|RE|RX" + id + "|RX" + id + "||CM\r" +
		"RXD|1|" + rxd2 + "^Ceftriaxone 1 g vial^NDC|20261126074500|" + rxd4 + "|EA^^UCUM||RX" + id + "\r" +
		"ZRX|" + zrx1 + "|EDPHARM\r")
}

// TestPHINotCopiedIntoErrorTexts: issue 9 item 7 through the real
// pipeline (embedded NATS, the bus's dead letters and audit). A name in
// ZRX-1, a date in RXD-4 and an MRN in RXD-2 never appear in a DLQ
// record's reason, an audit record or the logs; the reasons name the path
// and the table 0357 code.
func TestPHINotCopiedIntoErrorTexts(t *testing.T) {
	opts := streams.DefaultOptions()
	_, nc, js := natstest.StartWithTopology(t, opts)
	logs := &syncBuffer{}
	newBus := func(name string) *bus.Bus {
		log := zerolog.New(logs).Level(zerolog.DebugLevel).With().Str("service", name).Logger()
		b, err := bus.New(nc, bus.Config{}, bus.Options{Service: name, Logger: log, AuditSecret: []byte("test-secret")})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cfg := transform.DefaultConfig()
	cfg.Topology = opts
	cfg.Audit.Secret = "test-secret"
	cfg.FlowsFile = "../../flows.yaml"
	cfg.Crosswalk, cfg.Chart = "", ""
	cfg.ItemCrosswalk, cfg.DepartmentCrosswalk = "../../deploy/demo/items.csv", "../../deploy/demo/departments.csv"
	tr, err := transform.New(cfg, newBus("transform"))
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, tr)
	ingest := newBus("ingest")

	const name, date, mrn = "QUINTESSA VANDERMEER", "19700101", "MRN12345678"
	publishHL7(t, ingest, phiRDS("P0001", name, "0781-3207-95", "2"))
	publishHL7(t, ingest, phiRDS("P0002", "Y", "0781-3207-95", "1970-01-01"))
	publishHL7(t, ingest, phiRDS("P0003", "Y", mrn, "2"))
	publishHL7(t, ingest, phiRDS("P0004", "Y", "0781-3207-95", date)) // a number: maps
	waitCount(t, js, streams.DLQ, 3)
	waitCount(t, js, streams.FusionCmd, 1)

	secret := []string{name, "VANDERMEER", date, "1970-01-01", mrn, "12345678", "E7654321", "TESTPATIENT"}
	ctx := context.Background()
	store, err := dlq.Open(ctx, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"P0001": "program_340b (ZRX-1): HL7 error 103", "P0002": "quantity (RXD-4): HL7 error 102", "P0003": "from RXD-2-1 (HL7 error 103"}
	seen := 0
	if err := store.List(ctx, "", func(e *dlq.Entry) error {
		r := e.Letter.Reason
		for _, v := range secret {
			if strings.Contains(r, v) {
				t.Errorf("DLQ reason shows %q: %s", v, r)
			}
		}
		for id, w := range want {
			if strings.Contains(r, "control id "+id) {
				seen++
				if !strings.Contains(r, w) {
					t.Errorf("DLQ reason of %s lacks %q: %s", id, w, r)
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seen != 3 {
		t.Errorf("%d of 3 dead letters found by control id", seen)
	}

	// Every audit record, whole (details, business keys, everything).
	waitFor := time.Now().Add(5 * time.Second)
	var records int
	for {
		records = 0
		cons, err := js.OrderedConsumer(ctx, streams.Audit, jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		info, _ := js.Stream(ctx, streams.Audit)
		st, _ := info.Info(ctx)
		batch, err := cons.Fetch(int(st.State.Msgs), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var all []byte
		for m := range batch.Messages() {
			records++
			all = append(all, m.Data()...)
		}
		// transform audits each of the four deliveries
		if bytes.Count(all, []byte("dead-lettered")) >= 3 || time.Now().After(waitFor) {
			for _, v := range secret {
				if bytes.Contains(all, []byte(v)) {
					t.Errorf("an audit record shows %q", v)
				}
			}
			if bytes.Count(all, []byte("dead-lettered")) < 3 {
				t.Errorf("audit: %d records, fewer than 3 dead-lettered hops", records)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	out := logs.String()
	if !strings.Contains(out, "dead-lettered") {
		t.Fatalf("no dead-letter log line captured:\n%s", out)
	}
	for _, v := range secret {
		if strings.Contains(out, v) {
			t.Errorf("logs show %q", v)
		}
	}
}
