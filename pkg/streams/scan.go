package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ScanOptions selects what a scan reads.
type ScanOptions struct {
	// Filter is the subject filter (the whole stream when empty).
	Filter string
	// Since starts at the first message stored at or after it (zero: from
	// StartSeq, or the stream's first message).
	Since time.Time
	// StartSeq is the first stream sequence to read when Since is zero.
	StartSeq uint64
	// UpTo is the last stream sequence to read; 0 means the stream's last
	// sequence when the scan begins (messages stored later are not read).
	UpTo uint64
}

// scanBatch is the messages asked for per pull request.
const scanBatch = 500

// scanInactive is how long the server keeps a scan's consumer after its
// reader went away without deleting it (a crash): long enough for a slow
// callback between two pulls, short enough that an operator never finds
// it listed as a backlog.
const scanInactive = 30 * time.Second

// Scan reads stream's messages matching filter, stored at or after since
// (all when since is zero), up to the stream's end as it was when Scan
// began, and calls fn for each in order. It is how readers that are not
// pipeline consumers (reports, reconciliation) go through a stream.
func Scan(ctx context.Context, js jetstream.JetStream, stream, filter string, since time.Time, fn func(jetstream.Msg) error) error {
	_, err := ScanRange(ctx, js, stream, ScanOptions{Filter: filter, Since: since}, fn)
	return err
}

// ScanRange is Scan with every option. It returns the last stream
// sequence the scan covered (its cut: every matching message up to it was
// given to fn), 0 when the stream is empty.
//
// The scan reads through one ephemeral pull consumer (no acks, in memory)
// that it deletes when it ends, whatever the outcome: nothing is left for
// `nats consumer ls` to show as a stuck backlog. A gap in delivery (a
// message lost between server and client) restarts the consumer after the
// last message given to fn, as an ordered consumer would.
func ScanRange(ctx context.Context, js jetstream.JetStream, stream string, opt ScanOptions, fn func(jetstream.Msg) error) (uint64, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("streams: %s: %w", stream, err)
	}
	info := st.CachedInfo()
	if info.State.Msgs == 0 || info.State.LastSeq == 0 {
		return info.State.LastSeq, nil
	}
	last := opt.UpTo
	if last == 0 || last > info.State.LastSeq {
		last = info.State.LastSeq
	}
	if opt.Since.IsZero() && opt.StartSeq > last {
		return last, nil
	}
	sc := scanner{js: js, stream: stream, opt: opt}
	defer sc.close()
	next := uint64(0) // the stream sequence to resume from after a gap; 0: from opt
	for {
		cons, pending, err := sc.open(ctx, next)
		if err != nil {
			return 0, err
		}
		if pending == 0 {
			return last, nil
		}
		var consSeq uint64
		gap := false
		for !gap {
			if err := ctx.Err(); err != nil {
				return 0, fmt.Errorf("streams: reading %s: %w", stream, err)
			}
			msgs, err := cons.Fetch(scanBatch, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				if errors.Is(err, nats.ErrNoResponders) && sc.unanswered(ctx) {
					continue
				}
				return 0, fmt.Errorf("streams: reading %s: %w", stream, err)
			}
			got, done := 0, false
			for m := range msgs.Messages() {
				got++
				meta, err := m.Metadata()
				if err != nil {
					return 0, fmt.Errorf("streams: reading %s: %w", stream, err)
				}
				if meta.Sequence.Consumer != consSeq+1 {
					gap = true
					break
				}
				consSeq = meta.Sequence.Consumer
				if meta.Sequence.Stream > last {
					done = true
					break
				}
				if err := fn(m); err != nil {
					return 0, err
				}
				next = meta.Sequence.Stream + 1
				if meta.NumPending == 0 || meta.Sequence.Stream >= last {
					done = true
					break // don't wait out the fetch: nothing more is this scan's
				}
			}
			if done {
				return last, nil
			}
			if gap {
				break
			}
			if err := msgs.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
				if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
					break // expired under a slow reader: resume from next
				}
				if errors.Is(err, nats.ErrNoResponders) && sc.unanswered(ctx) {
					continue
				}
				return 0, fmt.Errorf("streams: reading %s: %w", stream, err)
			}
			sc.answered()
			if got == 0 {
				return last, nil
			}
		}
	}
}

// scanner owns a scan's consumer.
type scanner struct {
	js     jetstream.JetStream
	stream string
	opt    ScanOptions
	name   string
	silent time.Time // since when pulls have had no responders; zero: answered
}

// A pull answered "no responders" is asked again, scanRetryWait apart, for
// at most scanNoResponders: in a cluster a consumer just created (or its
// server just restarted) may not listen yet, and a report run right after
// a node came back would fail on it (seen in the chaos run's `dlq list`).
const (
	scanRetryWait    = 250 * time.Millisecond
	scanNoResponders = 10 * time.Second
)

// unanswered waits before a pull is asked again after "no responders";
// false once that has lasted scanNoResponders, or ctx ended.
func (s *scanner) unanswered(ctx context.Context) bool {
	if s.silent.IsZero() {
		s.silent = time.Now()
	}
	if time.Since(s.silent) > scanNoResponders {
		return false
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(scanRetryWait):
		return true
	}
}

// answered notes a pull that got an answer.
func (s *scanner) answered() { s.silent = time.Time{} }

// open (re)creates the scan's consumer, starting at stream sequence from
// (or where opt says when from is 0), and returns it with the number of
// matching messages it has to deliver.
func (s *scanner) open(ctx context.Context, from uint64) (jetstream.Consumer, uint64, error) {
	s.close()
	cfg := jetstream.ConsumerConfig{
		Name:              "scan_" + nats.NewInbox()[len(nats.InboxPrefix):],
		Description:       "sinew scan (deleted when the scan ends)",
		AckPolicy:         jetstream.AckNonePolicy,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: scanInactive,
		MemoryStorage:     true,
		Replicas:          1,
	}
	if s.opt.Filter != "" {
		cfg.FilterSubject = s.opt.Filter
	}
	switch {
	case from > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	case !s.opt.Since.IsZero():
		since := s.opt.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	case s.opt.StartSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, s.opt.StartSeq
	}
	cons, err := s.js.CreateConsumer(ctx, s.stream, cfg)
	if err != nil {
		return nil, 0, fmt.Errorf("streams: scan consumer on %s: %w", s.stream, err)
	}
	s.name = cfg.Name
	return cons, cons.CachedInfo().NumPending, nil
}

// close deletes the scan's consumer, even when the scan's context ended.
func (s *scanner) close() {
	if s.name == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.js.DeleteConsumer(ctx, s.stream, s.name) // else it expires after scanInactive
	s.name = ""
}
