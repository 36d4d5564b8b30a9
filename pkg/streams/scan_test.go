package streams_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

func TestScanReadsToTheEndAsOfItsStart(t *testing.T) {
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx := context.Background()
	for i := range 1200 {
		subj := "result.a.accepted"
		if i%3 == 0 {
			subj = "result.b.accepted"
		}
		if _, err := js.Publish(ctx, subj, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	var got int
	err := streams.Scan(ctx, js, streams.Results, "result.a.*", time.Time{}, func(m jetstream.Msg) error {
		got++
		if got == 1 { // written during the scan: not this scan's
			_, _ = js.Publish(ctx, "result.a.late", []byte("late"))
		}
		return nil
	})
	if err != nil || got != 800 {
		t.Fatalf("scanned %d, err %v; want 800", got, err)
	}
	got = 0
	if err := streams.Scan(ctx, js, streams.Results, "result.c.*", time.Time{}, func(jetstream.Msg) error { got++; return nil }); err != nil || got != 0 {
		t.Fatalf("empty filter: %d, %v", got, err)
	}
	if err := streams.Scan(ctx, js, streams.Results, "result.>", time.Now().Add(time.Hour), func(jetstream.Msg) error { got++; return nil }); err != nil || got != 0 {
		t.Fatalf("since the future: %d, %v", got, err)
	}
}
