package deadletter_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/deadletter"
)

type env struct {
	js  jetstream.JetStream
	bus *bus.Bus
	dlq *dlq.Store
}

func start(t *testing.T) *env {
	t.Helper()
	_, nc, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	b, err := bus.New(nc, bus.Config{}, bus.Options{Service: "deadletter", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := deadletter.New(deadletter.DefaultConfig(), b)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, svc)
	st, err := dlq.Open(context.Background(), js, b.Audit())
	if err != nil {
		t.Fatal(err)
	}
	return &env{js: js, bus: b, dlq: st}
}

func (e *env) letters(t *testing.T) []*dlq.Entry {
	t.Helper()
	var out []*dlq.Entry
	if err := e.dlq.List(context.Background(), "", func(en *dlq.Entry) error { out = append(out, en); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) waitLetters(t *testing.T, n int) []*dlq.Entry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.letters(t)
		if len(got) >= n {
			time.Sleep(300 * time.Millisecond) // a duplicate would show up now
			return e.letters(t)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dead letters, want %d", len(got), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rawConsumer is a consumer the bus does not run: the test plays a crashing handler.
func rawConsumer(t *testing.T, js jetstream.JetStream, name string) jetstream.Consumer {
	t.Helper()
	c, err := js.CreateOrUpdateConsumer(context.Background(), streams.EpicCmd, jetstream.ConsumerConfig{
		Durable: name, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 300 * time.Millisecond, MaxDeliver: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMaxDeliveriesBecomesDeadLetterWithPayload(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	ack, err := e.js.Publish(ctx, "epic.cmd.worker-sync.mfn", []byte("MSH|^~\\&|..."), jetstream.WithMsgID("w1"))
	if err != nil {
		t.Fatal(err)
	}
	c := rawConsumer(t, e.js, "hangs")
	for i := 0; i < 4; i++ { // three deliveries never acknowledged, then the server gives up
		if b, err := c.Fetch(1, jetstream.FetchMaxWait(time.Second)); err == nil {
			for range b.Messages() {
			}
		}
	}
	got := e.waitLetters(t, 1)
	if len(got) != 1 {
		t.Fatalf("%d dead letters, want 1", len(got))
	}
	d := got[0].Letter
	if d.Kind != dlq.KindMaxDeliveries || d.StreamSeq != ack.Sequence || d.Subject != "epic.cmd.worker-sync.mfn" ||
		string(d.Payload) != "MSH|^~\\&|..." || !d.PayloadAvailable || d.Deliveries != 3 || d.Consumer != "hangs" {
		t.Errorf("letter %+v", d)
	}
}

func TestTerminatedElsewhereKeepsReason(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	if _, err := e.js.Publish(ctx, "epic.cmd.supplier-sync.mfn", []byte("x"), jetstream.WithMsgID("s1")); err != nil {
		t.Fatal(err)
	}
	c := rawConsumer(t, e.js, "terms")
	m, err := c.Next(jetstream.FetchMaxWait(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.TermWithReason("supplier has no site"); err != nil {
		t.Fatal(err)
	}
	d := e.waitLetters(t, 1)[0].Letter
	if d.Kind != dlq.KindTerminated || d.Reason != "terminated: supplier has no site" || string(d.Payload) != "x" {
		t.Errorf("letter %+v", d)
	}
}

func TestBusAndAdvisoryRecordOnce(t *testing.T) {
	e := start(t)
	cons, _ := streams.New(streams.DefaultOptions()).Consumer(streams.LoaderEpic)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.bus.Consume(ctx, cons, func(context.Context, *bus.Delivery) error {
			return bus.Permanent(errors.New("Epic rejected MFN: AR"))
		}, bus.ConsumeOptions{})
	}()
	defer func() { cancel(); <-done }()
	if _, err := e.bus.PublishRaw(context.Background(), natsMsg("epic.cmd.worker-sync.mfn", "y"), "once"); err != nil {
		t.Fatal(err)
	}
	got := e.waitLetters(t, 1)
	if len(got) != 1 || got[0].Letter.RecordedBy != "bus:deadletter" || got[0].Letter.Kind != dlq.KindPermanent {
		t.Errorf("%d letters, first %+v", len(got), got[0].Letter)
	}
}

func TestUnavailablePayloadStillRecorded(t *testing.T) {
	e := start(t)
	adv := `{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"FUSION_CMD","consumer":"loader-fusion","stream_seq":999,"deliveries":3}`
	if _, err := e.js.Publish(context.Background(), streams.AdvisoryMaxDeliveries+".FUSION_CMD.loader-fusion", []byte(adv)); err != nil {
		t.Fatal(err)
	}
	d := e.waitLetters(t, 1)[0].Letter
	if d.PayloadAvailable || d.StreamSeq != 999 || d.Kind != dlq.KindMaxDeliveries {
		t.Errorf("letter %+v", d)
	}
	if _, err := e.dlq.Replay(context.Background(), e.letters(t)[0].Seq, "op", "payload lost upstream", false); !errors.Is(err, dlq.ErrNoPayload) {
		t.Errorf("replay of a letter without payload: %v", err)
	}
}

func natsMsg(subject, data string) *nats.Msg { return &nats.Msg{Subject: subject, Data: []byte(data)} }
