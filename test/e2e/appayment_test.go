package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAPPaymentStatusToResolute: a refund payment issued, then cleared,
// in Fusion arrives in Resolute matched to its refund, amount exact and
// both statuses kept, and the flow reconciles clean in `sinew recon
// report`; a payment of no refund lands in triage (a dead letter
// SINEW-AP-001 and an ambiguous-match item that holds the flow's recon
// report) and is never sent to Epic.
func TestAPPaymentStatusToResolute(t *testing.T) {
	fusion := startFusion(t, "-step", "50ms")
	dir := t.TempDir()
	a := newAddrs(t)
	inbound, simAddr := freeAddr(t), freeAddr(t)
	env := []string{
		"SINEW_EPICSIM_INBOUND_ADDR=" + inbound, "SINEW_EPICSIM_INBOUND_SIM_ADDR=" + simAddr,
		"SINEW_LOADER_EPIC_ADDR=" + inbound, "SINEW_LOADER_EPIC_ACK_TIMEOUT=5s", "SINEW_TRANSFORM_POLL_INTERVAL=300ms",
		"SINEW_RECONCILER_INVENTORY_EVERY=2s", "SINEW_RECONCILER_READ_LAG=5s",
	}
	s, _ := upWith(t, dir, a, []string{"--fusion-url", fusion.url}, env)
	epic := epicSim{url: "http://" + simAddr}
	epic.do(t, "POST", "/sim/refunds", `{"reference":"RF000123","amount":"125.40","currency":"USD"}`, nil)

	var pay struct {
		PaymentID int64 `json:"PaymentId"`
	}
	b := fscm(t, fusion, "POST", "/payablesPayments", `{"PaymentNumber":"88001","PaymentAmount":"125.40","PaymentCurrency":"USD","PaymentDate":"2026-03-02",
	 "relatedInvoices":[{"InvoiceNumber":"RF000123"}]}`)
	if err := json.Unmarshal(b, &pay); err != nil {
		t.Fatal(err)
	}
	type refundOut struct {
		Reference string
		Payments  []struct {
			PaymentNumber, Status string
			Amount                string
		}
	}
	refunds := func() []refundOut {
		var out []refundOut
		epic.do(t, "GET", "/sim/refunds", "", &out)
		return out
	}
	waitFor(t, "the issued payment in Resolute", 60*time.Second, func() (bool, string) {
		r := refunds()
		return len(r) == 1 && len(r[0].Payments) == 1 && r[0].Payments[0].Status == "ISSUED" && r[0].Payments[0].Amount == "125.40", fmt.Sprintf("%+v", r)
	})
	fscm(t, fusion, "PATCH", "/payablesPayments/"+strconv.FormatInt(pay.PaymentID, 10), `{"PaymentStatus":"CLEARED"}`)
	waitFor(t, "the cleared payment in Resolute, history kept", 60*time.Second, func() (bool, string) {
		r := refunds()
		return len(r) == 1 && len(r[0].Payments) == 2 && r[0].Payments[1].Status == "CLEARED", fmt.Sprintf("%+v", r)
	})
	waitReconciled(t, s, "ap-payment-status", true)
	var before simInbound
	epic.do(t, "GET", "/sim/inbound", "", &before)

	// A payment of no refund: triage, not Epic.
	fscm(t, fusion, "POST", "/payablesPayments", `{"PaymentNumber":"88002","PaymentAmount":"10.00","PaymentCurrency":"USD","PaymentDate":"2026-03-02",
	 "relatedInvoices":[{"InvoiceNumber":"INV-5521"}]}`)
	waitFor(t, "the unmatched payment in triage", 60*time.Second, func() (bool, string) {
		out, err := s.cli(t, "dlq", "list", "--json")
		if err != nil {
			return false, out
		}
		return strings.Contains(out, "SINEW-AP-001") && strings.Contains(out, "payment 88002"), out
	})
	var after simInbound
	epic.do(t, "GET", "/sim/inbound", "", &after)
	if after.Received != before.Received {
		t.Fatalf("the unmatched payment reached Epic: %+v then %+v", before, after)
	}
	waitFor(t, "the unmatched payment holding the flow's recon report", 60*time.Second, func() (bool, string) {
		out, err := s.cli(t, "recon", "report", "--flow", "ap-payment-status")
		return err != nil && strings.Contains(out, "SINEW-AP-001"), out
	})
	out, _ := s.cli(t, "triage", "list", "--flow", "ap-payment-status", "--json")
	if !strings.Contains(out, `"ambiguous-match"`) || !strings.Contains(out, "SINEW-AP-001") {
		t.Fatalf("no ambiguous-match item for the unmatched payment:\n%s", out)
	}
}
