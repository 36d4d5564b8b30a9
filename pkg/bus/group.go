package bus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/telemetry"
)

// GroupConfig shapes a Group. The zero value is the default: on, no
// linger, groups of up to 256 messages or 4 MiB, atomic from 8 messages.
type GroupConfig struct {
	// Off publishes every message on its own (one fsync each under
	// sync_always), as before group commit.
	Off bool `yaml:"off"`
	// MaxMessages bounds one group (256 when 0; at most
	// streams.MaxAtomicBatch), MaxBytes its payload (4 MiB when 0).
	MaxMessages int `yaml:"max_messages"`
	MaxBytes    int `yaml:"max_bytes"`
	// MinAtomic is the smallest group stored as one atomic batch (8 when
	// 0): nats-server sets up a staging store per atomic batch of a
	// one-replica file stream (a few milliseconds here), so a smaller
	// group is published as concurrent single writes instead.
	MinAtomic int `yaml:"min_atomic"`
	// Linger is how long a group that is not full waits for more messages
	// before it is committed (0: none). Without it a group is whatever
	// arrived while the previous one was being written, so an idle
	// listener adds no wait.
	Linger time.Duration `yaml:"linger"`
}

// Group commits messages published concurrently (by many MLLP
// connections) together: while one group is being stored, the next
// gathers, and is stored as one JetStream atomic batch (one fsync under
// sync_always) as soon as the previous one is answered. Each Publish
// returns only after its own message is stored, with its own
// acknowledgement, exactly as Bus.Publish does; a message whose group
// failed gets the group's error. The messages of one caller are stored in
// the order it published them.
type Group struct {
	b   *Bus
	cfg GroupConfig

	mu       sync.Mutex
	queue    []*grouped
	flushing bool

	groups, messages, largest atomic.Uint64 // committed so far (Stats)
	sizes                     prometheus.Observer
}

// GroupStats counts what a Group committed: groups written, the messages
// in them, and the largest group.
type GroupStats struct{ Groups, Messages, Largest uint64 }

// Stats is what g committed so far.
func (g *Group) Stats() GroupStats {
	return GroupStats{Groups: g.groups.Load(), Messages: g.messages.Load(), Largest: g.largest.Load()}
}

// grouped is one Publish waiting for its group.
type grouped struct {
	ctx  context.Context // the caller gave up when it is done
	msg  *nats.Msg
	size int
	ack  *jetstream.PubAck
	err  error
	done chan struct{}
}

// NewGroup is a group committer publishing through b; name labels its
// metrics (sinew_bus_group_commit_messages{group=name}).
func (b *Bus) NewGroup(name string, cfg GroupConfig) *Group {
	if cfg.MaxMessages <= 0 {
		cfg.MaxMessages = 256
	}
	cfg.MaxMessages = min(cfg.MaxMessages, streams.MaxAtomicBatch)
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 4 << 20
	}
	if cfg.MinAtomic <= 0 {
		cfg.MinAtomic = 8
	}
	cfg.MinAtomic = max(cfg.MinAtomic, 2)
	g := &Group{b: b, cfg: cfg}
	sizes, _ := telemetry.Register(b.reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sinew_bus_group_commit_messages", Help: "Messages per group commit (an atomic batch from min_atomic messages on: one fsync under sync_always), by group.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
	}, []string{"group"}))
	g.sizes = sizes.WithLabelValues(name)
	return g
}

// Publish is Bus.Publish through the group.
func (g *Group) Publish(ctx context.Context, subject, msgID string, msg proto.Message) (*jetstream.PubAck, error) {
	m, err := g.b.encode(ctx, subject, msgID, msg)
	if err != nil {
		return nil, err
	}
	return g.PublishRaw(ctx, m, msgID)
}

// PublishRaw is Bus.PublishRaw through the group.
func (g *Group) PublishRaw(ctx context.Context, m *nats.Msg, msgID string) (*jetstream.PubAck, error) {
	if g.cfg.Off {
		return g.b.PublishRaw(ctx, m, msgID)
	}
	if err := g.b.stamp(ctx, m, msgID); err != nil {
		return nil, err
	}
	p := &grouped{ctx: ctx, msg: m, size: len(m.Data) + len(m.Subject) + 64*len(m.Header), done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, p)
	lead := !g.flushing
	g.flushing = true
	g.mu.Unlock()
	if lead {
		// One flusher at a time, living while there is work: the next
		// group forms while this one is being written.
		go func() {
			for g.flush() {
			}
		}()
	}
	select {
	case <-p.done:
		if p.err != nil {
			return nil, fmt.Errorf("bus: publish %s: %w", m.Subject, p.err)
		}
		return p.ack, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("bus: publish %s: %w", m.Subject, &streams.UnavailableError{Err: ctx.Err()})
	}
}

// flush commits one group from the head of the queue and reports true;
// with nothing queued it ends the flushing and reports false.
func (g *Group) flush() bool {
	if g.cfg.Linger > 0 {
		g.linger()
	}
	g.mu.Lock()
	// Callers that gave up were answered "not stored": never store theirs.
	live := g.queue[:0]
	for _, p := range g.queue {
		if p.ctx.Err() == nil {
			live = append(live, p)
		}
	}
	clear(g.queue[len(live):])
	g.queue = live
	if len(g.queue) == 0 {
		g.flushing = false
		g.mu.Unlock()
		return false
	}
	n, size := 0, 0
	for n < len(g.queue) && n < g.cfg.MaxMessages && (n == 0 || size+g.queue[n].size <= g.cfg.MaxBytes) {
		size += g.queue[n].size
		n++
	}
	batch := append([]*grouped(nil), g.queue[:n]...)
	g.queue = append(g.queue[:0], g.queue[n:]...)
	g.mu.Unlock()

	g.commit(batch)
	g.sizes.Observe(float64(len(batch)))
	g.groups.Add(1)
	g.messages.Add(uint64(len(batch)))
	for l := g.largest.Load(); uint64(len(batch)) > l && !g.largest.CompareAndSwap(l, uint64(len(batch))); l = g.largest.Load() {
	}
	for _, p := range batch {
		close(p.done)
	}
	return true
}

// linger waits, up to Linger, until a full group is queued.
func (g *Group) linger() {
	deadline := time.Now().Add(g.cfg.Linger)
	for time.Now().Before(deadline) {
		g.mu.Lock()
		full := len(g.queue) >= g.cfg.MaxMessages
		g.mu.Unlock()
		if full {
			return
		}
		time.Sleep(min(200*time.Microsecond, time.Until(deadline)))
	}
}

// commit stores batch and sets every member's answer.
func (g *Group) commit(batch []*grouped) {
	ctx, cancel := context.WithTimeout(context.Background(), g.b.pubWait)
	defer cancel()
	if len(batch) < g.cfg.MinAtomic {
		g.each(batch)
		return
	}
	msgs := make([]*nats.Msg, len(batch))
	for i, p := range batch {
		msgs[i] = p.msg
	}
	acks, err := streams.PublishAtomic(ctx, g.b.nc, msgs)
	switch {
	case err == nil:
		for i, p := range batch {
			p.ack = acks[i]
		}
		return
	case streams.IsBatchRefusal(err):
		// Nothing of the batch was stored and the refusal names no message
		// (typically one of them is a resend, a duplicate): each is stored
		// on its own, in order, and gets its own answer ("duplicate" for
		// the resend).
		g.b.log.Debug().Err(err).Int("messages", len(batch)).Msg("atomic batch refused; publishing its messages one by one")
		g.each(batch)
		return
	}
	for _, p := range batch {
		p.err = err
	}
}

// each publishes the members of batch as single messages, concurrently
// (each caller has at most one message in a group, so no caller's order
// is at stake), and waits for all the answers.
func (g *Group) each(batch []*grouped) {
	var wg sync.WaitGroup
	for _, p := range batch {
		if p.ctx.Err() != nil {
			p.err = &streams.UnavailableError{Err: p.ctx.Err()}
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), g.b.pubWait)
			defer cancel()
			p.ack, p.err = streams.Publish(ctx, g.b.nc, p.msg)
		})
	}
	wg.Wait()
}
