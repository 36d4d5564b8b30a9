// Package appaymentstatus is the ap-payment-status flow: Fusion AP
// payments (payablesPayments, read incrementally by LastUpdateDate) whose
// status changed — issued, cleared, voided — go to Resolute, matched to
// the patient refund they settle. The poller publishes every status
// change as a PaymentStatus on EPIC_CMD (one per change: Resolute keeps
// the history); the loader matches it to its refund (pkg/refund) and
// sends it over MLLP, or dead-letters an unmatched or ambiguous payment
// for triage without sending it.
package appaymentstatus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/flowstate"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/ids"
	"github.com/sinewhq/sinew/pkg/refund"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// Flow is this flow's id in flows.yaml.
const Flow = "ap-payment-status"

// Op is the EPIC_CMD operation (epic.cmd.<flow>.payment).
const Op = "payment"

// Entry registers the flow.
func Entry() registry.Entry { return registry.Entry{ID: Flow, NewPoller: NewPoller, Current: Current} }

// Poller reads Fusion's payables payments for one flow.
type Poller struct {
	flow     *flows.Flow
	fusion   *fusion.Client
	pub      registry.Publisher
	kv       jetstream.KeyValue
	states   *flowstate.Store
	interval time.Duration
	log      func(error, string)
}

// NewPoller builds the poller.
func NewPoller(ctx context.Context, f *flows.Flow, env registry.Env) (registry.Poller, error) {
	if env.Fusion == nil {
		return nil, errors.New("ap-payment-status: no Fusion client configured")
	}
	kv, err := env.JS.KeyValue(ctx, streams.KVFusionPoll)
	if err != nil {
		return nil, fmt.Errorf("ap-payment-status: bucket %s: %w", streams.KVFusionPoll, err)
	}
	st, err := flowstate.Open(ctx, env.JS)
	if err != nil {
		return nil, err
	}
	return &Poller{flow: f, fusion: env.Fusion, pub: env.Publisher, kv: kv, states: st, interval: env.PollInterval, log: env.Log}, nil
}

// Run polls while the flow is active, until ctx ends.
func (p *Poller) Run(ctx context.Context) error {
	return registry.PollLoop(ctx, p.flow, p.states, p.interval, p.log, p.Poll)
}

// Poll publishes every payment status changed since the cursor, oldest
// first; the cursor moves once the change is on EPIC_CMD, and the message
// id (payment, status, LastUpdateDate) makes a re-read a no-op.
func (p *Poller) Poll(ctx context.Context) error {
	key := p.flow.ID + ".cursor.payments"
	var since time.Time
	if e, err := p.kv.Get(ctx, key); err == nil {
		since, _ = time.Parse(time.RFC3339Nano, string(e.Value()))
	}
	pays, err := p.fusion.PaymentsUpdatedAfter(ctx, since)
	if err != nil {
		return err
	}
	for _, pm := range pays {
		id := version(p.flow.ID, pm)
		ev := &sinewv1.PaymentStatus{
			Envelope: &sinewv1.Envelope{EventId: ids.EventID(id), Flow: p.flow.ID, SourceSystem: p.flow.Source, SourceId: pm.PaymentID,
				IdempotencyKey: id, ReceivedAt: timestamppb.Now(), BusinessKeys: []*sinewv1.KeyValue{{Key: "payment_number", Value: pm.Number}}},
			InvoiceNumber: strings.Join(pm.Invoices, ","), PaymentNumber: pm.Number, Status: pm.Status,
			Amount: &sinewv1.Money{Currency: pm.Currency, MinorUnits: int64(pm.Amount)}, PaidAt: timestamppb.New(pm.LastUpdate),
		}
		if _, err := p.pub.Publish(ctx, streams.EpicCmdSubject(p.flow.ID, Op), id, ev); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		if _, err := p.kv.Put(ctx, key, []byte(pm.LastUpdate.UTC().Format(time.RFC3339Nano))); err != nil {
			return fmt.Errorf("cursor: %w", err)
		}
	}
	return nil
}

// version is the idempotency key of a payment's status: number, status
// and Fusion's LastUpdateDate.
func version(flow string, pm fusion.Payment) string {
	return flow + "/fusion/" + pm.Number + "/" + pm.Status + "/" + strconv.FormatInt(pm.LastUpdate.UnixNano(), 10)
}

// refundPrefix starts a patient refund's invoice number (the loader's
// default epic.refund_prefix).
const refundPrefix = "RF"

// Current is every Fusion payment at its latest status, for the
// reconciler: Resolute should hold that status. A payment that matches no
// single refund is not Epic's (the loader dead-lettered it to triage).
func Current(ctx context.Context, f *flows.Flow, fc *fusion.Client) ([]registry.Record, error) {
	pays, err := fc.PaymentsUpdatedAfter(ctx, time.Time{})
	if err != nil {
		return nil, err
	}
	out := make([]registry.Record, 0, len(pays))
	for _, pm := range pays {
		r := registry.Record{Key: pm.Number, Version: version(f.ID, pm), Updated: pm.LastUpdate}
		if _, err := refund.Match(pm.Invoices, refundPrefix); err != nil {
			r.Skip = err.Error()
		}
		out = append(out, r)
	}
	return out, nil
}
