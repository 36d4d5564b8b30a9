package triage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/streams"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// FromRecon is the item a reconciliation row opens: a variance (beyond the
// flow's tolerance: the reconciler publishes only those on
// recon.<flow>.triage) or an ambiguous match. ok is false for a row that
// needs nobody.
func FromRecon(row *sinewv1.ReconRow) (it Item, ok bool) {
	kind, code := KindVariance, reason.ReconVariance
	switch row.GetVerdict() {
	case "variance":
	case "ambiguous", "ambiguous_match":
		kind, code = KindAmbiguous, reason.ReconAmbiguousMatch
	default:
		return Item{}, false
	}
	flow := row.GetEnvelope().GetFlow()
	ev := map[string]string{
		"tier": strconv.Itoa(int(row.GetTier())), "scope": row.GetScope(), "key": row.GetKey(), "hop": row.GetHop(),
		"source": row.GetSourceValue().GetValue(), "target": row.GetTargetValue().GetValue(),
		"variance": row.GetVariance().GetValue(), "unit": row.GetSourceValue().GetUom(), "explanation": row.GetExplanation(),
	}
	for k, v := range ev {
		if v == "" {
			delete(ev, k)
		}
	}
	return Item{Kind: kind, Flow: flow, Reason: code, Evidence: ev,
		Source:  fmt.Sprintf("recon:tier%d:%s:%s", row.GetTier(), row.GetScope(), row.GetKey()),
		Summary: fmt.Sprintf("tier %d %s %s: %s", row.GetTier(), row.GetScope(), row.GetKey(), row.GetExplanation())}, true
}

// matchCodes are the dead-letter reasons of a match with no single answer
// (a worker to several Epic providers, a payment to no refund or to
// several): their items are ambiguous matches, not dead letters.
var matchCodes = map[reason.Code]bool{reason.WorkerMatchAmbiguous: true, reason.PaymentUnmatched: true, reason.PaymentAmbiguous: true}

// FromDeadLetter is the item a dead letter opens when it needs a person:
// its reason is permanent (no retry fixes it) or has no code. Transient
// reasons (Fusion down, a timeout) are replayed, not triaged.
func FromDeadLetter(dl *sinewv1.DeadLetter, dlqSeq uint64) (it Item, ok bool) {
	code := reason.Code(dl.GetReasonCode())
	if e, known := reason.Lookup(code); known && !e.Permanent {
		return Item{}, false
	}
	flow := dl.GetFlow()
	if flow == "" {
		flow = "none"
	}
	kind := KindDeadLetter
	if matchCodes[code] {
		// Not a failed delivery but a match Sinew refuses to guess: it
		// holds the flow's reconciliation until a person decides.
		kind = KindAmbiguous
	}
	return Item{Kind: kind, Flow: flow, Reason: code,
		Source: "dlq:" + strconv.FormatUint(dlqSeq, 10),
		Evidence: map[string]string{"dlq_seq": strconv.FormatUint(dlqSeq, 10), "stream": dl.GetStream(),
			"stream_seq": strconv.FormatUint(dl.GetStreamSeq(), 10), "consumer": dl.GetConsumer(), "reason": dl.GetReason()},
		Summary: fmt.Sprintf("dead letter %d (%s/%d): %s", dlqSeq, dl.GetStream(), dl.GetStreamSeq(), dl.GetReason())}, true
}

// Opener raises items from what the pipeline records: RECON's
// recon.*.triage rows and DLQ's dead letters. It reads both streams from
// the start at each run and then follows them; Raise is idempotent, so a
// restart opens nothing twice.
type Opener struct {
	js    jetstream.JetStream
	store *Store
	log   zerolog.Logger
	every time.Duration
}

// NewOpener returns an opener raising into store, polling every interval
// (5 s when 0).
func NewOpener(js jetstream.JetStream, store *Store, log zerolog.Logger, every time.Duration) *Opener {
	if every <= 0 {
		every = 5 * time.Second
	}
	return &Opener{js: js, store: store, log: log, every: every}
}

// Run follows RECON and DLQ until ctx ends.
func (o *Opener) Run(ctx context.Context) error {
	next := map[string]uint64{streams.Recon: 1, streams.DLQ: 1}
	for {
		for _, src := range []struct{ stream, filter string }{{streams.Recon, "recon.*.triage"}, {streams.DLQ, "dlq.>"}} {
			last, err := o.Once(ctx, src.stream, src.filter, next[src.stream])
			if err != nil && ctx.Err() == nil {
				o.log.Warn().Err(err).Str("stream", src.stream).Msg("triage: scan")
			}
			if last+1 > next[src.stream] {
				next[src.stream] = last + 1
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.every):
		}
	}
}

// Once raises items for stream's messages on filter from sequence from and
// returns the last sequence it covered (from-1 when there was none). It
// reads with direct gets by subject, so it leaves no consumer behind, not
// even for a moment.
func (o *Opener) Once(ctx context.Context, stream, filter string, from uint64) (uint64, error) {
	s, err := o.js.Stream(ctx, stream)
	if err != nil {
		return from - 1, err
	}
	last := from - 1
	for seq := from; ; seq = last + 1 {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return last, nil
		}
		if err != nil {
			return last, err
		}
		var it Item
		var ok bool
		switch stream {
		case streams.Recon:
			var row sinewv1.ReconRow
			if proto.Unmarshal(m.Data, &row) == nil {
				it, ok = FromRecon(&row)
			}
		case streams.DLQ:
			var dl sinewv1.DeadLetter
			if proto.Unmarshal(m.Data, &dl) == nil {
				it, ok = FromDeadLetter(&dl, m.Sequence)
			}
		}
		if ok {
			if _, _, err := o.store.Raise(ctx, "triage-opener", it); err != nil {
				return last, err
			}
		}
		last = m.Sequence
	}
}
