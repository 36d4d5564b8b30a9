package track_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/track"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// openIndex opens an index in dir, closed at the end of the test.
func openIndex(t *testing.T, dir string) *track.Index {
	t.Helper()
	idx, err := track.OpenIndex(dir, track.IndexConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idx.Close() })
	return idx
}

// runIndexer indexes AUDIT into idx until it has caught up with AUDIT's
// last sequence, then stops.
func runIndexer(t *testing.T, js jetstream.JetStream, idx *track.Index) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- track.NewIndexer(js, idx, track.IndexerConfig{}).Run(ctx, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}()
	waitCaughtUp(t, js, idx)
}

func waitCaughtUp(t *testing.T, js jetstream.JetStream, idx *track.Index) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := track.StatusOf(context.Background(), js, idx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Lag() == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("index not caught up: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTrackFindsEveryHopByEachBusinessIdAndPatientRef(t *testing.T) {
	_, nc, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	idx := openIndex(t, t.TempDir())
	if err := track.Serve(ctx, nc, js, idx); err != nil {
		t.Fatal(err)
	}

	ref := audit.PatientRef([]byte("secret"), "PID-3:WILLOW", "MRN-12345")
	keys := sinewv1.KeysOf("control_id", "MSG00042", "prescription", "RX-991", "lines", "3", "facility", "WILLOW",
		"trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")
	w := audit.NewWriter(js, "ingest@test")
	hops := []struct{ hop, outcome string }{{"ingest", "ok"}, {"transform", "retry"}, {"transform", "ok"}, {"load", "ok"}}
	for _, h := range hops {
		if err := w.Write(ctx, &sinewv1.AuditEvent{Actor: "test", Action: "consume", Flow: "willow-inventory", Hop: h.hop,
			Outcome: h.outcome, Subject: "hl7.in.W.RDS.O13", Stream: "HL7_IN", StreamSeq: 7, EventId: "ev-1",
			PatientRefs: []string{ref}, BusinessKeys: keys}); err != nil {
			t.Fatal(err)
		}
	}
	// An unrelated message must not appear in the timeline.
	if err := w.Write(ctx, &sinewv1.AuditEvent{Flow: "willow-inventory", Hop: "ingest", Outcome: "ok",
		BusinessKeys: sinewv1.KeysOf("control_id", "OTHER")}); err != nil {
		t.Fatal(err)
	}
	runIndexer(t, js, idx)

	for _, id := range []string{"MSG00042", "RX-991", "ev-1", ref} {
		t.Run(id[:min(len(id), 12)], func(t *testing.T) {
			local, err := idx.LookupValue(id)
			if err != nil {
				t.Fatal(err)
			}
			// The same timeline over NATS, asked by key.
			remote, err := track.Ask(ctx, nc, track.Key(id))
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(local) != fmt.Sprint(remote) {
				t.Errorf("over NATS %+v, local %+v", remote, local)
			}
			for _, got := range [][]track.Hop{local, remote} {
				if len(got) != len(hops) {
					t.Fatalf("%d hops, want %d: %+v", len(got), len(hops), got)
				}
				for i, h := range hops {
					if got[i].Hop != h.hop || got[i].Outcome != h.outcome {
						t.Errorf("hop %d = %s/%s, want %s/%s", i, got[i].Hop, got[i].Outcome, h.hop, h.outcome)
					}
				}
				if got[2].Retries != 1 || got[1].Retries != 0 {
					t.Errorf("retries %d, %d: want 0 then 1", got[1].Retries, got[2].Retries)
				}
				if got[0].TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || got[0].StreamSeq != 7 || got[0].Subject == "" || got[0].AuditSeq == 0 {
					t.Errorf("hop %+v", got[0])
				}
			}
		})
	}
	for _, id := range []string{"WILLOW", "lines", "NO-SUCH-ID"} {
		if _, err := idx.LookupValue(id); !errors.Is(err, track.ErrNotFound) {
			t.Errorf("%s: %v, want not found (a facility is not an identifier)", id, err)
		}
		if _, err := track.Ask(ctx, nc, track.Key(id)); !errors.Is(err, track.ErrNotFound) {
			t.Errorf("%s over NATS: %v, want not found", id, err)
		}
	}
	if _, err := track.Ask(ctx, nc, "MSG00042"); err == nil {
		t.Error("an identifier sent as a key was accepted: only keys go over NATS")
	}
	st, err := track.AskStatus(ctx, nc)
	if err != nil || st.Watermark == 0 || st.Watermark != st.AuditLastSeq {
		t.Errorf("status %+v (%v): want the watermark at AUDIT's last sequence", st, err)
	}
	// No stream holds the index any more: nothing but AUDIT has the records.
	if _, err := js.Stream(ctx, "TRACK"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("TRACK stream: %v", err)
	}
}

func TestAskWithoutAConsoleSaysSo(t *testing.T) {
	_, nc, _ := natstest.StartWithTopology(t, streams.DefaultOptions())
	if _, err := track.Ask(context.Background(), nc, track.Key("X")); !errors.Is(err, track.ErrNoIndex) {
		t.Fatalf("%v, want ErrNoIndex", err)
	}
	if _, err := track.AskStatus(context.Background(), nc); !errors.Is(err, track.ErrNoIndex) {
		t.Fatalf("%v, want ErrNoIndex", err)
	}
}

// writeBatches writes n audit events, each with its own batch and control id.
func writeBatches(t *testing.T, js jetstream.JetStream, from, n int) {
	t.Helper()
	w := audit.NewWriter(js, fmt.Sprintf("loader@test-%d", from))
	for i := from; i < from+n; i++ {
		if err := w.Write(context.Background(), &sinewv1.AuditEvent{Flow: "resolute-gl", Hop: "load", Outcome: "ok",
			BusinessKeys: sinewv1.KeysOf("batch_id", fmt.Sprintf("HB-%d", i), "control_id", fmt.Sprintf("C-%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
}

// wantOnce checks each of n messages has one hop under each identifier.
func wantOnce(t *testing.T, idx *track.Index, n int) {
	t.Helper()
	for i := range n {
		for _, id := range []string{fmt.Sprintf("HB-%d", i), fmt.Sprintf("C-%d", i)} {
			if hops, err := idx.LookupValue(id); err != nil || len(hops) != 1 {
				t.Fatalf("%s: %d hops (%v), want 1", id, len(hops), err)
			}
		}
	}
}

func TestIndexingTheSameRecordsAgainLeavesEachHopOnce(t *testing.T) {
	// The keys are (identifier, audit sequence, event): a second indexing
	// of the same audit records writes the same keys.
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	const n = 300 // more than one fetch
	writeBatches(t, js, 0, n)
	idx := openIndex(t, t.TempDir())
	runIndexer(t, js, idx)
	wantOnce(t, idx, n)
	if err := track.SetWatermark(idx, 0); err != nil {
		t.Fatal(err)
	}
	runIndexer(t, js, idx)
	wantOnce(t, idx, n)
}

func TestIndexerResumesFromTheWatermarkAndAWipedDirRebuilds(t *testing.T) {
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	dir := filepath.Join(t.TempDir(), "track")
	writeBatches(t, js, 0, 10)
	idx, err := track.OpenIndex(dir, track.IndexConfig{})
	if err != nil {
		t.Fatal(err)
	}
	runIndexer(t, js, idx)
	if err := idx.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart: the reopened index starts where it stopped.
	writeBatches(t, js, 10, 10)
	idx, err = track.OpenIndex(dir, track.IndexConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if wm, err := idx.Watermark(); err != nil || wm != 10 {
		t.Fatalf("watermark after a restart %d (%v), want 10", wm, err)
	}
	runIndexer(t, js, idx)
	wantOnce(t, idx, 20)
	if err := idx.Close(); err != nil {
		t.Fatal(err)
	}

	// A wiped dir: rebuilt from AUDIT's first record.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	idx = openIndex(t, dir)
	if wm, err := idx.Watermark(); err != nil || wm != 0 {
		t.Fatalf("watermark of a new index %d (%v), want 0", wm, err)
	}
	runIndexer(t, js, idx)
	wantOnce(t, idx, 20)
	if wm, _ := idx.Watermark(); wm != 20 {
		t.Fatalf("watermark %d, want 20", wm)
	}
}

func TestLookupRefusesWhatIsNotAKey(t *testing.T) {
	idx := openIndex(t, t.TempDir())
	for _, k := range []string{"", "MSG00042", track.Key("x")[:30], track.Key("x") + "00"} {
		if _, err := idx.Lookup(k); err == nil || errors.Is(err, track.ErrNotFound) {
			t.Errorf("%q: %v, want a bad key", k, err)
		}
	}
	if _, err := idx.Lookup(track.Key("x")); !errors.Is(err, track.ErrNotFound) {
		t.Errorf("empty index: %v", err)
	}
}

func TestEntriesLeaveOutWhatNobodyLooksUpBy(t *testing.T) {
	// Each entry is a write: an HL7 receipt's body hash and its idempotency
	// key (sender and control id, filed under the control id already) are
	// not filed.
	for _, tc := range []struct {
		name string
		ev   *sinewv1.AuditEvent
		want []string
	}{
		{"receipt", &sinewv1.AuditEvent{Hop: "ingest", EventId: "ev-1", IdempotencyKey: "hl7:STMARYS:WILLOW:RX1",
			PatientRefs:  []string{"hmac-sha256:ab"},
			BusinessKeys: sinewv1.KeysOf("body_sha256", "9526", "control_id", "RX1", "facility", "STMARYS")},
			[]string{"control_id=RX1", "event_id=ev-1", "patient=hmac-sha256:ab"}},
		{"receipt without a control id", &sinewv1.AuditEvent{Hop: "ingest", EventId: "ev-2", IdempotencyKey: "hl7:STMARYS:WILLOW::9526",
			BusinessKeys: sinewv1.KeysOf("body_sha256", "9526")},
			[]string{"event_id=ev-2", "idempotency_key=hl7:STMARYS:WILLOW::9526"}},
		{"command", &sinewv1.AuditEvent{Hop: "load", EventId: "ev-3", IdempotencyKey: "willow-inventory:epic.willow:rx-RX1:1",
			BusinessKeys: sinewv1.KeysOf("control_id", "RX1", "line", "1")},
			[]string{"control_id=RX1", "event_id=ev-3", "idempotency_key=willow-inventory:epic.willow:rx-RX1:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range track.Entries(tc.ev, 1) {
				got = append(got, e.Hop.Kind+"="+e.Value)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("entries %v, want %v", got, tc.want)
			}
		})
	}
}
