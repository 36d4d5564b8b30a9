package track_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/track"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// lookupSoon waits for the indexer to file id (it runs after the audit write).
func lookupSoon(t *testing.T, f func() ([]track.Hop, error)) []track.Hop {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		hops, err := f()
		if err == nil || time.Now().After(deadline) {
			if err != nil {
				t.Fatal(err)
			}
			return hops
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestTrackFindsEveryHopByEachBusinessIdAndPatientRef(t *testing.T) {
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- track.NewIndexer(js, track.IndexerConfig{}).Run(ctx, nil) }()

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

	for _, id := range []string{"MSG00042", "RX-991", "ev-1", ref} {
		t.Run(id[:min(len(id), 12)], func(t *testing.T) {
			got := lookupSoon(t, func() ([]track.Hop, error) {
				h, err := track.Lookup(ctx, js, id)
				if err == nil && len(h) < len(hops) {
					err = errors.New("not all indexed yet")
				}
				return h, err
			})
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
			if got[0].TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || got[0].StreamSeq != 7 || got[0].Subject == "" {
				t.Errorf("hop %+v", got[0])
			}
		})
	}
	if _, err := track.Lookup(ctx, js, "WILLOW"); !errors.Is(err, track.ErrNotFound) {
		t.Errorf("a facility is not an identifier: %v", err)
	}
	if _, err := track.Lookup(ctx, js, "lines"); !errors.Is(err, track.ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	// No identifier appears in a subject: only its hash.
	s, _ := js.Stream(ctx, streams.Track)
	info, err := s.Info(ctx, jetstreamSubjects())
	if err != nil {
		t.Fatal(err)
	}
	for subj := range info.State.Subjects {
		if strings.Contains(subj, "MSG00042") || strings.Contains(subj, "RX-991") || strings.Contains(subj, "hmac") {
			t.Errorf("identifier in subject %s", subj)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestIndexerRedeliveryStoresNoSecondCopy(t *testing.T) {
	// The index records' message ids make a second indexing of the same
	// audit record a duplicate: a restarted indexer over the same records
	// leaves each hop once.
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := audit.NewWriter(js, "loader@test")
	if err := w.Write(ctx, &sinewv1.AuditEvent{Flow: "resolute-gl", Hop: "load", Outcome: "ok", BusinessKeys: sinewv1.KeysOf("batch_id", "HB-1")}); err != nil {
		t.Fatal(err)
	}
	run := func(id string) {
		c, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = track.NewIndexer(js, track.IndexerConfig{}).Run(c, nil); close(done) }()
		lookupSoon(t, func() ([]track.Hop, error) { return track.Lookup(ctx, js, id) })
		stop()
		<-done
	}
	run("HB-1")
	// Rewind the consumer: every record is delivered again, in one fetch
	// with a new one, so the fetch's atomic batch holds a duplicate and is
	// refused; its records are then stored one at a time.
	if err := js.DeleteConsumer(ctx, streams.Audit, streams.TrackIndexer); err != nil {
		t.Fatal(err)
	}
	if err := streams.New(streams.DefaultOptions()).Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, &sinewv1.AuditEvent{Flow: "resolute-gl", Hop: "load", Outcome: "ok", BusinessKeys: sinewv1.KeysOf("batch_id", "HB-2")}); err != nil {
		t.Fatal(err)
	}
	run("HB-2")
	time.Sleep(500 * time.Millisecond)
	for _, id := range []string{"HB-1", "HB-2"} {
		hops, err := track.Lookup(ctx, js, id)
		if err != nil || len(hops) != 1 {
			t.Fatalf("%s: %d hops (%v), want 1", id, len(hops), err)
		}
	}
	c, err := js.Consumer(ctx, streams.Audit, streams.TrackIndexer)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := c.Info(ctx); err != nil || info.NumPending != 0 || info.NumAckPending != 0 {
		t.Fatalf("consumer left %+v (%v): every audit record should be acked", info, err)
	}
}

func TestIndexerStoresAFetchAsAtomicBatches(t *testing.T) {
	// Many audit records at once: every hop indexed once, every record acked.
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := audit.NewWriter(js, "loader@test")
	const n = 300
	for i := range n {
		if err := w.Write(ctx, &sinewv1.AuditEvent{Flow: "resolute-gl", Hop: "load", Outcome: "ok",
			BusinessKeys: sinewv1.KeysOf("batch_id", fmt.Sprintf("HB-%d", i), "control_id", fmt.Sprintf("C-%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- track.NewIndexer(js, track.IndexerConfig{}).Run(ctx, nil) }()
	lookupSoon(t, func() ([]track.Hop, error) { return track.Lookup(ctx, js, fmt.Sprintf("C-%d", n-1)) })
	for i := range n {
		for _, id := range []string{fmt.Sprintf("HB-%d", i), fmt.Sprintf("C-%d", i)} {
			if hops, err := track.Lookup(ctx, js, id); err != nil || len(hops) != 1 {
				t.Fatalf("%s: %d hops (%v), want 1", id, len(hops), err)
			}
		}
	}
	s, err := js.Stream(ctx, streams.Track)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != 2*n || !info.Config.AllowAtomicPublish {
		t.Fatalf("TRACK %+v (%v): want %d records (batch id, control id per hop), atomic publish allowed", info.State, err, 2*n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func jetstreamSubjects() jetstream.StreamInfoOpt { return jetstream.WithSubjectFilter("track.>") }
