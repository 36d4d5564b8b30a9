package streams_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

// TestScansLeaveNoConsumers is issue 9 item 13: after audit list, dlq list
// and the reconciler's scans, the streams list only the topology's
// durable consumers (an ordered consumer per Fetch used to stay behind
// with hundreds of messages "unprocessed").
func TestScansLeaveNoConsumers(t *testing.T) {
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx := context.Background()
	w := audit.NewWriter(js, "scan-test")
	for i := range 1300 { // more than two pull batches
		if err := w.Write(ctx, &sinewv1.AuditEvent{Flow: "hl7", Hop: "ingest", Outcome: "stored", Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := dlq.Write(ctx, js, &sinewv1.DeadLetter{Stream: streams.FusionCmd, Consumer: streams.LoaderFusion, StreamSeq: uint64(i + 1), Subject: "fusion.cmd.x.y"}); err != nil {
			t.Fatal(err)
		}
		for _, subj := range []string{"fusion.cmd.x.inventory", "result.x.accepted"} {
			if _, err := js.Publish(ctx, subj, []byte("m")); err != nil {
				t.Fatal(err)
			}
		}
	}
	events := 0
	if err := audit.Read(ctx, js, "", func(e audit.Entry) error { events += len(e.Events); return nil }); err != nil || events != 1300 {
		t.Fatalf("audit read: %d events, %v", events, err)
	}
	store, err := dlq.Open(ctx, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	letters := 0
	if err := store.List(ctx, "", func(*dlq.Entry) error { letters++; return nil }); err != nil || letters != 1300 {
		t.Fatalf("dlq list: %d, %v", letters, err)
	}
	for _, s := range []string{streams.FusionCmd, streams.Results} {
		n := 0
		if err := streams.Scan(ctx, js, s, ">", time.Time{}, func(jetstream.Msg) error { n++; return nil }); err != nil || n != 1300 {
			t.Fatalf("scan %s: %d, %v", s, n, err)
		}
	}
	// A scan that stops early (its callback fails) deletes its consumer too.
	stop := fmt.Errorf("stop")
	if err := streams.Scan(ctx, js, streams.Audit, "audit.>", time.Time{}, func(jetstream.Msg) error { return stop }); err != stop {
		t.Fatalf("scan stopped: %v", err)
	}

	durable := map[string]bool{}
	for _, c := range streams.New(streams.DefaultOptions()).Consumers {
		durable[c.Stream+"/"+c.Name] = true
	}
	for _, s := range []string{streams.Audit, streams.DLQ, streams.FusionCmd, streams.Results} {
		st, err := js.Stream(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		lister := st.ListConsumers(ctx)
		for ci := range lister.Info() {
			if !durable[s+"/"+ci.Name] {
				left = append(left, fmt.Sprintf("%s (unprocessed %d)", ci.Name, ci.NumPending))
			}
		}
		if err := lister.Err(); err != nil {
			t.Fatal(err)
		}
		sort.Strings(left)
		if len(left) > 0 {
			t.Errorf("%s: consumers left behind by scans: %v", s, left)
		}
	}
}
