package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
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

// TestSupplierSyncFusionToEpic, for each transport a site can choose
// (flows.yaml delivery: MFN over MLLP, or the supplier reference file
// over SFTP with the site's delimiter): a supplier created in Fusion (with
// its site) arrives in Epic's supplier reference once, through the
// incremental read, EPIC_CMD and the loader; deactivating it in Fusion
// deactivates it in Epic. The day reconciles clean in `sinew recon
// report`; then Epic refuses a new supplier (AE until dead-lettered) and
// the reconciliation finds it: Fusion holds an active supplier Epic never
// acknowledged, a variance and a triage item.
func TestSupplierSyncFusionToEpic(t *testing.T) {
	for _, transport := range []string{"mllp", "sftp"} {
		t.Run(transport, func(t *testing.T) { supplierSync(t, transport) })
	}
}

func supplierSync(t *testing.T, transport string) {
	fusion := startFusion(t, "-step", "50ms")
	dir := t.TempDir()
	a := newAddrs(t)
	inbound, simAddr := freeAddr(t), freeAddr(t)
	env := []string{
		"SINEW_EPICSIM_INBOUND_ADDR=" + inbound, "SINEW_EPICSIM_INBOUND_SIM_ADDR=" + simAddr,
		"SINEW_LOADER_EPIC_ADDR=" + inbound, "SINEW_LOADER_EPIC_ACK_TIMEOUT=5s", "SINEW_TRANSFORM_POLL_INTERVAL=300ms",
		"SINEW_RECONCILER_INVENTORY_EVERY=2s", "SINEW_RECONCILER_READ_LAG=5s", "SINEW_TOPOLOGY_LOAD_RETRY_BASE=1s",
	}
	flowsFile := filepath.Join(repoRoot(t), "flows.yaml")
	var flags []string
	if transport == "sftp" {
		// The site takes its supplier reference as a file on Epic's SFTP
		// share, fields separated by ";"; sinew up points the loader at
		// epicsim's share and its host key.
		base, err := os.ReadFile(filepath.Join(repoRoot(t), "flows.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		const mllp = `delivery: {transport: mllp, dir: supplier-ref, delimiter: "|"}`
		if !bytes.Contains(base, []byte(mllp)) {
			t.Fatalf("flows.yaml's supplier-sync delivery is not %s", mllp)
		}
		flowsFile = filepath.Join(dir, "flows.yaml")
		if err := os.WriteFile(flowsFile, bytes.Replace(base, []byte(mllp), []byte(`delivery: {transport: sftp, dir: supplier-ref, delimiter: ";"}`), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		share := freeAddr(t)
		flags = append(flags, "--flows", flowsFile)
		env = append(env, "SINEW_EPICSIM_SFTP_ADDR="+share, "SINEW_LOADER_EPIC_SFTP_ADDR="+share)
	}
	s, _ := upWith(t, filepath.Join(dir, "data"), a, append([]string{"--fusion-url", fusion.url}, flags...), env)
	epic := epicSim{url: "http://" + simAddr}
	if out, err := s.cli(t, "flows", "activate", "supplier-sync", "--reason", "e2e: supplier-sync cutover", "--wait=false", "--flows", flowsFile); err != nil {
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
	if in.Rejected != 0 || in.Received < 2 {
		t.Fatalf("Epic refused records, or took them another way: %+v", in)
	}
	if transport == "sftp" {
		taken, _ := filepath.Glob(filepath.Join(dir, "data", "epicsim", "sftp", "supplier-ref", "done", "SUP*.txt"))
		if len(taken) < 2 {
			t.Fatalf("%d supplier files taken from Epic's share, want 2 or more", len(taken))
		}
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
	waitFor(t, "Epic's refusal dead-lettered with its text", 60*time.Second, func() (bool, string) {
		out, _ := s.cli(t, "dlq", "list", "--json")
		return strings.Contains(out, "SINEW-EPIC-001") && strings.Contains(out, "supplier table locked"), out
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
