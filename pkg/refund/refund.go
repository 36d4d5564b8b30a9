// Package refund matches Fusion AP payments to Resolute patient refunds
// and builds the payment status message Resolute receives.
//
// A Resolute refund request becomes a Fusion payables invoice whose number
// is the refund's reference (the site's prefix, RF by default, then
// digits). A payment is matched when exactly one of the invoices it pays
// carries such a reference; none (unmatched) or more than one (ambiguous)
// is not sent to Epic: it goes to triage.
//
// The message (site layout, HL7 v2.5.1): DFT^P03 with
// FT1-2 the refund reference, FT1-4 the status date, FT1-6 RFPAY,
// FT1-11 the amount (<amount>&<currency>), and
// ZPS|<payment number>|<status ISSUED/CLEARED/VOIDED>|<status time>.
package refund

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/money"
)

// TransactionType is FT1-6 of a refund payment status.
const TransactionType = "RFPAY"

// Errors of Match.
var (
	ErrUnmatched = errors.New("refund: no invoice of the payment carries a refund reference")
	ErrAmbiguous = errors.New("refund: the payment's invoices carry more than one refund reference")
)

// Match returns the single refund reference among a payment's invoice
// numbers (prefix, then at least one digit).
func Match(invoices []string, prefix string) (string, error) {
	if prefix == "" {
		prefix = "RF"
	}
	var found string
	for _, n := range invoices {
		rest, ok := strings.CutPrefix(strings.TrimSpace(n), prefix)
		if !ok || rest == "" || strings.Trim(rest, "0123456789") != "" {
			continue
		}
		switch {
		case found == "":
			found = strings.TrimSpace(n)
		case found != strings.TrimSpace(n):
			return "", ErrAmbiguous
		}
	}
	if found == "" {
		return "", ErrUnmatched
	}
	return found, nil
}

// Status is Resolute's name for a Fusion payment status.
func Status(fusionStatus string) (string, error) {
	switch fusionStatus {
	case "NEGOTIABLE", "ISSUED":
		return "ISSUED", nil
	case "CLEARED":
		return "CLEARED", nil
	case "VOIDED":
		return "VOIDED", nil
	}
	return "", fmt.Errorf("refund: payment status %q is not issued, cleared or voided", fusionStatus)
}

// Payment is one payment status for a refund.
type Payment struct {
	Reference, PaymentNumber, Status string
	Amount                           money.Amount
	Currency                         string
	At                               time.Time
}

// Header names sender and receiver.
type Header struct {
	SendingApp, ReceivingApp, Facility, ControlID string
	Time                                          time.Time
}

// Build encodes one payment status (CR terminators).
func Build(h Header, p Payment) []byte {
	esc := func(s string) string { return string(hl7.Escape(nil, []byte(s), hl7.DefaultDelimiters)) }
	ts := h.Time.UTC().Format("20060102150405")
	at := p.At.UTC().Format("20060102150405")
	segs := []string{
		"MSH|^~\\&|" + esc(h.SendingApp) + "|" + esc(h.Facility) + "|" + esc(h.ReceivingApp) + "|" + esc(h.Facility) + "|" + ts + "||DFT^P03^DFT_P03|" + esc(h.ControlID) + "|P|2.5.1",
		"EVN|P03|" + ts,
		"FT1|1|" + esc(p.Reference) + "||" + at + "||" + TransactionType + "|||||" + p.Amount.String() + "&" + esc(p.Currency),
		"ZPS|" + esc(p.PaymentNumber) + "|" + esc(p.Status) + "|" + at,
	}
	return []byte(strings.Join(segs, "\r") + "\r")
}

// Is reports whether msg is a refund payment status.
func Is(msg *hl7.Message) bool {
	return msg.Type() == "DFT" && msg.Event() == "P03" && msg.Get("FT1-6") == TransactionType
}

// Read reads a payment status; errors name the field.
func Read(msg *hl7.Message) (Payment, error) {
	p := Payment{Reference: msg.Get("FT1-2"), PaymentNumber: msg.Get("ZPS-1"), Status: msg.Get("ZPS-2"), Currency: msg.Get("FT1-11-1-2")}
	if p.Reference == "" {
		return p, errors.New("FT1-2: refund reference required")
	}
	if _, err := Status(p.Status); err != nil {
		return p, errors.New("ZPS-2: status must be ISSUED, CLEARED or VOIDED")
	}
	amt, err := money.Parse(msg.Get("FT1-11-1-1"))
	if err != nil {
		return p, errors.New("FT1-11: amount is not a decimal")
	}
	p.Amount = amt
	if t, ok := hl7.ParseDTM(msg.Get("ZPS-3")); ok {
		p.At = t
	}
	return p, nil
}

// Synthetic is the n-th (from 1) patient refund of the simulators' day:
// epicsim's Resolute holds it and fusionsim pays it, each computing it
// from n alone, so the two simulators agree without talking. Amounts are
// exact and vary in their cents.
func Synthetic(n int) (reference string, amount money.Amount) {
	return fmt.Sprintf("RF%06d", 900000+n), money.Amount(1000 + (n*7919)%49000)
}

// SyntheticPayment is the payment number fusionsim gives the payment of
// synthetic refund n.
func SyntheticPayment(n int) string { return fmt.Sprintf("RFP%06d", n) }
