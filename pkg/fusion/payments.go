package fusion

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/sinewhq/sinew/pkg/money"
)

// PaymentsPath is the payables payments resource.
const PaymentsPath = "/payablesPayments"

// Payment is a Fusion AP payment: its status (NEGOTIABLE when issued,
// CLEARED, VOIDED), exact amount and the invoices it pays.
type Payment struct {
	PaymentID  string
	Number     string
	Status     string
	Amount     money.Amount
	Currency   string
	Date       string
	Invoices   []string
	LastUpdate time.Time
}

type wirePayment struct {
	PaymentID       json.Number `json:"PaymentId"`
	PaymentNumber   string      `json:"PaymentNumber"`
	PaymentStatus   string      `json:"PaymentStatus"`
	PaymentAmount   json.Number `json:"PaymentAmount"`
	PaymentCurrency string      `json:"PaymentCurrency"`
	PaymentDate     string      `json:"PaymentDate"`
	LastUpdateDate  string      `json:"LastUpdateDate"`
	RelatedInvoices kids[struct {
		InvoiceNumber string `json:"InvoiceNumber"`
	}] `json:"relatedInvoices"`
}

// PaymentsUpdatedAfter returns the payments changed after t (all when t
// is zero), oldest change first.
func (c *Client) PaymentsUpdatedAfter(ctx context.Context, t time.Time) ([]Payment, error) {
	const op = "payablesPayments"
	q := ""
	if !t.IsZero() {
		q = "LastUpdateDate>" + qString(t.UTC().Format(time.RFC3339Nano))
	}
	raw, err := collect[wirePayment](ctx, c, op, PaymentsPath, query("q", q, "expand", "relatedInvoices"))
	if err != nil {
		return nil, err
	}
	out := make([]Payment, 0, len(raw))
	for _, w := range raw {
		amt, err := money.Parse(w.PaymentAmount.String())
		if err != nil {
			return nil, &ProtocolError{Op: op, Err: fmt.Errorf("PaymentAmount: %w", err)}
		}
		p := Payment{PaymentID: w.PaymentID.String(), Number: w.PaymentNumber, Status: w.PaymentStatus, Amount: amt, Currency: w.PaymentCurrency, Date: w.PaymentDate}
		if p.LastUpdate, err = time.Parse(time.RFC3339Nano, w.LastUpdateDate); err != nil {
			return nil, &ProtocolError{Op: op, Err: fmt.Errorf("LastUpdateDate: %w", err)}
		}
		for _, i := range w.RelatedInvoices {
			p.Invoices = append(p.Invoices, i.InvoiceNumber)
		}
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].LastUpdate.Before(out[j].LastUpdate) })
	return out, nil
}
