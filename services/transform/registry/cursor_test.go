package registry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// failAfter publishes through the real bus until n publishes have gone
// through, then fails (a NATS outage mid-page).
type failAfter struct {
	b *bus.Bus
	n int
}

func (f *failAfter) Publish(ctx context.Context, subject, msgID string, msg proto.Message) (*jetstream.PubAck, error) {
	if f.n == 0 {
		return nil, errors.New("simulated: JetStream unavailable")
	}
	f.n--
	return f.b.Publish(ctx, subject, msgID, msg)
}

type rec struct {
	id string
	at time.Time
}

// TestCursorPollerMovesPastOnlyWhatIsStoredAndNeverBack: records are
// published oldest first and the cursor moves after each; a publish that
// fails leaves the cursor on the last stored record, so the next poll
// resumes there. A record without an update time moves the cursor to
// the epoch, and an older one never moves it back.
func TestCursorPollerMovesPastOnlyWhatIsStoredAndNeverBack(t *testing.T) {
	opts := streams.DefaultOptions()
	_, nc, js := natstest.StartWithTopology(t, opts)
	b, err := bus.New(nc, bus.Config{}, bus.Options{Service: "transform", Logger: zerolog.Nop(), AuditSecret: []byte("test-secret")})
	if err != nil {
		t.Fatal(err)
	}
	fc, err := fusion.New(fusion.Config{BaseURL: "http://127.0.0.1:1", Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	source := []rec{{"zero", time.Time{}}, {"a", t0}, {"b", t0.Add(time.Second)}, {"c", t0.Add(2 * time.Second)}}
	var sinces []time.Time
	ignoreSince := false
	pub := &failAfter{b: b, n: 2}
	f := &flows.Flow{ID: "cursor-test", Source: "fusion.test", State: flows.Active}
	p, err := registry.NewCursorPoller(ctx, f, registry.Env{JS: js, Publisher: pub, Fusion: fc}, registry.Cursor[rec]{
		Feed: "things",
		Read: func(_ *fusion.Client, _ context.Context, since time.Time) ([]rec, error) {
			sinces = append(sinces, since)
			var out []rec
			for _, r := range source {
				if ignoreSince || since.IsZero() || r.at.After(since) {
					out = append(out, r)
				}
			}
			return out, nil
		},
		Change: func(f *flows.Flow, r rec) registry.Change {
			return registry.Change{Subject: streams.EpicCmdSubject(f.ID, "thing"), MsgID: f.ID + "/" + r.id,
				Msg: &sinewv1.SupplierChange{SupplierNumber: r.id}, At: r.at}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, streams.KVFusionPoll)
	if err != nil {
		t.Fatal(err)
	}
	cursor := func() string {
		e, err := kv.Get(ctx, p.Key())
		if err != nil {
			return "none"
		}
		return string(e.Value())
	}
	if err := p.Poll(ctx); err == nil {
		t.Fatal("a failed publish was not reported")
	}
	if got, want := cursor(), t0.Format(time.RFC3339Nano); got != want {
		t.Fatalf("cursor after two stored records = %s, want %s", got, want)
	}
	pub.n = 10
	if err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := cursor(), t0.Add(2*time.Second).Format(time.RFC3339Nano); got != want {
		t.Fatalf("cursor = %s, want %s", got, want)
	}
	if len(sinces) != 2 || !sinces[0].IsZero() || !sinces[1].Equal(t0) {
		t.Fatalf("reads from %v, want zero then %v", sinces, t0)
	}
	// Fusion answers an older record again (a clock step back): the cursor stays.
	source, ignoreSince = []rec{{"late", t0.Add(-time.Hour)}}, true
	if err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := cursor(), t0.Add(2*time.Second).Format(time.RFC3339Nano); got != want {
		t.Fatalf("cursor moved back to %s, want %s", got, want)
	}
	info, err := js.Stream(ctx, streams.EpicCmd)
	if err != nil {
		t.Fatal(err)
	}
	st, err := info.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// zero, a, b, c, late: each stored once although a poll stopped mid-page.
	if st.State.Msgs != 5 {
		t.Fatalf("EPIC_CMD holds %d messages, want 5", st.State.Msgs)
	}
}
