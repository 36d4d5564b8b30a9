package loader_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/batchstate"
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/fbdi"
	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/fusionsim"
	"github.com/sinewhq/sinew/services/loader"
)

// glZip writes a balanced two-line journal for group with journal source
// source, as the transform would.
func glZip(t *testing.T, source string, group int64) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := fbdi.NewWriter(&b, fbdi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	for i, side := range []bool{true, false} {
		l := fbdi.Line{LedgerName: "US Primary Ledger", AccountingDate: day, DateCreated: day, Source: source, Category: "Revenue",
			Currency: "USD", Segments: []string{"101", "1000", "11010", "000", "000"}, BatchName: "B1", JournalName: "B1-J1",
			Reference21: "B1:" + string(rune('1'+i)), GroupID: group}
		if side {
			l.EnteredDR, l.HasDR = money.Amount(1000), true
		} else {
			l.Segments = []string{"101", "6010", "40100", "300", "000"}
			l.EnteredCR, l.HasCR = money.Amount(1000), true
		}
		if err := w.Write(&l); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type env struct {
	js  jetstream.JetStream
	pub *bus.Bus
	sim *fusionsim.Server
	url string // fusionsim's base URL
}

func start(t *testing.T) *env { return startWith(t, nil) }

// startWith runs prepare on the server before the loader starts.
func startWith(t *testing.T, prepare func(jetstream.JetStream)) *env {
	return startCfg(t, prepare, nil)
}

// startCfg is startWith with the loader's configuration changed by tune.
func startCfg(t *testing.T, prepare func(jetstream.JetStream), tune func(*loader.Config)) *env {
	t.Helper()
	opts := streams.DefaultOptions()
	opts.LoadRetryBase = 50 * time.Millisecond
	_, nc, js := natstest.StartWithTopology(t, opts)
	if prepare != nil {
		prepare(js)
	}
	newBus := func(name string) *bus.Bus {
		b, err := bus.New(nc, bus.Config{}, bus.Options{Service: name, Logger: zerolog.Nop(), AuditSecret: []byte("test")})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sc := fusionsim.DefaultSimConfig()
	sc.Step = 2 * time.Millisecond
	sim, err := fusionsim.NewServer(sc)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim.Handler())
	t.Cleanup(hs.Close)
	t.Cleanup(sim.Close)
	cfg := loader.DefaultConfig()
	cfg.Topology = opts
	cfg.FlowsFile = "../../flows.yaml"
	cfg.Fusion.BaseURL = hs.URL
	cfg.CallbackAddr = ""
	cfg.PollInterval, cfg.MaxPollInterval = 5*time.Millisecond, 50*time.Millisecond
	cfg.ReadLag, cfg.SettleTime = 100*time.Millisecond, 100*time.Millisecond
	if tune != nil {
		tune(&cfg)
	}
	ld, err := loader.New(cfg, newBus("loader"))
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, ld)
	return &env{js: js, pub: newBus("transform"), sim: sim, url: hs.URL}
}

// command stores zip and publishes the journal-batch command for it.
func (e *env) command(t *testing.T, batch, source string, group int64, zip []byte) {
	t.Helper()
	ctx := context.Background()
	store, err := e.js.ObjectStore(ctx, streams.ObjFBDI)
	if err != nil {
		t.Fatal(err)
	}
	key := batch + ".zip"
	if _, err := store.PutBytes(ctx, key, zip); err != nil {
		t.Fatal(err)
	}
	cmd := &sinewv1.JournalBatch{
		Envelope: &sinewv1.Envelope{EventId: bus.EventID(batch), Flow: "resolute-gl", SourceId: batch, IdempotencyKey: "resolute-gl:" + batch,
			BusinessKeys: sinewv1.Keys(map[string]string{"sha256": strings.Repeat("ab", 32), "lines": "2", "debit": "10.00", "credit": "10.00"})},
		BatchId: batch, Ledger: "US Primary Ledger", JeSource: source, JeCategory: "Revenue", AccountingDate: "2026-01-15",
		ObjectKey: key, Journals: []*sinewv1.Journal{{GroupId: group, Name: "B1-J1"}},
	}
	if _, err := e.pub.Publish(ctx, streams.FusionCmdSubject("resolute-gl", "import"), "fbdi:"+batch, cmd); err != nil {
		t.Fatal(err)
	}
}

// result waits for the batch's result on RESULTS.
func (e *env) result(t *testing.T, batch string) (string, *sinewv1.LoadResult) {
	t.Helper()
	return e.resultWhere(t, "result.resolute-gl.*", func(r *sinewv1.LoadResult) bool { return r.GetEnvelope().GetSourceId() == batch })
}

// resultWhere waits for the last result on subjects filter that match
// takes, and returns it with its subject.
func (e *env) resultWhere(t *testing.T, filter string, match func(*sinewv1.LoadResult) bool) (string, *sinewv1.LoadResult) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var got *sinewv1.LoadResult
		var subject string
		_ = streams.Scan(context.Background(), e.js, streams.Results, filter, time.Time{}, func(m jetstream.Msg) error {
			r := &sinewv1.LoadResult{}
			if proto.Unmarshal(m.Data(), r) == nil && match(r) {
				got, subject = r, m.Subject()
			}
			return nil
		})
		if got != nil {
			return subject, got
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no result on %s", filter)
	return "", nil
}

func TestJournalBatchOutcomes(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	states, err := batchstate.Open(ctx, e.js)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, batch         string
		fileGroup, cmdGroup int64
		zip                 []byte
		outcome, want       string
	}{
		{"imported", "B-OK", 42, 42, nil, "imported", "Journal Import request"},
		// The file carries one GROUP_ID, the job's parameters another:
		// Journal Import finds no rows, says SUCCEEDED and "0 group id(s)".
		{"zero-group trap", "B-TRAP", 44, 43, nil, "failed", "imported 0 group id(s)"},
		// A file the loader cannot load: ERROR, nothing in the interface.
		{"load error", "B-BAD", 45, 45, []byte("PK\x03\x04 not a zip"), "failed", "no rows reached GL_INTERFACE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			zip := c.zip
			if zip == nil {
				zip = glZip(t, "Epic Resolute", c.fileGroup)
			}
			e.command(t, c.batch, "Epic Resolute", c.cmdGroup, zip)
			subject, r := e.result(t, c.batch)
			if r.GetOutcome() != c.outcome || !strings.HasSuffix(subject, "."+c.outcome) {
				t.Fatalf("%s: outcome %s on %s, want %s", c.batch, r.GetOutcome(), subject, c.outcome)
			}
			st, err := states.Get(ctx, "resolute-gl", c.batch)
			if err != nil {
				t.Fatal(err)
			}
			text := st.Detail
			for _, g := range st.Groups {
				text += " | " + g.Detail
			}
			if !strings.Contains(text, c.want) {
				t.Errorf("%s: state %s %q, want %q", c.batch, st.Step, text, c.want)
			}
			if st.Upload.RequestID == "" || st.Upload.Attempt != 1 {
				t.Errorf("upload %+v", st.Upload)
			}
		})
	}
}

// TestInventoryBatches: transactions posted together go in batch
// requests; the one Fusion refuses fails alone, every other is posted once.
func TestInventoryBatches(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	const n = 30
	for i := range n {
		item := "RX-1002"
		if i == 7 {
			item = "RX-9999" // not in Fusion's item master
		}
		key := fmt.Sprintf("willow-inventory:epic.willow:rx-%d:1", i)
		cmd := &sinewv1.InventoryTransaction{
			Envelope:     &sinewv1.Envelope{EventId: bus.EventID(key), Flow: "willow-inventory", SourceId: fmt.Sprintf("RX%d", i), IdempotencyKey: key},
			Organization: "MAIN", Subinventory: "PHARM-MAIN", ItemNumber: item, TransactionType: "Miscellaneous Issue",
			Quantity: &sinewv1.Quantity{Value: "-1", Uom: "EA"}, TransactionDate: timestamppb.New(time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)),
			SourceHeaderId: fmt.Sprint(1000 + i), SourceLineId: "1", Program_340B: i%2 == 0,
		}
		if _, err := e.pub.Publish(ctx, streams.FusionCmdSubject("willow-inventory", "inventory"), key, cmd); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	outcomes := map[string]int{}
	for time.Now().Before(deadline) {
		outcomes = map[string]int{}
		_ = streams.Scan(ctx, e.js, streams.Results, "result.willow-inventory.*", time.Time{}, func(m jetstream.Msg) error {
			outcomes[m.Subject()[strings.LastIndexByte(m.Subject(), '.')+1:]]++
			return nil
		})
		if outcomes["accepted"]+outcomes["rejected"] == n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if outcomes["accepted"] != n-1 || outcomes["rejected"] != 1 {
		t.Fatalf("outcomes %v, want %d accepted and 1 rejected", outcomes, n-1)
	}
	rows := e.sim.InventoryLines()
	processed := 0
	for _, l := range rows {
		if l.Rows != 1 {
			t.Errorf("source line %d/%d has %d rows", l.SourceHeaderID, l.SourceLineID, l.Rows)
		}
		processed += l.Processed
	}
	if processed != n-1 {
		t.Errorf("%d rows processed, want %d", processed, n-1)
	}
}

// A key a loader of one bucket recorded as done is found after the keys
// were spread over shards: the command is not posted again.
func TestIdempotencyKeysMovedToTheirShard(t *testing.T) {
	ctx := context.Background()
	const flow = "willow-inventory"
	var idemKey, claimKey string
	for i := 0; ; i++ {
		idemKey = fmt.Sprintf("willow-inventory:epic.willow:rx-old-%d:1", i)
		if claimKey = streams.Token(flow) + "." + bus.HashKey(idemKey); streams.IdempotencyShard(claimKey) == 1 {
			break
		}
	}
	e := startWith(t, func(js jetstream.JetStream) {
		legacy, err := js.KeyValue(ctx, streams.IdempotencyBucket(0))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := legacy.Put(ctx, claimKey, []byte(`{"state":"done","attempt":1,"at":"2026-11-26T08:00:00Z","fusion_id":"300000042"}`)); err != nil {
			t.Fatal(err)
		}
	})
	cmd := &sinewv1.InventoryTransaction{
		Envelope:     &sinewv1.Envelope{EventId: bus.EventID(idemKey), Flow: flow, SourceId: "RX-OLD", IdempotencyKey: idemKey},
		Organization: "MAIN", Subinventory: "PHARM-MAIN", ItemNumber: "RX-1002", TransactionType: "Miscellaneous Issue",
		Quantity: &sinewv1.Quantity{Value: "-1", Uom: "EA"}, TransactionDate: timestamppb.New(time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)),
		SourceHeaderId: "900001", SourceLineId: "1", Program_340B: true,
	}
	if _, err := e.pub.Publish(ctx, streams.FusionCmdSubject(flow, "inventory"), idemKey, cmd); err != nil {
		t.Fatal(err)
	}
	var got *sinewv1.LoadResult
	for deadline := time.Now().Add(10 * time.Second); got == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_ = streams.Scan(ctx, e.js, streams.Results, "result."+flow+".*", time.Time{}, func(m jetstream.Msg) error {
			r := &sinewv1.LoadResult{}
			if proto.Unmarshal(m.Data(), r) == nil && r.GetEnvelope().GetIdempotencyKey() == idemKey {
				got = r
			}
			return nil
		})
	}
	if got == nil || got.Outcome != "accepted" || got.TargetIds["transaction_interface_id"] != "300000042" {
		t.Fatalf("result %v, want accepted as 300000042 (already in Fusion)", got)
	}
	if n := len(e.sim.InventoryRows()); n != 0 {
		t.Errorf("posted again: %d rows in Fusion", n)
	}
	for i, want := range []bool{false, true} {
		kv, err := e.js.KeyValue(ctx, streams.IdempotencyBucket(i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Get(ctx, claimKey); (err == nil) != want {
			t.Errorf("shard %d holds the key: %v, want %v", i, err == nil, want)
		}
	}
}

// An idempotency claim expires claim_ttl after its last write, leaving
// nothing on the server; the same command sent again later (Epic resending
// a dispense, as a new message) is looked up in Fusion before it is
// claimed, and is not posted a second time.
func TestExpiredClaimIsLookedUpNotPostedAgain(t *testing.T) {
	e := startCfg(t, nil, func(c *loader.Config) { c.ClaimTTL, c.ClaimSkew = time.Second, 0 })
	ctx := context.Background()
	const flow, key = "willow-inventory", "willow-inventory:epic.willow:rx-ttl-1:1"
	cmd := &sinewv1.InventoryTransaction{
		Envelope:     &sinewv1.Envelope{EventId: bus.EventID(key), Flow: flow, SourceId: "RX-TTL", IdempotencyKey: key},
		Organization: "MAIN", Subinventory: "PHARM-MAIN", ItemNumber: "RX-1002", TransactionType: "Miscellaneous Issue",
		Quantity: &sinewv1.Quantity{Value: "-1", Uom: "EA"}, TransactionDate: timestamppb.New(time.Now()),
		SourceHeaderId: "910001", SourceLineId: "1",
	}
	outcomes := func() []string {
		var got []string
		_ = streams.Scan(ctx, e.js, streams.Results, "result."+flow+".*", time.Time{}, func(m jetstream.Msg) error {
			r := &sinewv1.LoadResult{}
			if proto.Unmarshal(m.Data(), r) == nil && r.GetEnvelope().GetIdempotencyKey() == key {
				got = append(got, r.Outcome)
			}
			return nil
		})
		return got
	}
	waitOutcomes := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if got := outcomes(); len(got) >= n {
				for _, o := range got {
					if o != "accepted" {
						t.Fatalf("outcomes %v, want accepted", got)
					}
				}
				return
			}
		}
		t.Fatalf("outcomes %v, want %d", outcomes(), n)
	}
	if _, err := e.pub.Publish(ctx, streams.FusionCmdSubject(flow, "inventory"), key, cmd); err != nil {
		t.Fatal(err)
	}
	waitOutcomes(1)

	info, err := e.js.Stream(ctx, "KV_"+streams.IdempotencyBucket(0))
	if err != nil {
		t.Fatal(err)
	}
	if !info.CachedInfo().Config.AllowMsgTTL || info.CachedInfo().Config.SubjectDeleteMarkerTTL != 0 {
		t.Fatalf("idempotency bucket: allow_msg_ttl %v, marker TTL %v; want true and none",
			info.CachedInfo().Config.AllowMsgTTL, info.CachedInfo().Config.SubjectDeleteMarkerTTL)
	}
	// The claim expires and leaves no subject behind.
	left := func() uint64 {
		var n uint64
		for i := range streams.IdempotencyShards {
			s, err := e.js.Stream(ctx, "KV_"+streams.IdempotencyBucket(i))
			if err != nil {
				t.Fatal(err)
			}
			si, err := s.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n += si.State.NumSubjects
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); left() > 1; time.Sleep(100 * time.Millisecond) { // 1: the layout key
		if time.Now().After(deadline) {
			t.Fatalf("%d subjects left in the idempotency buckets after the claim's TTL", left())
		}
	}

	// Sent again as a new message: found in Fusion, not posted twice.
	if _, err := e.pub.Publish(ctx, streams.FusionCmdSubject(flow, "inventory"), key+":resent", cmd); err != nil {
		t.Fatal(err)
	}
	// Its result is the first one's (the same effect: deduplicated), so
	// what shows that it was handled is the claim, back and done.
	claimed := ""
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(claimed, `"done"`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the resent command's claim: %q, want done", claimed)
		}
		for i := range streams.IdempotencyShards {
			kv, err := e.js.KeyValue(ctx, streams.IdempotencyBucket(i))
			if err != nil {
				t.Fatal(err)
			}
			if en, err := kv.Get(ctx, streams.Token(flow)+"."+bus.HashKey(key)); err == nil {
				claimed = string(en.Value())
			}
		}
	}
	if got := outcomes(); len(got) != 1 || got[0] != "accepted" {
		t.Fatalf("outcomes %v, want one accepted", got)
	}
	if rows := e.sim.InventoryRows(); len(rows) != 1 {
		t.Fatalf("%d rows in Fusion, want 1", len(rows))
	}
}
