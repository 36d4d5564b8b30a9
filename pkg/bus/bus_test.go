package bus_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

// env is one test's server, topology, bus and consumer.
type env struct {
	srv  *natstest.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	bus  *bus.Bus
	cons streams.Consumer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv, nc, js := natstest.StartWithTopology(t, streams.Options{DuplicateWindow: time.Minute})
	b, err := bus.New(nc, bus.Config{}, bus.Options{Service: "test", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	c := streams.Consumer{Stream: streams.FusionCmd, Name: "test-loader", Filter: []string{"fusion.cmd.test.>"},
		MaxDeliver: streams.MaxDeliver, AckWait: 2 * time.Second, MaxAckPending: 100,
		RetryBase: 150 * time.Millisecond, Hop: "load"}
	ensureConsumer(t, js, c)
	return &env{srv: srv, nc: nc, js: js, bus: b, cons: c}
}

func ensureConsumer(t *testing.T, js jetstream.JetStream, c streams.Consumer) {
	t.Helper()
	if _, err := js.CreateOrUpdateConsumer(context.Background(), c.Stream, c.Config()); err != nil {
		t.Fatal(err)
	}
}

// publish sends one InventoryTransaction with a test header.
func (e *env) publish(t *testing.T, id string) *jetstream.PubAck {
	t.Helper()
	ev := &sinewv1.InventoryTransaction{
		Envelope:   &sinewv1.Envelope{EventId: id, Flow: "willow-inventory", IdempotencyKey: "epic.willow:" + id},
		ItemNumber: "ITEM-" + id, Quantity: &sinewv1.Quantity{Value: "2", Uom: "EA"},
	}
	ack, err := e.bus.Publish(context.Background(), "fusion.cmd.test.issue", "cmd:"+id, ev)
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

// run starts the consumer loop with h until the test ends.
func (e *env) run(t *testing.T, b *bus.Bus, h bus.Handler) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := b.Consume(ctx, e.cons, h, bus.ConsumeOptions{ShutdownGrace: time.Second}); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return cancel
}

// deadLetters returns every DLQ record.
func (e *env) deadLetters(t *testing.T) []*dlq.Entry {
	t.Helper()
	st, err := dlq.Open(context.Background(), e.js, e.bus.Audit())
	if err != nil {
		t.Fatal(err)
	}
	var out []*dlq.Entry
	if err := st.List(context.Background(), "", func(en *dlq.Entry) error { out = append(out, en); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTransientErrorRetriedWithGrowingDelays(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var at []time.Time
	var ok atomic.Int32
	e.run(t, e.bus, bus.Proto(func(ctx context.Context, d *bus.Delivery, ev *sinewv1.InventoryTransaction) error {
		mu.Lock()
		at = append(at, time.Now())
		n := len(at)
		mu.Unlock()
		if n < 3 {
			return errors.New("fusion: 503 service unavailable")
		}
		ok.Add(1)
		return nil
	}))
	e.publish(t, "1")
	waitFor(t, "third delivery to succeed", 10*time.Second, func() bool { return ok.Load() == 1 })
	mu.Lock()
	defer mu.Unlock()
	first, second := at[1].Sub(at[0]), at[2].Sub(at[1])
	base := e.cons.RetryBase
	if first < base || second < 2*base {
		t.Errorf("delays %v, %v; want ≥ %v and ≥ %v", first, second, base, 2*base)
	}
	if second <= first {
		t.Errorf("delays did not grow: %v then %v", first, second)
	}
	if got := len(e.deadLetters(t)); got != 0 {
		t.Errorf("%d dead letters after a retried success", got)
	}
}

func TestThreeFailuresDeadLetterWithPayloadSubjectHeadersReason(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	e.run(t, e.bus, func(ctx context.Context, d *bus.Delivery) error {
		calls.Add(1)
		return errors.New("fusion: 502 bad gateway")
	})
	hdr := nats.Header{}
	hdr.Set("x-source", "willow")
	m := &nats.Msg{Subject: "fusion.cmd.test.issue", Data: []byte("payload-bytes"), Header: hdr}
	ack, err := e.bus.PublishRaw(context.Background(), m, "cmd:exhaust")
	if err != nil {
		t.Fatal(err)
	}
	var dl []*dlq.Entry
	waitFor(t, "dead letter", 10*time.Second, func() bool { dl = e.deadLetters(t); return len(dl) == 1 })
	time.Sleep(500 * time.Millisecond) // no fourth delivery may follow
	if c := calls.Load(); c != 3 {
		t.Errorf("handler called %d times, want 3", c)
	}
	d := dl[0].Letter
	if string(d.Payload) != "payload-bytes" || !d.PayloadAvailable {
		t.Errorf("payload %q available=%v", d.Payload, d.PayloadAvailable)
	}
	if d.Subject != "fusion.cmd.test.issue" || d.Stream != streams.FusionCmd || d.StreamSeq != ack.Sequence || d.Consumer != e.cons.Name {
		t.Errorf("origin %s %s/%s seq %d", d.Subject, d.Stream, d.Consumer, d.StreamSeq)
	}
	if v := d.Headers["x-source"]; v == nil || v.Values[0] != "willow" {
		t.Errorf("headers %v", d.Headers)
	}
	if d.Kind != dlq.KindExhausted || d.Deliveries != 3 || d.Reason == "" {
		t.Errorf("kind %s deliveries %d reason %q", d.Kind, d.Deliveries, d.Reason)
	}
	if want := "502 bad gateway"; !strings.Contains(d.Reason, want) {
		t.Errorf("reason %q lacks %q", d.Reason, want)
	}
}

func TestPermanentErrorDeadLettersAtOnceAndReplayDeliversOnce(t *testing.T) {
	e := newEnv(t)
	var calls, ok atomic.Int32
	var fixed atomic.Bool
	e.run(t, e.bus, bus.Proto(func(ctx context.Context, d *bus.Delivery, ev *sinewv1.InventoryTransaction) error {
		calls.Add(1)
		if !fixed.Load() {
			return bus.Permanent(errors.New("unmapped NDC 0002-8215-01 in crosswalk v3"))
		}
		if ev.ItemNumber != "ITEM-7" || d.Header.Get(dlq.ReplayOfHeader) == "" {
			t.Errorf("replayed %q with headers %v", ev.ItemNumber, d.Header)
		}
		ok.Add(1)
		return nil
	}))
	e.publish(t, "7")
	var dl []*dlq.Entry
	waitFor(t, "dead letter", 5*time.Second, func() bool { dl = e.deadLetters(t); return len(dl) == 1 })
	if c := calls.Load(); c != 1 {
		t.Errorf("permanent error delivered %d times, want 1", c)
	}
	if dl[0].Letter.Kind != dlq.KindPermanent || dl[0].Letter.Flow != "willow-inventory" || dl[0].Letter.EventId != "7" {
		t.Errorf("letter %+v", dl[0].Letter)
	}

	fixed.Store(true)
	st, err := dlq.Open(context.Background(), e.js, e.bus.Audit())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Replay(context.Background(), dl[0].Seq, "analyst@example.org", "crosswalk fixed", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replayed delivery", 5*time.Second, func() bool { return ok.Load() == 1 })
	if _, err := st.Replay(context.Background(), dl[0].Seq, "analyst@example.org", "again", false); !errors.Is(err, dlq.ErrAlreadyReplayed) {
		t.Errorf("second replay: %v, want ErrAlreadyReplayed", err)
	}
	time.Sleep(500 * time.Millisecond)
	if n := ok.Load(); n != 1 {
		t.Errorf("replay handled %d times, want 1", n)
	}
	// The replay is on record: who, and which letter.
	var found bool
	err = audit.Read(context.Background(), e.js, "audit.*.replay", func(en audit.Entry) error {
		for _, ev := range en.Events {
			found = found || (ev.Actor == "analyst@example.org" && ev.Outcome == "replayed")
		}
		return nil
	})
	if err != nil || !found {
		t.Errorf("replay audit record found=%v err=%v", found, err)
	}
}

func TestKilledConsumerLeadsToRedeliveryAndOneSuccess(t *testing.T) {
	e := newEnv(t)
	// Consumer A runs on its own connection and dies mid-handler.
	ncA, err := nats.Connect(e.srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	busA, err := bus.New(ncA, bus.Config{}, bus.Options{Service: "a", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	release := make(chan struct{})
	var okA, okB atomic.Int32
	cancelA := e.run(t, busA, func(ctx context.Context, d *bus.Delivery) error {
		close(entered)
		<-release
		okA.Add(1)
		return nil
	})
	e.publish(t, "k")
	<-entered
	ncA.Close() // the process is gone: nothing more reaches the server from A
	cancelA()

	e.run(t, e.bus, func(ctx context.Context, d *bus.Delivery) error {
		if d.NumDelivered < 2 {
			t.Errorf("B got delivery %d, want a redelivery", d.NumDelivered)
		}
		okB.Add(1)
		return nil
	})
	waitFor(t, "redelivery to B", 10*time.Second, func() bool { return okB.Load() == 1 })
	close(release)
	time.Sleep(e.cons.AckWait + 500*time.Millisecond) // long enough for any further redelivery
	if n := okB.Load(); n != 1 {
		t.Errorf("B succeeded %d times, want 1", n)
	}
	ci, err := e.js.Consumer(context.Background(), e.cons.Stream, e.cons.Name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ci.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumPending != 0 || info.AckFloor.Stream != 1 {
		t.Errorf("consumer not settled: ack pending %d, pending %d, ack floor %d", info.NumAckPending, info.NumPending, info.AckFloor.Stream)
	}
}

func TestDuplicatePublishIsDropped(t *testing.T) {
	e := newEnv(t)
	a1 := e.publish(t, "dup")
	a2 := e.publish(t, "dup")
	if a1.Duplicate || !a2.Duplicate || a1.Sequence != a2.Sequence {
		t.Errorf("first %+v second %+v", a1, a2)
	}
	s, err := e.js.Stream(context.Background(), streams.FusionCmd)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("%d messages stored, want 1", info.State.Msgs)
	}
	if _, err := e.bus.Publish(context.Background(), "fusion.cmd.test.issue", "", &sinewv1.InventoryTransaction{}); !errors.Is(err, bus.ErrNoMsgID) {
		t.Errorf("publish without id: %v", err)
	}
}

func TestEveryHopIsAudited(t *testing.T) {
	e := newEnv(t)
	var ok atomic.Int32
	e.run(t, e.bus, bus.Proto(func(ctx context.Context, d *bus.Delivery, ev *sinewv1.InventoryTransaction) error {
		d.PatientRefs = append(d.PatientRefs, e.bus.PatientRef("MRN", "12345"))
		ok.Add(1)
		return nil
	}))
	for _, id := range []string{"a1", "a2", "a3"} {
		e.publish(t, id)
	}
	waitFor(t, "three handled", 5*time.Second, func() bool { return ok.Load() == 3 })
	v := audit.NewVerifier()
	var hops int
	err := audit.Read(context.Background(), e.js, "audit.willow-inventory.load", func(en audit.Entry) error {
		v.Add(en.Record, en.StreamSeq)
		for _, ev := range en.Events {
			hops++
			if len(ev.PatientRefs) != 1 || strings.Contains(ev.PatientRefs[0], "12345") {
				t.Errorf("patient refs %v", ev.PatientRefs)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if hops != 3 || !v.OK() {
		t.Errorf("%d hop records, problems %v", hops, v.Problems)
	}
}

func TestUndecodablePayloadIsPermanent(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	e.run(t, e.bus, bus.Proto(func(ctx context.Context, d *bus.Delivery, ev *sinewv1.InventoryTransaction) error {
		calls.Add(1)
		return nil
	}))
	m := &nats.Msg{Subject: "fusion.cmd.test.issue", Data: []byte{0xff, 0xff, 0xff}}
	if _, err := e.bus.PublishRaw(context.Background(), m, "cmd:garbage"); err != nil {
		t.Fatal(err)
	}
	var dl []*dlq.Entry
	waitFor(t, "dead letter", 5*time.Second, func() bool { dl = e.deadLetters(t); return len(dl) == 1 })
	if calls.Load() != 0 || dl[0].Letter.Kind != dlq.KindPermanent || !strings.Contains(dl[0].Letter.Reason, "decode") {
		t.Errorf("calls %d letter %+v", calls.Load(), dl[0].Letter)
	}
}

func TestRetryDelay(t *testing.T) {
	base := time.Second
	for n, want := range map[uint64]time.Duration{0: base, 1: base, 2: 2 * base, 3: 4 * base, 40: time.Hour} {
		if got := bus.RetryDelay(base, n); got != want {
			t.Errorf("RetryDelay(%v, %d) = %v, want %v", base, n, got, want)
		}
	}
}

func TestHungHandlerTimesOutAndIsRetried(t *testing.T) {
	e := newEnv(t)
	var calls, ok atomic.Int32
	var firstErr atomic.Value
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.bus.Consume(ctx, e.cons, func(hctx context.Context, d *bus.Delivery) error {
			if calls.Add(1) == 1 {
				<-hctx.Done() // hung until the loop gives up on it
				firstErr.Store(hctx.Err())
				return hctx.Err()
			}
			ok.Add(1)
			return nil
		}, bus.ConsumeOptions{MaxHandlerTime: 300 * time.Millisecond})
	}()
	defer func() { cancel(); <-done }()
	e.publish(t, "hung")
	waitFor(t, "retry after the hung handler", 5*time.Second, func() bool { return ok.Load() == 1 })
	if err, _ := firstErr.Load().(error); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("first handler ended with %v, want deadline exceeded", err)
	}
}
