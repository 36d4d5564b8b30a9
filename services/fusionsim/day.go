package fusionsim

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/refund"
)

// RunDay produces Fusion's side of a hospital day for `make run` until
// ctx ends, one step every interval, through the simulator's own REST
// resources (validated as any client's requests): a hire (fictitious
// names, valid NPIs), then a department change of an earlier hire, then a
// new supplier with its site, in turn; and at every step one move of
// Payables paying the patient refunds epicsim's Resolute holds (payDay).
func (s *Server) RunDay(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.payDay(n)
		switch n % 3 {
		case 1:
			s.dayCall(http.MethodPost, HCMPath+"/workers", fmt.Sprintf(`{"PersonNumber":"D%05d","names":[{"LastName":"TESTWORKER","FirstName":"%s","LegislationCode":"US"}],
			 "workRelationships":[{"LegalEmployerName":"St Marys","WorkerType":"E","StartDate":%q,
			  "assignments":[{"DepartmentName":"CARDIOLOGY","JobCode":"PHYS","assignmentsDFF":[{"npi":%q,"specialty":"Cardiology","providerType":"MD"}]}]}]}`,
				n, dayNames[n%len(dayNames)], time.Now().UTC().Format(dateLayout), dayNPI(n)), nil)
		case 2:
			s.mu.Lock()
			var path string
			if ws := s.hcmState().workers; len(ws) > 0 {
				w := ws[n%len(ws)]
				path = HCMPath + "/workers/" + strconv.FormatInt(w.PersonID, 10) + "/child/workRelationships/" + strconv.FormatInt(w.RelationshipID, 10) +
					"/child/assignments/" + strconv.FormatInt(w.AssignmentID, 10)
			}
			s.mu.Unlock()
			if path != "" {
				s.dayCall(http.MethodPatch, path, fmt.Sprintf(`{"DepartmentName":%q}`, dayDepartments[n%len(dayDepartments)]), nil)
			}
		default:
			s.dayCall(http.MethodPost, APIPath+"/suppliers", fmt.Sprintf(`{"Supplier":"Synthetic Supply %d","SupplierNumber":"D%d",
			 "addresses":[{"AddressName":"MAIN","AddressLine1":"%d Market Street","City":"Springfield","PostalCode":"62701","CountryCode":"US"}],
			 "sites":[{"SupplierSite":"MAIN","ProcurementBU":"Main Hospital BU","SupplierAddressName":"MAIN"}]}`, n, n, n), nil)
		}
	}
}

// payDay is step n of Payables' day: refund k=(n+1)/2 (pkg/refund
// Synthetic) is paid at odd steps and its payment cleared at the next
// step, or voided for every third refund; step 5 also pays an invoice
// that is no refund (the day's one unmatched payment, for triage).
func (s *Server) payDay(n int) {
	k := (n + 1) / 2
	ref, amt := refund.Synthetic(k)
	number := refund.SyntheticPayment(k)
	if n%2 == 1 {
		s.dayCall(http.MethodPost, APIPath+"/payablesPayments", fmt.Sprintf(`{"PaymentNumber":%q,"PaymentAmount":%q,"PaymentCurrency":"USD","PaymentDate":%q,"relatedInvoices":[{"InvoiceNumber":%q}]}`,
			number, amt.String(), time.Now().UTC().Format(dateLayout), ref), nil)
		if n == 5 {
			s.dayCall(http.MethodPost, APIPath+"/payablesPayments", fmt.Sprintf(`{"PaymentNumber":"UNM%06d","PaymentAmount":"42.17","PaymentCurrency":"USD","PaymentDate":%q,"relatedInvoices":[{"InvoiceNumber":"INV-D%06d"}]}`,
				n, time.Now().UTC().Format(dateLayout), n), nil)
		}
		return
	}
	status := PaymentCleared
	if k%3 == 2 {
		status = PaymentVoided
	}
	s.mu.Lock()
	var id int64
	for _, p := range s.payState().payments {
		if p.Number == number {
			id = p.ID
		}
	}
	s.mu.Unlock()
	if id != 0 {
		s.dayCall(http.MethodPatch, APIPath+"/payablesPayments/"+strconv.FormatInt(id, 10), fmt.Sprintf(`{"PaymentStatus":%q}`, status), nil)
	}
}

var (
	dayNames       = []string{"ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO"}
	dayDepartments = []string{"ONCOLOGY", "SURGERY", "EMERGENCY", "CARDIOLOGY"}
)

// dayNPI is a valid (check digit) fictitious NPI for step n.
func dayNPI(n int) string {
	base := fmt.Sprintf("19%07d", n%10000000)
	for d := '0'; d <= '9'; d++ {
		if validNPI(base + string(d)) {
			return base + string(d)
		}
	}
	return base + "0"
}

// dayCall sends one request to the simulator's own handler, signed in.
func (s *Server) dayCall(method, path, body string, hdr map[string]string) int {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.SetBasicAuth(s.cfg.Username, s.cfg.Password)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	if rec.Code >= 300 && s.log != nil {
		s.log.Warn("day step refused", "path", path, "status", rec.Code)
	}
	return rec.Code
}
