package streams_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

func TestEnsureIsIdempotentAndMatchesDesign(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	opts := streams.DefaultOptions()
	opts.IngestMaxBytes = 64 << 10
	topo := streams.New(opts)
	for range 2 {
		if err := topo.Ensure(ctx, js); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"HL7_IN", "FHIR_IN", "BATCH_IN", "FUSION_CMD", "EPIC_CMD", "RESULTS", "RECON", "AUDIT", "ADVISORIES", "DLQ"}
	for _, name := range want {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		cfg := s.CachedInfo().Config
		if cfg.Retention != jetstream.LimitsPolicy {
			t.Errorf("%s retention %v", name, cfg.Retention)
		}
		ingest := name == "HL7_IN" || name == "FHIR_IN" || name == "BATCH_IN"
		if ingest != (cfg.Discard == jetstream.DiscardNew && cfg.MaxBytes > 0) {
			t.Errorf("%s discard %v max bytes %d", name, cfg.Discard, cfg.MaxBytes)
		}
		kept := name == "AUDIT" || name == "DLQ"
		if kept != (cfg.DenyDelete && cfg.DenyPurge) {
			t.Errorf("%s deny delete %v purge %v", name, cfg.DenyDelete, cfg.DenyPurge)
		}
	}
	for _, c := range topo.Consumers {
		ci, err := js.Consumer(ctx, c.Stream, c.Name)
		if err != nil {
			t.Fatalf("consumer %s: %v", c.Name, err)
		}
		if cfg := ci.CachedInfo().Config; len(cfg.BackOff) != 0 || cfg.MaxDeliver != c.MaxDeliver {
			t.Errorf("%s backoff %v max deliver %d", c.Name, cfg.BackOff, cfg.MaxDeliver)
		}
	}
	for _, kv := range []string{streams.KVCrosswalk, streams.KVIdempotency, streams.KVFlowState, streams.KVWatermarks, streams.KVReplays, streams.KVSequences, streams.KVBatchSeen, streams.KVBatchState} {
		if _, err := js.KeyValue(ctx, kv); err != nil {
			t.Errorf("kv %s: %v", kv, err)
		}
	}
	for _, o := range []string{streams.ObjBatchFiles, streams.ObjFBDI, streams.ObjJobLogs} {
		if _, err := js.ObjectStore(ctx, o); err != nil {
			t.Errorf("object store %s: %v", o, err)
		}
	}

	// AUDIT refuses deletion.
	if _, err := js.Publish(ctx, "audit.x.y", []byte("r")); err != nil {
		t.Fatal(err)
	}
	a, _ := js.Stream(ctx, streams.Audit)
	if err := a.DeleteMsg(ctx, 1); err == nil {
		t.Error("AUDIT allowed a delete")
	}
	if err := a.Purge(ctx); err == nil {
		t.Error("AUDIT allowed a purge")
	}

	// A full ingest stream refuses new messages instead of dropping old ones.
	big := make([]byte, 16<<10)
	var refused error
	for i := range 10 {
		if _, err := js.Publish(ctx, streams.HL7Subject("FAC", "ADT", "A01"), big, jetstream.WithMsgID(string(rune('a'+i)))); err != nil {
			refused = err
			break
		}
	}
	var apiErr *jetstream.APIError
	if refused == nil || !errors.As(refused, &apiErr) {
		t.Errorf("full HL7_IN accepted everything (err %v)", refused)
	}
	h, _ := js.Stream(ctx, streams.HL7In)
	info, _ := h.Info(ctx)
	if info.State.FirstSeq != 1 {
		t.Errorf("old data dropped: first seq %d", info.State.FirstSeq)
	}
}

func TestToken(t *testing.T) {
	for in, want := range map[string]string{"": "none", "ST.MARY'S": "ST_MARY'S", "A B*>": "A_B__", "RADY": "RADY"} {
		if got := streams.Token(in); got != want {
			t.Errorf("Token(%q) = %q, want %q", in, got, want)
		}
	}
}

// A deployment upgraded from claims kept for ever: Ensure turns message
// TTLs on for the idempotency buckets it finds, keeps their keys, adds no
// delete markers, and runs again cleanly (CreateOrUpdateKeyValue would try
// to turn TTLs off, which the server refuses).
func TestEnsureAllowsClaimTTLsOnAnExistingIdempotencyBucket(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	old, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: streams.IdempotencyBucket(0), History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Put(ctx, "willow-inventory.abc", []byte(`{"state":"done"}`)); err != nil {
		t.Fatal(err)
	}
	topo := streams.New(streams.DefaultOptions())
	for range 2 {
		if err := topo.Ensure(ctx, js); err != nil {
			t.Fatal(err)
		}
	}
	for i := range streams.IdempotencyShards {
		s, err := js.Stream(ctx, "KV_"+streams.IdempotencyBucket(i))
		if err != nil {
			t.Fatal(err)
		}
		if cfg := s.CachedInfo().Config; !cfg.AllowMsgTTL || cfg.SubjectDeleteMarkerTTL != 0 || cfg.MaxMsgsPerSubject != 1 {
			t.Errorf("%s: allow_msg_ttl %v, marker TTL %v, history %d", cfg.Name, cfg.AllowMsgTTL, cfg.SubjectDeleteMarkerTTL, cfg.MaxMsgsPerSubject)
		}
	}
	kv, err := js.KeyValue(ctx, streams.IdempotencyBucket(0))
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "willow-inventory.abc"); err != nil || string(e.Value()) != `{"state":"done"}` {
		t.Fatalf("the claim kept from before: %v, %v", e, err)
	}
}
