package nightlycatchup

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/schedule"
	"github.com/sinewhq/sinew/pkg/streams"
)

// Counts of the inventory step (run records, audit, the reconciliation rows).
const (
	CountSource    = "source"    // the day's transactions Sinew commanded
	CountInFusion  = "in_fusion" // of them, in Fusion (accepted or in error)
	CountRejected  = "rejected"  // refused by Fusion and left to triage / the DLQ
	CountMissing   = "missing"   // commanded, not refused, and not in Fusion
	CountResent    = "resent"    // re-sent on FUSION_CMD for the loader
	CountPosted    = "posted"    // re-sent, accepted by the loader, and now in Fusion
	CountUnsettled = "unsettled" // re-sent without a result within the wait
	CountStill     = "still_missing"
)

// InventoryConfig is what the inventory catch-up reads and writes.
type InventoryConfig struct {
	JS     jetstream.JetStream
	Fusion *fusion.Client
	// Publish stores a re-sent command (bus.Bus PublishRaw); nil: JS.PublishMsg.
	Publish func(ctx context.Context, m *nats.Msg, msgID string) error
	// Wait bounds how long the re-sent commands' results are waited for.
	Wait time.Duration
}

// source is one commanded transaction: its last command on FUSION_CMD.
type source struct {
	key, idem string
	subject   string
	data      []byte
}

// CatchUpInventory compares one day (UTC) of an inventory flow's commanded
// transactions (FUSION_CMD, what the reconciler calls the source side)
// with Fusion's staged transactions of the flow's source code, and
// re-sends each one Fusion lacks as the same command (same subject, bytes
// and idempotency key) marked with the catch-up header, so the loader
// checks Fusion before trusting its claim and a transaction already posted
// is never doubled. A transaction Fusion refused is not missing: it is
// triage's and the DLQ's (replay after a fix). It waits for the re-sent
// commands' results and reads Fusion again; ones still missing fail the run.
func CatchUpInventory(ctx context.Context, cfg InventoryConfig, flow, sourceCode string, day time.Time, p *schedule.Progress) error {
	day = day.UTC().Truncate(24 * time.Hour)
	dayKey := day.Format(time.DateOnly)
	run := p.Run().ID
	sources := map[string]*source{} // by source key (SourceHeaderId/SourceLineId)
	var order []string
	_, err := streams.ScanRange(ctx, cfg.JS, streams.FusionCmd, streams.ScanOptions{
		Filter: streams.FusionCmdSubject(flow, "inventory"), Since: day.Add(-24 * time.Hour)}, func(m jetstream.Msg) error {
		var c sinewv1.InventoryTransaction
		if proto.Unmarshal(m.Data(), &c) != nil || c.GetTransactionDate().AsTime().UTC().Format(time.DateOnly) != dayKey {
			return nil
		}
		key := c.GetSourceHeaderId() + "/" + c.GetSourceLineId()
		if _, seen := sources[key]; !seen {
			order = append(order, key)
		}
		sources[key] = &source{key: key, idem: c.GetEnvelope().GetIdempotencyKey(), subject: m.Subject(), data: m.Data()}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: commands: %w", flow, err)
	}
	p.Add(ctx, CountSource, int64(len(order)))
	if len(order) == 0 {
		return nil
	}
	rejected := map[string]bool{} // idempotency keys whose latest result is a refusal
	err = streams.Scan(ctx, cfg.JS, streams.Results, "result."+streams.Token(flow)+".*", day.Add(-24*time.Hour), func(m jetstream.Msg) error {
		var r sinewv1.LoadResult
		if proto.Unmarshal(m.Data(), &r) != nil {
			return nil
		}
		rejected[r.GetEnvelope().GetIdempotencyKey()] = r.GetOutcome() == "rejected"
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: results: %w", flow, err)
	}
	inFusion, err := fusionKeys(ctx, cfg.Fusion, sourceCode, day)
	if err != nil {
		return fmt.Errorf("%s: inventoryStagedTransactions: %w", flow, err)
	}
	var missing []*source
	for _, k := range order {
		s := sources[k]
		switch {
		case inFusion[k]:
			p.Add(ctx, CountInFusion, 1)
		case rejected[s.idem]:
			p.Add(ctx, CountRejected, 1)
		default:
			missing = append(missing, s)
		}
	}
	p.Add(ctx, CountMissing, int64(len(missing)))
	if len(missing) == 0 {
		return nil
	}
	resStream, err := cfg.JS.Stream(ctx, streams.Results)
	if err != nil {
		return fmt.Errorf("%s: %w", flow, err)
	}
	info, err := resStream.Info(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", flow, err)
	}
	from := info.State.LastSeq + 1
	want := map[string]bool{}
	for _, s := range missing {
		m := nats.NewMsg(s.subject)
		m.Data = s.data
		m.Header.Set(CatchUpHeader, run)
		msgID := "catchup:" + run + ":" + s.idem
		if cfg.Publish != nil {
			err = cfg.Publish(ctx, m, msgID)
		} else {
			m.Header.Set(jetstream.MsgIDHeader, msgID)
			_, err = cfg.JS.PublishMsg(ctx, m)
		}
		if err != nil {
			return fmt.Errorf("%s: re-send: %w", flow, err)
		}
		want[s.idem] = true
		p.Add(ctx, CountResent, 1)
	}
	accepted, settled := waitResults(ctx, cfg.JS, flow, from, want, cfg.Wait)
	p.Add(ctx, CountUnsettled, int64(len(want)-settled))
	after, err := fusionKeys(ctx, cfg.Fusion, sourceCode, day)
	if err != nil {
		return fmt.Errorf("%s: inventoryStagedTransactions: %w", flow, err)
	}
	still, posted := 0, 0
	for _, s := range missing {
		switch {
		case !after[s.key]:
			still++ // an accepted answer too: a claim trusted within read lag
		case accepted[s.idem]:
			posted++
		}
	}
	p.Add(ctx, CountPosted, int64(posted))
	p.Add(ctx, CountStill, int64(still))
	if still > 0 {
		return fmt.Errorf("%s: %d of %d missing transactions of %s still not in Fusion", flow, still, len(missing), dayKey)
	}
	return nil
}

// fusionKeys are the source keys of Fusion's staged transactions of a day.
func fusionKeys(ctx context.Context, fc *fusion.Client, sourceCode string, day time.Time) (map[string]bool, error) {
	if fc == nil {
		return nil, errors.New("no Fusion client configured")
	}
	rows, err := fc.InventoryTransactions(ctx, fusion.InventoryQuery{SourceCode: sourceCode, From: day, To: day.Add(24 * time.Hour)})
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, r := range rows {
		out[strconv.FormatInt(r.SourceHeaderID, 10)+"/"+strconv.FormatInt(r.SourceLineID, 10)] = true
	}
	return out, nil
}

// waitResults reads RESULTS from seq until every idempotency key in want
// has a result or wait passes: the keys accepted and how many settled.
func waitResults(ctx context.Context, js jetstream.JetStream, flow string, seq uint64, want map[string]bool, wait time.Duration) (accepted map[string]bool, settled int) {
	accepted = map[string]bool{}
	if wait <= 0 {
		wait = 2 * time.Minute
	}
	deadline := time.Now().Add(wait)
	seen := map[string]bool{}
	for {
		last, _ := streams.ScanRange(ctx, js, streams.Results, streams.ScanOptions{Filter: "result." + streams.Token(flow) + ".*", StartSeq: seq}, func(m jetstream.Msg) error {
			var r sinewv1.LoadResult
			if proto.Unmarshal(m.Data(), &r) != nil {
				return nil
			}
			k := r.GetEnvelope().GetIdempotencyKey()
			if want[k] && !seen[k] {
				seen[k] = true
				if r.GetOutcome() == "accepted" {
					accepted[k] = true
				}
			}
			return nil
		})
		if last >= seq {
			seq = last + 1
		}
		if len(seen) == len(want) || time.Now().After(deadline) || ctx.Err() != nil {
			return accepted, len(seen)
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}
