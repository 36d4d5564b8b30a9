package fusionsim

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/sinewhq/sinew/pkg/money"
)

// Payables payments (ap-payment-status): GET payablesPayments (q on
// PaymentNumber, PaymentStatus, LastUpdateDate; the related invoices
// expanded), POST payablesPayments (a manual payment of one or more
// invoices), PATCH payablesPayments/{PaymentId} (PaymentStatus: CLEARED
// or VOIDED). Statuses move NEGOTIABLE (issued) → CLEARED or VOIDED,
// CLEARED → VOIDED is refused (a cleared payment is reversed by a new
// transaction, not voided) and VOIDED is final. Amounts are exact.

// Payment statuses.
const (
	PaymentIssued  = "NEGOTIABLE"
	PaymentCleared = "CLEARED"
	PaymentVoided  = "VOIDED"
)

// CodePaymentInvalid is the error code of a refused payment request.
const CodePaymentInvalid = "AP_INVALID_PAYMENT"

// Payment is one simulated payment.
type Payment struct {
	ID       int64        `json:"PaymentId,string"`
	Number   string       `json:"PaymentNumber"`
	Status   string       `json:"PaymentStatus"`
	Amount   money.Amount `json:"PaymentAmount"`
	Currency string       `json:"PaymentCurrency"`
	Date     string       `json:"PaymentDate"`
	Invoices []string     `json:"InvoiceNumbers"`
	Updated  time.Time    `json:"LastUpdateDate"`
	// History is every status with when it was set.
	History []PaymentEvent `json:"History"`
}

// PaymentEvent is one status change.
type PaymentEvent struct {
	Status string    `json:"status"`
	At     time.Time `json:"at"`
}

type paymentState struct {
	payments []*Payment
	next     int64
}

func (s *Server) payState() *paymentState {
	if s.pay == nil {
		s.pay = &paymentState{next: 400000000001}
	}
	return s.pay
}

func (s *Server) paymentRoutes(api *http.ServeMux) {
	api.HandleFunc("GET "+APIPath+"/payablesPayments", s.paymentsGet)
	api.HandleFunc("POST "+APIPath+"/payablesPayments", s.paymentPost)
	api.HandleFunc("PATCH "+APIPath+"/payablesPayments/{id}", s.paymentPatch)
}

// payNow is a strictly increasing LastUpdateDate. Called with s.mu held.
func (s *Server) payNow() time.Time {
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, p := range s.payState().payments {
		if !now.After(p.Updated) {
			now = p.Updated.Add(time.Millisecond)
		}
	}
	return now
}

func paymentJSON(r *http.Request, p *Payment) map[string]any {
	var inv []any
	for _, n := range p.Invoices {
		inv = append(inv, map[string]any{"InvoiceNumber": n})
	}
	self := baseURL(r) + APIPath + "/payablesPayments/" + strconv.FormatInt(p.ID, 10)
	return map[string]any{
		"PaymentId": p.ID, "PaymentNumber": p.Number, "PaymentStatus": p.Status, "PaymentAmount": amount(p.Amount),
		"PaymentCurrency": p.Currency, "PaymentDate": p.Date, "LastUpdateDate": p.Updated.Format(time.RFC3339Nano),
		"relatedInvoices": child(inv), "links": []any{link("self", self, "payablesPayments", "item")},
	}
}

var paymentAttrs = map[string]func(*Payment) string{
	"PaymentNumber":  func(p *Payment) string { return p.Number },
	"PaymentStatus":  func(p *Payment) string { return p.Status },
	"LastUpdateDate": func(p *Payment) string { return p.Updated.Format(time.RFC3339Nano) },
}

func (s *Server) paymentsGet(w http.ResponseWriter, r *http.Request) {
	q := queryParams(r)
	limit, offset, err := paging(q)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	terms, ok := filterTerms(w, q["q"], "payablesPayments", func(a string) bool { return paymentAttrs[a] != nil })
	if !ok {
		return
	}
	var items []any
	s.mu.Lock()
	for _, p := range s.payState().payments {
		match := true
		for _, t := range terms {
			kind := kString
			if t.attr == "LastUpdateDate" {
				kind = kTime
			}
			match = match && t.match(kind, paymentAttrs[t.attr](p))
		}
		if match {
			items = append(items, paymentJSON(r, p))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, collection(r, q, items, limit, offset))
}

func (s *Server) paymentPost(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PaymentNumber   string `json:"PaymentNumber"`
		PaymentAmount   string `json:"PaymentAmount"`
		PaymentCurrency string `json:"PaymentCurrency"`
		PaymentDate     string `json:"PaymentDate"`
		RelatedInvoices []struct {
			InvoiceNumber string `json:"InvoiceNumber"`
		} `json:"relatedInvoices"`
	}
	if err := decodeJSON(r, &in); err != nil {
		badRequest(w, "%v", err)
		return
	}
	var errs []fieldErr
	amt, err := money.Parse(in.PaymentAmount)
	if err != nil || amt <= 0 {
		errs = append(errs, invalid("PaymentAmount", CodePaymentInvalid, in.PaymentAmount))
	}
	if in.PaymentCurrency == "" {
		errs = append(errs, fieldErr{"PaymentCurrency", CodePaymentInvalid, "The attribute PaymentCurrency is required."})
	}
	if _, err := time.Parse(dateLayout, in.PaymentDate); err != nil {
		errs = append(errs, invalid("PaymentDate", CodePaymentInvalid, in.PaymentDate))
	}
	if len(in.RelatedInvoices) == 0 {
		errs = append(errs, fieldErr{"relatedInvoices", CodePaymentInvalid, "A payment pays at least one invoice."})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.payState()
	if in.PaymentNumber != "" && slices.ContainsFunc(st.payments, func(p *Payment) bool { return p.Number == in.PaymentNumber }) {
		errs = append(errs, fieldErr{"PaymentNumber", CodePaymentInvalid, fmt.Sprintf("The payment number %s already exists.", in.PaymentNumber)})
	}
	if len(errs) > 0 {
		writeErrors(w, http.StatusBadRequest, errs)
		return
	}
	p := &Payment{ID: st.next, Number: in.PaymentNumber, Status: PaymentIssued, Amount: amt, Currency: in.PaymentCurrency, Date: in.PaymentDate, Updated: s.payNow()}
	st.next++
	if p.Number == "" {
		p.Number = strconv.FormatInt(p.ID%1000000, 10)
	}
	for _, i := range in.RelatedInvoices {
		p.Invoices = append(p.Invoices, i.InvoiceNumber)
	}
	p.History = []PaymentEvent{{Status: p.Status, At: p.Updated}}
	st.payments = append(st.payments, p)
	writeJSON(w, http.StatusCreated, paymentJSON(r, p))
}

func (s *Server) paymentPatch(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PaymentStatus string `json:"PaymentStatus"`
	}
	if err := decodeJSON(r, &in); err != nil {
		badRequest(w, "%v", err)
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.payState().payments {
		if p.ID != id {
			continue
		}
		ok := in.PaymentStatus == PaymentCleared && p.Status == PaymentIssued ||
			in.PaymentStatus == PaymentVoided && p.Status == PaymentIssued
		if !ok {
			writeErrors(w, http.StatusBadRequest, []fieldErr{{"PaymentStatus", CodePaymentInvalid,
				fmt.Sprintf("The payment status can't change from %s to %s.", p.Status, in.PaymentStatus)}})
			return
		}
		p.Status, p.Updated = in.PaymentStatus, s.payNow()
		p.History = append(p.History, PaymentEvent{Status: p.Status, At: p.Updated})
		writeJSON(w, http.StatusOK, paymentJSON(r, p))
		return
	}
	writeError(w, http.StatusNotFound, "The payment "+r.PathValue("id")+" doesn't exist.", "")
}

// Payments returns a copy of every payment (the /sim/payments view).
func (s *Server) Payments() []Payment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Payment, 0, len(s.payState().payments))
	for _, p := range s.payState().payments {
		c := *p
		c.History = slices.Clone(p.History)
		out = append(out, c)
	}
	return out
}
