package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAPPaymentStatusToResolute, at a site whose refund references start
// PR (flows.yaml refunds.prefix): a refund payment issued, then cleared,
// in Fusion arrives in Resolute matched to its refund, amount exact and
// both statuses kept; another is issued, then voided, its history kept
// too; the flow reconciles clean in `sinew recon report`. A payment of no
// refund of the site (an RF invoice is none here) lands in triage (a dead
// letter SINEW-AP-001 and an ambiguous-match item that holds the flow's
// recon report), as does one paying two refunds (SINEW-AP-002); neither
// is sent to Epic.
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
	base, err := os.ReadFile(filepath.Join(repoRoot(t), "flows.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(base, []byte("refunds: {prefix: RF}")) {
		t.Fatal("flows.yaml's ap-payment-status does not declare refunds: {prefix: RF}")
	}
	file := filepath.Join(dir, "flows.yaml")
	if err := os.WriteFile(file, bytes.Replace(base, []byte("refunds: {prefix: RF}"), []byte("refunds: {prefix: PR}"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	s, _ := upWith(t, filepath.Join(dir, "data"), a, []string{"--fusion-url", fusion.url, "--flows", file}, env)
	epic := epicSim{url: "http://" + simAddr}
	epic.do(t, "POST", "/sim/refunds", `{"reference":"PR000123","amount":"125.40","currency":"USD"}`, nil)
	epic.do(t, "POST", "/sim/refunds", `{"reference":"PR000124","amount":"0.07","currency":"USD"}`, nil)

	var pay struct {
		PaymentID int64 `json:"PaymentId"`
	}
	b := fscm(t, fusion, "POST", "/payablesPayments", `{"PaymentNumber":"88001","PaymentAmount":"125.40","PaymentCurrency":"USD","PaymentDate":"2026-03-02",
	 "relatedInvoices":[{"InvoiceNumber":"PR000123"}]}`)
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
	var small struct {
		PaymentID int64 `json:"PaymentId"`
	}
	b = fscm(t, fusion, "POST", "/payablesPayments", `{"PaymentNumber":"88003","PaymentAmount":"0.07","PaymentCurrency":"USD","PaymentDate":"2026-03-02",
	 "relatedInvoices":[{"InvoiceNumber":"INV-5520"},{"InvoiceNumber":"PR000124"}]}`)
	if err := json.Unmarshal(b, &small); err != nil {
		t.Fatal(err)
	}
	// history is a refund's statuses and amounts as Resolute holds them.
	history := func(ref string) string {
		for _, r := range refunds() {
			if r.Reference == ref {
				var h []string
				for _, p := range r.Payments {
					h = append(h, p.PaymentNumber+" "+p.Status+" "+p.Amount)
				}
				return strings.Join(h, ", ")
			}
		}
		return "no refund " + ref
	}
	waitFor(t, "the issued payments in Resolute", 60*time.Second, func() (bool, string) {
		a, b := history("PR000123"), history("PR000124")
		return a == "88001 ISSUED 125.40" && b == "88003 ISSUED 0.07", a + " / " + b
	})
	fscm(t, fusion, "PATCH", "/payablesPayments/"+strconv.FormatInt(pay.PaymentID, 10), `{"PaymentStatus":"CLEARED"}`)
	fscm(t, fusion, "PATCH", "/payablesPayments/"+strconv.FormatInt(small.PaymentID, 10), `{"PaymentStatus":"VOIDED"}`)
	waitFor(t, "the cleared and the voided payment in Resolute, history kept", 60*time.Second, func() (bool, string) {
		a, b := history("PR000123"), history("PR000124")
		return a == "88001 ISSUED 125.40, 88001 CLEARED 125.40" && b == "88003 ISSUED 0.07, 88003 VOIDED 0.07", a + " / " + b
	})
	waitReconciled(t, s, "ap-payment-status", true)
	var before simInbound
	epic.do(t, "GET", "/sim/inbound", "", &before)

	// A payment of no refund of this site's (RF is not its prefix), and
	// one of two refunds: triage, not Epic.
	fscm(t, fusion, "POST", "/payablesPayments", `{"PaymentNumber":"88002","PaymentAmount":"10.00","PaymentCurrency":"USD","PaymentDate":"2026-03-02",
	 "relatedInvoices":[{"InvoiceNumber":"RF000123"}]}`)
	fscm(t, fusion, "POST", "/payablesPayments", `{"PaymentNumber":"88004","PaymentAmount":"20.00","PaymentCurrency":"USD","PaymentDate":"2026-03-02",
	 "relatedInvoices":[{"InvoiceNumber":"PR000123"},{"InvoiceNumber":"PR000124"}]}`)
	waitFor(t, "the unmatched and the ambiguous payment in triage", 60*time.Second, func() (bool, string) {
		out, err := s.cli(t, "dlq", "list", "--json")
		if err != nil {
			return false, out
		}
		return strings.Contains(out, "SINEW-AP-001") && strings.Contains(out, "payment 88002") &&
			strings.Contains(out, "SINEW-AP-002") && strings.Contains(out, "payment 88004"), out
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

// TestSimulatedDayPaysRefundsInResolute: the simulators' day as `make
// run` has it (fusionsim's day, epicsim's Resolute holding the synthetic
// refunds) gives ap-payment-status its traffic: payments issued, then
// cleared or voided, reach Resolute matched to their refunds with each
// status kept; the day's one unmatched payment is in triage, and `sinew
// recon report` shows the flow held by it.
func TestSimulatedDayPaysRefundsInResolute(t *testing.T) {
	dir := t.TempDir()
	a := newAddrs(t)
	inbound, simAddr := freeAddr(t), freeAddr(t)
	env := []string{
		"SINEW_EPICSIM_INBOUND_ADDR=" + inbound, "SINEW_EPICSIM_INBOUND_SIM_ADDR=" + simAddr, "SINEW_EPICSIM_INBOUND_REFUNDS=20",
		"SINEW_FUSIONSIM_SIM_DAY_INTERVAL=1s",
		"SINEW_LOADER_EPIC_ADDR=" + inbound, "SINEW_LOADER_EPIC_ACK_TIMEOUT=5s", "SINEW_TRANSFORM_POLL_INTERVAL=300ms",
		"SINEW_RECONCILER_INVENTORY_EVERY=2s", "SINEW_RECONCILER_READ_LAG=2s",
	}
	s, _ := upWith(t, filepath.Join(dir, "data"), a, nil, env)
	epic := epicSim{url: "http://" + simAddr}
	type refundOut struct {
		Reference string
		Payments  []struct{ PaymentNumber, Status, Amount string }
	}
	waitFor(t, "refunds cleared and voided in Resolute", 90*time.Second, func() (bool, string) {
		var out []refundOut
		epic.do(t, "GET", "/sim/refunds", "", &out)
		// A status changed twice between two reads is read once, at its
		// latest (as from Fusion); a step a second and a read every 300 ms
		// keep most histories whole.
		cleared, voided, whole := 0, 0, 0
		var seen []string
		for _, r := range out {
			var h []string
			for _, p := range r.Payments {
				h = append(h, p.Status)
			}
			switch hs := strings.Join(h, ","); hs {
			case "ISSUED,CLEARED", "CLEARED":
				cleared++
				whole += strings.Count(hs, ",")
			case "ISSUED,VOIDED", "VOIDED":
				voided++
				whole += strings.Count(hs, ",")
			case "", "ISSUED":
			default:
				t.Fatalf("refund %s history %v", r.Reference, h)
			}
			if len(h) > 0 {
				seen = append(seen, r.Reference+":"+strings.Join(h, ","))
			}
		}
		return cleared >= 2 && voided >= 1 && whole >= 1, strings.Join(seen, " ")
	})
	waitFor(t, "the day's unmatched payment in triage", 60*time.Second, func() (bool, string) {
		dl, _ := s.cli(t, "dlq", "list", "--json")
		out, _ := s.cli(t, "triage", "list", "--flow", "ap-payment-status", "--json")
		return strings.Contains(dl, "payment UNM000005") && strings.Contains(out, "SINEW-AP-001"), dl + out
	})
	waitFor(t, "the flow in sinew recon report, held by it", 60*time.Second, func() (bool, string) {
		out, err := s.cli(t, "recon", "report", "--flow", "ap-payment-status")
		return err != nil && strings.Contains(out, "SINEW-AP-001"), out
	})
}
