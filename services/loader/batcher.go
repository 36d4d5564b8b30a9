package loader

import (
	"context"
	"errors"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sinewhq/sinew/pkg/fusion"
)

// batcher gathers the inventory transactions that handlers post at the
// same moment into one of Fusion's batch requests: one HTTP call (and one
// API call against the pod's limits) for up to size rows. Each handler
// still claims its key before and records its outcome after, so exactly
// one effect holds as with single posts: a batch is all-or-none, and a
// batch whose answer is lost is settled row by row by reading Fusion.
type batcher struct {
	fusion  stagedPoster
	tracer  trace.Tracer // nil: no batch span (unit tests)
	size    int
	linger  time.Duration
	in      chan *batchItem
	stopped chan struct{} // closed when run returns: posts go one by one
}

type batchItem struct {
	ctx  context.Context
	t    fusion.InventoryTransaction
	done chan batchOutcome
}

type batchOutcome struct {
	st  fusion.StagedStatus
	err error
}

func newBatcher(c stagedPoster, size int, linger time.Duration) *batcher {
	return &batcher{fusion: c, size: size, linger: linger, in: make(chan *batchItem), stopped: make(chan struct{})}
}

// post sends t in the next batch and waits for its own outcome.
func (b *batcher) post(ctx context.Context, t fusion.InventoryTransaction) (fusion.StagedStatus, error) {
	it := &batchItem{ctx: ctx, t: t, done: make(chan batchOutcome, 1)}
	select {
	case b.in <- it:
	case <-b.stopped: // draining at shutdown
		return createStaged(ctx, b.fusion, t)
	case <-ctx.Done():
		return fusion.StagedStatus{}, ctx.Err()
	}
	select {
	case o := <-it.done:
		return o.st, o.err
	case <-ctx.Done():
		// The batch may still land: the claim says "posting", and the
		// next try reads Fusion before posting again.
		return fusion.StagedStatus{}, ctx.Err()
	}
}

// run collects items until ctx ends: a batch goes when it is full or
// linger after its first item, whichever is first.
func (b *batcher) run(ctx context.Context) {
	defer close(b.stopped)
	for {
		var items []*batchItem
		select {
		case <-ctx.Done():
			return
		case it := <-b.in:
			items = append(items, it)
		}
		timer := time.NewTimer(b.linger)
	gather:
		for len(items) < b.size {
			select {
			case it := <-b.in:
				items = append(items, it)
			case <-timer.C:
				break gather
			case <-ctx.Done():
				break gather
			}
		}
		timer.Stop()
		go b.send(context.WithoutCancel(ctx), items)
	}
}

// send posts items as one batch. A part Fusion refuses fails alone: the
// rest, which did not take effect (all-or-none), go again without it.
func (b *batcher) send(ctx context.Context, items []*batchItem) {
	ctx, span := b.span(ctx, items)
	defer span.End()
	for len(items) > 0 {
		ts := make([]fusion.InventoryTransaction, len(items))
		for i, it := range items {
			ts[i] = it.t
		}
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		st, res, err := b.fusion.CreateInventoryTransactions(ctx, ts)
		cancel()
		if err == nil {
			for i, it := range items {
				it.done <- batchOutcome{st: st[i]}
			}
			return
		}
		var fe *fusion.Error
		if !errors.As(err, &fe) || fe.Temporary() || len(res) == 0 {
			for _, it := range items { // each handler retries from its claim
				it.done <- batchOutcome{err: err}
			}
			return
		}
		failed := map[string]*fusion.Error{}
		for _, r := range res {
			if r.Error != nil {
				failed[r.ID] = r.Error
			}
		}
		var again []*batchItem
		for i, it := range items {
			if pe, ok := failed["p"+strconv.Itoa(i)]; ok { // CreateInventoryTransactions' part ids
				it.done <- batchOutcome{err: pe}
			} else {
				again = append(again, it)
			}
		}
		if len(again) == len(items) { // no part named: give every one the batch's error
			for _, it := range items {
				it.done <- batchOutcome{err: err}
			}
			return
		}
		items = again
	}
}

// span is the batch request's span: a child of its first item's handler
// span, so that item's trace runs on to Fusion's answer, and linked to
// every item's, so each trace finds the request that carried it.
func (b *batcher) span(ctx context.Context, items []*batchItem) (context.Context, trace.Span) {
	if b.tracer == nil {
		return ctx, trace.SpanFromContext(ctx)
	}
	links := make([]trace.Link, 0, len(items))
	for _, it := range items {
		links = append(links, trace.LinkFromContext(it.ctx))
	}
	parent := trace.ContextWithSpanContext(ctx, trace.SpanContextFromContext(items[0].ctx))
	return b.tracer.Start(parent, "batch inventory transactions", trace.WithLinks(links...),
		trace.WithAttributes(attribute.Int("sinew.batch.rows", len(items))))
}

// createStaged posts one transaction on its own (no batcher).
func createStaged(ctx context.Context, c stagedPoster, t fusion.InventoryTransaction) (fusion.StagedStatus, error) {
	r, err := c.CreateInventoryTransaction(ctx, t)
	if err != nil {
		return fusion.StagedStatus{}, err
	}
	return r.StagedStatus, nil
}
