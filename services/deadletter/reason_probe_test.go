package deadletter_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/reason"
)

func TestAdvisoryDeadLettersCarryTheirReasonCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		kill func(t *testing.T, c jetstream.Consumer)
		want reason.Code
	}{
		{"max deliveries", func(t *testing.T, c jetstream.Consumer) {
			for i := 0; i < 4; i++ { // never acknowledged
				if b, err := c.Fetch(1, jetstream.FetchMaxWait(time.Second)); err == nil {
					for range b.Messages() {
					}
				}
			}
		}, reason.DLQMaxDeliveries},
		{"terminated", func(t *testing.T, c jetstream.Consumer) {
			m, err := c.Next(jetstream.FetchMaxWait(2 * time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if err := m.TermWithReason("no site"); err != nil {
				t.Fatal(err)
			}
		}, reason.DLQTerminated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t)
			if _, err := e.js.Publish(context.Background(), "epic.cmd.worker-sync.mfn", []byte("x"), jetstream.WithMsgID("r1")); err != nil {
				t.Fatal(err)
			}
			tc.kill(t, rawConsumer(t, e.js, "probe"))
			if d := e.waitLetters(t, 1)[0].Letter; reason.Code(d.ReasonCode) != tc.want {
				t.Errorf("reason code %q, want %s (kind %s)", d.ReasonCode, tc.want, d.Kind)
			}
		})
	}
}
