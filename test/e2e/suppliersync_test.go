package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fscm calls fusionsim's FSCM resources with Sinew's credentials.
func fscm(t *testing.T, f *fusionProc, method, path, body string) []byte {
	t.Helper()
	req, err := http.NewRequest(method, f.url+"/fscmRestApi/resources/11.13.18.05"+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("sinew", "sinew")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return b
}

type simSupplierRef struct {
	Number, Name string
	Active       bool
	Sites        []struct{ Site, ProcurementBU, City string }
}

// TestSupplierSyncFusionToEpic: a supplier created in Fusion (with its
// site) arrives in Epic's supplier reference once, through the
// incremental read, EPIC_CMD and the loader's MLLP leg; deactivating it
// in Fusion deactivates it in Epic. The day reconciles clean in `sinew
// recon report`; then Epic refuses a new supplier (AE until dead-lettered)
// and the reconciliation finds it: Fusion holds an active supplier Epic
// never acknowledged, a variance and a triage item.
func TestSupplierSyncFusionToEpic(t *testing.T) {
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
	if out, err := s.flows(t, "activate", "supplier-sync", "--reason", "e2e: supplier-sync cutover", "--wait=false"); err != nil {
		t.Fatalf("activate: %v\n%s", err, out)
	}
	var created struct {
		SupplierID int64 `json:"SupplierId"`
	}
	b := fscm(t, fusion, "POST", "/suppliers", `{"Supplier":"Northwind Surgical","SupplierNumber":"7700","addresses":[{"AddressName":"NW-HQ","AddressLine1":"1 Harbor Way","City":"Portland","PostalCode":"97201","CountryCode":"US"}],
	 "sites":[{"SupplierSite":"NW-HQ","ProcurementBU":"Main Hospital BU","SupplierAddressName":"NW-HQ"}]}`)
	if err := json.Unmarshal(b, &created); err != nil {
		t.Fatal(err)
	}
	ref := func() map[string]simSupplierRef {
		var out []simSupplierRef
		epic.do(t, "GET", "/sim/suppliers", "", &out)
		m := map[string]simSupplierRef{}
		for _, s := range out {
			m[s.Number] = s
		}
		return m
	}
	waitFor(t, "the supplier in Epic's reference", 60*time.Second, func() (bool, string) {
		r := ref()
		sup, ok := r["7700"]
		return ok && sup.Active && len(sup.Sites) == 1 && sup.Sites[0].City == "Portland", fmt.Sprintf("%+v", r)
	})
	fscm(t, fusion, "PATCH", "/suppliers/"+strconv.FormatInt(created.SupplierID, 10), `{"Status":"INACTIVE"}`)
	waitFor(t, "the supplier inactive in Epic", 60*time.Second, func() (bool, string) {
		sup := ref()["7700"]
		return !sup.Active && sup.Name == "Northwind Surgical", fmt.Sprintf("%+v", sup)
	})
	var in simInbound
	epic.do(t, "GET", "/sim/inbound", "", &in)
	if in.Rejected != 0 {
		t.Fatalf("Epic refused records: %+v", in)
	}
	waitReconciled(t, s, "supplier-sync", true)

	// Drift: Epic refuses a new supplier until it is dead-lettered.
	epic.do(t, "POST", "/sim/faults", `{"mode":"ae","text":"supplier table locked"}`, nil)
	fscm(t, fusion, "POST", "/suppliers", `{"Supplier":"Contoso Medical","SupplierNumber":"7701","addresses":[{"AddressName":"CM-HQ","AddressLine1":"9 Mill Road","City":"Salem","PostalCode":"97301","CountryCode":"US"}],
	 "sites":[{"SupplierSite":"CM-HQ","ProcurementBU":"Main Hospital BU","SupplierAddressName":"CM-HQ"}]}`)
	out := waitReconciled(t, s, "supplier-sync", false)
	if !strings.Contains(out, "7701") {
		t.Fatalf("the variance does not name the supplier Epic lacks:\n%s", out)
	}
	waitFor(t, "a triage item for the variance", 60*time.Second, func() (bool, string) {
		out, _ := s.cli(t, "triage", "list", "--flow", "supplier-sync", "--json")
		return strings.Contains(out, "SINEW-RECON-002"), out
	})
}

// waitReconciled waits until `sinew recon report --flow flow` passes (or,
// when !clean, fails on a variance) and returns its output.
func waitReconciled(t *testing.T, s *system, flow string, clean bool) string {
	t.Helper()
	var last string
	waitFor(t, flow+" reconciled", 120*time.Second, func() (bool, string) {
		out, err := s.cli(t, "recon", "report", "--flow", flow)
		last = out
		if clean {
			return err == nil && strings.Contains(out, "pass"), out
		}
		return err != nil && strings.Contains(out, ": variance"), out
	})
	return last
}
