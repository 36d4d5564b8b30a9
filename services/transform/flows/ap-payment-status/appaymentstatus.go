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
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/fusion"
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

// NewPoller builds the flow's poller: payments whose status changed since
// the cursor (ap-payment-status.cursor.payments), each status a
// PaymentStatus on EPIC_CMD.
func NewPoller(ctx context.Context, f *flows.Flow, env registry.Env) (registry.Poller, error) {
	return registry.NewCursorPoller(ctx, f, env, registry.Cursor[fusion.Payment]{Feed: "payments", Read: (*fusion.Client).PaymentsUpdatedAfter, Change: change})
}

// change is one payment status's command: amount in exact minor units,
// the invoices it pays comma-separated.
func change(f *flows.Flow, pm fusion.Payment) registry.Change {
	id := version(f.ID, pm)
	ev := &sinewv1.PaymentStatus{
		Envelope:      registry.Envelope(f, id, pm.PaymentID, "payment_number", pm.Number),
		InvoiceNumber: strings.Join(pm.Invoices, ","), PaymentNumber: pm.Number, Status: pm.Status,
		Amount: &sinewv1.Money{Currency: pm.Currency, MinorUnits: int64(pm.Amount)}, PaidAt: timestamppb.New(pm.LastUpdate),
	}
	return registry.Change{Subject: streams.EpicCmdSubject(f.ID, Op), MsgID: id, Msg: ev, At: pm.LastUpdate}
}

// version is the idempotency key of a payment's status: number, status
// and Fusion's LastUpdateDate.
func version(flow string, pm fusion.Payment) string {
	return flow + "/fusion/" + pm.Number + "/" + pm.Status + "/" + strconv.FormatInt(pm.LastUpdate.UnixNano(), 10)
}

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
		if _, err := refund.Match(pm.Invoices, f.RefundPrefix()); err != nil {
			r.Skip = err.Error()
		}
		out = append(out, r)
	}
	return out, nil
}
