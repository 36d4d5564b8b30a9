package bus_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

// groupEnv is a sync_always server (the durable default) with the
// topology, a bus and a group committer on it.
func groupEnv(t *testing.T, cfg bus.GroupConfig) (*bus.Group, jetstream.Stream, *nats.Conn) {
	t.Helper()
	nc, js := natstest.StartSyncAlways(t).Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := streams.New(streams.Options{DuplicateWindow: time.Minute}).Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, streams.HL7In)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.New(nc, bus.Config{}, bus.Options{Service: "test", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return b.NewGroup("test", cfg), st, nc
}

func rawMsg(subject, body string) *nats.Msg {
	return &nats.Msg{Subject: subject, Data: []byte(body)}
}

// publishAll publishes n messages from n goroutines at once and returns
// their acknowledgements (nil where it failed) and errors.
func publishAll(t *testing.T, g *bus.Group, n int, id func(int) string) ([]*jetstream.PubAck, []error) {
	t.Helper()
	acks, errs := make([]*jetstream.PubAck, n), make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			acks[i], errs[i] = g.PublishRaw(ctx, rawMsg("hl7.in.F.ADT.A08", "m"+strconv.Itoa(i)), id(i))
		})
	}
	close(start)
	wg.Wait()
	return acks, errs
}

func TestGroupCommitsConcurrentPublishesOncePerMessage(t *testing.T) {
	g, st, _ := groupEnv(t, bus.GroupConfig{})
	const n = 200
	acks, errs := publishAll(t, g, n, func(i int) string { return "g-" + strconv.Itoa(i) })
	seen := map[uint64]int{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("message %d: %v", i, errs[i])
		}
		if acks[i].Duplicate {
			t.Fatalf("message %d acknowledged as a duplicate", i)
		}
		if j, dup := seen[acks[i].Sequence]; dup {
			t.Fatalf("messages %d and %d both acknowledged at seq %d", j, i, acks[i].Sequence)
		}
		seen[acks[i].Sequence] = i
		// Each acknowledgement names its own message.
		m, err := st.GetMsg(context.Background(), acks[i].Sequence)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) != "m"+strconv.Itoa(i) || m.Header.Get(jetstream.MsgIDHeader) != "g-"+strconv.Itoa(i) {
			t.Fatalf("seq %d holds %q (%s), acknowledged for message %d", acks[i].Sequence, m.Data, m.Header.Get(jetstream.MsgIDHeader), i)
		}
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n {
		t.Fatalf("%d messages stored, want %d", info.State.Msgs, n)
	}
	s := g.Stats()
	t.Logf("%d messages in %d groups, largest %d", s.Messages, s.Groups, s.Largest)
	if s.Messages != n || s.Largest < 2 {
		t.Fatalf("stats %+v: want %d messages and some group of 2 or more", s, n)
	}
}

func TestGroupIsBounded(t *testing.T) {
	tests := []struct {
		name string
		cfg  bus.GroupConfig
		max  uint64
	}{
		{"by messages", bus.GroupConfig{MaxMessages: 4}, 4},
		{"by bytes", bus.GroupConfig{MaxBytes: 1}, 1}, // every message alone exceeds it: groups of one
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _, _ := groupEnv(t, tt.cfg)
			_, errs := publishAll(t, g, 64, func(i int) string { return "b-" + strconv.Itoa(i) })
			for i, err := range errs {
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			if s := g.Stats(); s.Largest > tt.max || s.Messages != 64 {
				t.Fatalf("stats %+v: want 64 messages, groups of at most %d", s, tt.max)
			}
		})
	}
}

func TestGroupLingerFlushesAPartialGroup(t *testing.T) {
	// A lone message waits at most the linger, then is committed.
	g, st, _ := groupEnv(t, bus.GroupConfig{Linger: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ack, err := g.PublishRaw(ctx, rawMsg("hl7.in.F.ADT.A08", "alone"), "alone")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := st.GetMsg(ctx, ack.Sequence); err != nil || string(m.Data) != "alone" {
		t.Fatalf("seq %d: %v %v", ack.Sequence, m, err)
	}
}

func TestGroupWithADuplicateAnswersEachMessage(t *testing.T) {
	// A resend inside a group makes the server refuse the whole atomic
	// batch without naming it: each message is then stored on its own, the
	// resend acknowledged as the duplicate of the first copy, and nothing
	// stored twice.
	g, st, _ := groupEnv(t, bus.GroupConfig{Linger: 50 * time.Millisecond})
	ctx := context.Background()
	first, err := g.PublishRaw(ctx, rawMsg("hl7.in.F.ADT.A08", "m7"), "d-7")
	if err != nil {
		t.Fatal(err)
	}
	const n = 32
	acks, errs := publishAll(t, g, n, func(i int) string { return "d-" + strconv.Itoa(i) })
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("message %d: %v", i, errs[i])
		}
		if got, want := acks[i].Duplicate, i == 7; got != want {
			t.Fatalf("message %d: duplicate %v, want %v", i, got, want)
		}
	}
	if acks[7].Sequence != first.Sequence {
		t.Fatalf("resend acknowledged at seq %d, first copy at %d", acks[7].Sequence, first.Sequence)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n {
		t.Fatalf("%d messages stored, want %d (the resend once)", info.State.Msgs, n)
	}
}

func TestGroupFailureAnswersEveryMember(t *testing.T) {
	// No stream takes the subject: the group's commit is not answered,
	// and every member gets the error (the sender is asked to resend).
	g, _, _ := groupEnv(t, bus.GroupConfig{Linger: 50 * time.Millisecond})
	n := 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, errs[i] = g.PublishRaw(ctx, rawMsg("nowhere.at.all", "x"), "f-"+strconv.Itoa(i))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			t.Fatalf("message %d acknowledged although nothing stores its subject", i)
		}
		if !streams.IsUnavailable(err) {
			t.Fatalf("message %d: %v, want an unavailable error", i, err)
		}
	}
}

func TestGroupKeepsEachCallersOrder(t *testing.T) {
	// One caller's messages (one MLLP connection) keep their order while
	// others flood the group.
	g, st, _ := groupEnv(t, bus.GroupConfig{MaxMessages: 8})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const callers, each = 8, 40
	seqs := make([][]uint64, callers)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range each {
				ack, err := g.PublishRaw(ctx, rawMsg("hl7.in.F.ADT.A08", fmt.Sprintf("%d/%d", c, i)), fmt.Sprintf("o-%d-%d", c, i))
				if err != nil {
					t.Error(err)
					return
				}
				seqs[c] = append(seqs[c], ack.Sequence)
			}
		})
	}
	wg.Wait()
	for c, s := range seqs {
		for i := 1; i < len(s); i++ {
			if s[i] <= s[i-1] {
				t.Fatalf("caller %d: message %d at seq %d, before it message %d at %d", c, i, s[i], i-1, s[i-1])
			}
		}
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != callers*each {
		t.Fatalf("%d stored, want %d", info.State.Msgs, callers*each)
	}
}

func TestGroupOffPublishesAlone(t *testing.T) {
	g, _, _ := groupEnv(t, bus.GroupConfig{Off: true})
	_, errs := publishAll(t, g, 16, func(i int) string { return "off-" + strconv.Itoa(i) })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if s := g.Stats(); s.Groups != 0 {
		t.Fatalf("stats %+v: off should commit no groups", s)
	}
}
