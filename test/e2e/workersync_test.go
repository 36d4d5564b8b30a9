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

// epicSim is epicsim's /sim/ endpoint (the inbound provider interface).
type epicSim struct{ url string }

func (e epicSim) do(t *testing.T, method, path, body string, out any) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v: %s", path, err, b)
		}
	}
}

type simProvider struct {
	SER, EMP, PersonNumber, Family, Given, Department, Job, Specialty, NPI string
	Active                                                                 bool
}

type simInbound struct{ Received, Applied, Duplicates, Rejected, Dropped int }

// hcm calls fusionsim's HCM resources with Sinew's credentials.
func hcm(t *testing.T, f *fusionProc, method, path, body string, hdr map[string]string) []byte {
	t.Helper()
	req, err := http.NewRequest(method, f.url+"/hcmRestApi/resources/11.13.18.05"+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("sinew", "sinew")
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
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

// TestWorkerSyncFusionToEpic: a hire in fusionsim appears once in
// epicsim's provider master, through the HCM Atom feed, transform's
// poller, EPIC_CMD and the loader's MLLP leg (ACK checked). Then Epic
// answers AE to an assignment change: retried by redelivery, dead-lettered
// with the ACK's ERR text and reason code, and replayed once Epic accepts
// again (after the hire, the flow reconciles clean in `sinew recon
// report`; the refused change is found as a variance). Then Epic drops the ACK: the timeout is retried the same way.
func TestWorkerSyncFusionToEpic(t *testing.T) {
	fusion := startFusion(t, "-step", "50ms")
	dir := t.TempDir()
	a := newAddrs(t)
	inbound, simAddr := freeAddr(t), freeAddr(t)
	env := []string{
		"SINEW_EPICSIM_INBOUND_ADDR=" + inbound, "SINEW_EPICSIM_INBOUND_SIM_ADDR=" + simAddr, "SINEW_EPICSIM_INBOUND_ECHO=false",
		"SINEW_LOADER_EPIC_ADDR=" + inbound, "SINEW_LOADER_EPIC_ACK_TIMEOUT=2s",
		"SINEW_TRANSFORM_POLL_INTERVAL=300ms", "SINEW_TOPOLOGY_LOAD_RETRY_BASE=1s", "SINEW_TOPOLOGY_RETRY_BASE=500ms",
		"SINEW_RECONCILER_INVENTORY_EVERY=2s", "SINEW_RECONCILER_READ_LAG=5s",
	}
	s, _ := upWith(t, dir, a, []string{"--fusion-url", fusion.url}, env)
	epic := epicSim{url: "http://" + simAddr}
	if out, err := s.flows(t, "activate", "worker-sync", "--reason", "e2e: worker-sync cutover", "--wait=false"); err != nil {
		t.Fatalf("activate: %v\n%s", err, out)
	}

	var w struct {
		PersonID          int64 `json:"PersonId"`
		WorkRelationships []struct {
			PeriodOfServiceID int64 `json:"PeriodOfServiceId"`
			Assignments       []struct {
				AssignmentID int64 `json:"AssignmentId"`
			} `json:"assignments"`
		} `json:"workRelationships"`
	}
	b := hcm(t, fusion, "POST", "/workers", `{"PersonNumber":"P7001","names":[{"LastName":"RIVERA","FirstName":"ANA","LegislationCode":"US"}],
	 "workRelationships":[{"LegalEmployerName":"St Marys","WorkerType":"E","StartDate":"2026-01-05",
	  "assignments":[{"DepartmentName":"CARDIOLOGY","JobCode":"PHYS","assignmentsDFF":[{"npi":"1234567893","specialty":"Cardiology","providerType":"MD"}]}]}]}`, nil)
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	providers := func() []simProvider {
		var ps []simProvider
		epic.do(t, "GET", "/sim/providers", "", &ps)
		return ps
	}
	waitFor(t, "the hire in Epic's provider master", 60*time.Second, func() (bool, string) {
		ps := providers()
		return len(ps) == 1 && ps[0].PersonNumber == "P7001" && ps[0].Active, fmt.Sprintf("%+v", ps)
	})
	// Every active Fusion worker acknowledged by Epic: the flow reconciles.
	waitReconciled(t, s, "worker-sync", true)
	p := providers()[0]
	if p.SER == "" || p.Family != "RIVERA" || p.Specialty != "Cardiology" || p.NPI != "1234567893" || p.Department != "CARDIOLOGY" {
		t.Fatalf("provider: %+v", p)
	}

	// Epic refuses the next change (AE): 3 deliveries, then a dead letter
	// with Epic's ERR text.
	epic.do(t, "POST", "/sim/faults", `{"mode":"ae","text":"provider record locked by user ADMIN"}`, nil)
	asg := "/workers/" + strconv.FormatInt(w.PersonID, 10) + "/child/workRelationships/" + strconv.FormatInt(w.WorkRelationships[0].PeriodOfServiceID, 10) +
		"/child/assignments/" + strconv.FormatInt(w.WorkRelationships[0].Assignments[0].AssignmentID, 10)
	hcm(t, fusion, "PATCH", asg, `{"DepartmentName":"ONCOLOGY"}`, map[string]string{"Effective-Of": "RangeMode=UPDATE;RangeStartDate=" + time.Now().UTC().Format(time.DateOnly)})
	dead := func(code string) (string, bool) {
		out, err := s.cli(t, "dlq", "list", "--json")
		if err != nil {
			t.Fatalf("dlq list: %v\n%s", err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var dl struct {
				Seq        uint64 `json:"seq"`
				Reason     string `json:"reason"`
				ReasonCode string `json:"reason_code"`
				Flow       string `json:"flow"`
				Replay     any    `json:"replay"`
			}
			if json.Unmarshal([]byte(line), &dl) == nil && dl.ReasonCode == code && dl.Replay == nil {
				if !strings.Contains(dl.Reason, "locked by user ADMIN") && code == "SINEW-EPIC-001" {
					t.Fatalf("dead letter without Epic's ERR text: %s", line)
				}
				return fmt.Sprint(dl.Seq), true
			}
		}
		return out, false
	}
	var seq string
	waitFor(t, "the AE'd change dead-lettered", 60*time.Second, func() (bool, string) {
		var ok bool
		seq, ok = dead("SINEW-EPIC-001")
		return ok, seq
	})
	var in simInbound
	epic.do(t, "GET", "/sim/inbound", "", &in)
	if in.Rejected < 3 {
		t.Fatalf("AE'd %d times, want 3 deliveries: %+v", in.Rejected, in)
	}
	if providers()[0].Department != "CARDIOLOGY" {
		t.Fatal("a refused change was applied")
	}
	// The refused change is drift the reconciliation finds: Fusion's HR
	// attributes are not the ones Epic acknowledged.
	if out := waitReconciled(t, s, "worker-sync", false); !strings.Contains(out, "P7001") || !strings.Contains(out, "older version") {
		t.Fatalf("the variance does not name the drifted worker:\n%s", out)
	}
	epic.do(t, "DELETE", "/sim/faults", "", nil)
	if out, err := s.cli(t, "dlq", "replay", seq, "--reason", "e2e: record unlocked in Epic"); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	waitFor(t, "the replayed change in Epic", 60*time.Second, func() (bool, string) {
		ps := providers()
		return len(ps) == 1 && ps[0].Department == "ONCOLOGY", fmt.Sprintf("%+v", ps)
	})

	// Epic drops the ACK: timeouts retried, dead-lettered, replayed.
	epic.do(t, "POST", "/sim/faults", `{"mode":"drop"}`, nil)
	hcm(t, fusion, "PATCH", asg, `{"JobCode":"CHIEF"}`, map[string]string{"Effective-Of": "RangeMode=CORRECTION"})
	waitFor(t, "the unacknowledged change dead-lettered", 90*time.Second, func() (bool, string) {
		var ok bool
		seq, ok = dead("SINEW-EPIC-002")
		return ok, seq
	})
	epic.do(t, "DELETE", "/sim/faults", "", nil)
	if out, err := s.cli(t, "dlq", "replay", seq, "--reason", "e2e: Epic interface back"); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	waitFor(t, "the replayed job change in Epic", 60*time.Second, func() (bool, string) {
		var in simInbound
		epic.do(t, "GET", "/sim/inbound", "", &in)
		ps := providers()
		return len(ps) == 1 && ps[0].Job == "CHIEF", fmt.Sprintf("%+v %+v", ps, in)
	})
	if ps := providers(); len(ps) != 1 {
		t.Fatalf("provider doubled: %+v", ps)
	}
}

// fusionWorker reads one worker's current assignment from fusionsim.
func fusionWorker(t *testing.T, f *fusionProc, personNumber string) (dept, specialty, ser string) {
	t.Helper()
	var out struct {
		Items []struct {
			WorkRelationships []struct {
				Assignments []struct {
					DepartmentName string `json:"DepartmentName"`
					DFF            []struct {
						Specialty      string `json:"specialty"`
						EpicProviderID string `json:"epicProviderId"`
					} `json:"assignmentsDFF"`
				} `json:"assignments"`
			} `json:"workRelationships"`
		} `json:"items"`
	}
	if err := json.Unmarshal(hcm(t, f, "GET", "/workers?q=PersonNumber='"+personNumber+"'", "", nil), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 1 {
		t.Fatalf("worker %s: %d found", personNumber, len(out.Items))
	}
	a := out.Items[0].WorkRelationships[0].Assignments[0]
	return a.DepartmentName, a.DFF[0].Specialty, a.DFF[0].EpicProviderID
}

// TestWorkerSyncTwoWay: Epic sends its provider updates (its own changes
// and the echo of Sinew's) over MLLP to ingest. The echo of a hire links
// the provider (Epic's SER recorded on the Fusion worker) and changes
// nothing else; a specialty change in Epic updates Fusion (date-effective)
// and is not sent back to Epic; changes on both sides at once end, on
// both sides, with Fusion's department and Epic's specialty.
func TestWorkerSyncTwoWay(t *testing.T) {
	fusion := startFusion(t, "-step", "50ms")
	dir := t.TempDir()
	a := newAddrs(t)
	inbound, simAddr := freeAddr(t), freeAddr(t)
	env := []string{
		"SINEW_EPICSIM_INBOUND_ADDR=" + inbound, "SINEW_EPICSIM_INBOUND_SIM_ADDR=" + simAddr, "SINEW_EPICSIM_INBOUND_ECHO=true",
		"SINEW_LOADER_EPIC_ADDR=" + inbound, "SINEW_LOADER_EPIC_ACK_TIMEOUT=5s", "SINEW_TRANSFORM_POLL_INTERVAL=300ms",
	}
	s, _ := upWith(t, dir, a, []string{"--fusion-url", fusion.url}, env)
	epic := epicSim{url: "http://" + simAddr}
	if out, err := s.flows(t, "activate", "worker-sync", "--reason", "e2e: worker-sync cutover", "--wait=false"); err != nil {
		t.Fatalf("activate: %v\n%s", err, out)
	}
	var w struct {
		PersonID          int64 `json:"PersonId"`
		WorkRelationships []struct {
			PeriodOfServiceID int64 `json:"PeriodOfServiceId"`
			Assignments       []struct {
				AssignmentID int64 `json:"AssignmentId"`
			} `json:"assignments"`
		} `json:"workRelationships"`
	}
	b := hcm(t, fusion, "POST", "/workers", `{"PersonNumber":"P7101","names":[{"LastName":"OKAFOR","FirstName":"EZE","LegislationCode":"US"}],
	 "workRelationships":[{"LegalEmployerName":"St Marys","WorkerType":"E","StartDate":"2026-01-05",
	  "assignments":[{"DepartmentName":"CARDIOLOGY","JobCode":"PHYS","assignmentsDFF":[{"npi":"1245319599","specialty":"Cardiology","providerType":"MD"}]}]}]}`, nil)
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	providers := func() []simProvider {
		var ps []simProvider
		epic.do(t, "GET", "/sim/providers", "", &ps)
		return ps
	}
	var ser string
	waitFor(t, "the provider linked in Fusion", 60*time.Second, func() (bool, string) {
		ps := providers()
		_, _, linked := fusionWorker(t, fusion, "P7101")
		if len(ps) == 1 && linked == ps[0].SER {
			ser = linked
			return true, ""
		}
		return false, fmt.Sprintf("epic %+v, fusion link %q", ps, linked)
	})
	inbound0 := func() int {
		var in simInbound
		epic.do(t, "GET", "/sim/inbound", "", &in)
		return in.Received
	}
	// Settled: nothing more goes to Epic.
	settled := func(what string) int {
		n := inbound0()
		for range 20 {
			time.Sleep(time.Second)
			m := inbound0()
			if m == n {
				return n
			}
			n = m
		}
		t.Fatalf("%s: Epic keeps receiving (%d messages): ping-pong", what, n)
		return 0
	}
	n0 := settled("after the hire")

	// Epic's specialty change reaches Fusion and is not echoed back.
	epic.do(t, "POST", "/sim/providers/"+ser, `{"specialty":"Oncology"}`, nil)
	waitFor(t, "Epic's specialty in Fusion", 60*time.Second, func() (bool, string) {
		_, sp, _ := fusionWorker(t, fusion, "P7101")
		return sp == "Oncology", sp
	})
	if n := settled("after Epic's specialty change"); n != n0 {
		t.Fatalf("Epic's own change was sent back to Epic: %d messages, %d before", n, n0)
	}

	// Both sides at once: Fusion changes the department and (not its to
	// change) the specialty; Epic changes the specialty and (not its to
	// change) the department.
	asg := "/workers/" + strconv.FormatInt(w.PersonID, 10) + "/child/workRelationships/" + strconv.FormatInt(w.WorkRelationships[0].PeriodOfServiceID, 10) +
		"/child/assignments/" + strconv.FormatInt(w.WorkRelationships[0].Assignments[0].AssignmentID, 10)
	hcm(t, fusion, "PATCH", asg, `{"DepartmentName":"SURGERY"}`, nil)
	hcm(t, fusion, "PATCH", asg+"/child/assignmentsDFF/"+strconv.FormatInt(w.WorkRelationships[0].Assignments[0].AssignmentID, 10), `{"specialty":"Neurology"}`, nil)
	epic.do(t, "POST", "/sim/providers/"+ser, `{"specialty":"Pediatrics","department":"EMERGENCY"}`, nil)
	waitFor(t, "both sides resolved by the rules", 60*time.Second, func() (bool, string) {
		ps := providers()
		dept, sp, _ := fusionWorker(t, fusion, "P7101")
		ok := len(ps) == 1 && ps[0].Department == "SURGERY" && ps[0].Specialty == "Pediatrics" && dept == "SURGERY" && sp == "Pediatrics"
		return ok, fmt.Sprintf("epic %+v; fusion department %s specialty %s", ps, dept, sp)
	})
	settled("after the simultaneous changes")
	if ps := providers(); len(ps) != 1 || ps[0].Department != "SURGERY" || ps[0].Specialty != "Pediatrics" {
		t.Fatalf("not stable: %+v", ps)
	}
}

// fusionFaultHits reads how many failures fusionsim's HTTP faults injected.
func fusionFaultHits(t *testing.T, f *fusionProc) int {
	t.Helper()
	resp, err := http.Get(f.url + "/sim/faults")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var fs struct {
		HTTP []struct{ Hits int } `json:"http"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&fs); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, h := range fs.HTTP {
		n += h.Hits
	}
	return n
}

// providerLoads counts worker-sync's provider changes Epic acknowledged,
// from the loader's audit records.
func providerLoads(t *testing.T, s *system) int {
	t.Helper()
	out, err := s.cli(t, "audit", "list")
	if err != nil {
		t.Fatalf("audit list: %v\n%s", err, out)
	}
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, `"subject":"epic.cmd.worker-sync.provider"`) && strings.Contains(line, `"outcome":"ok"`) && strings.Contains(line, `"hop":"load"`) {
			n++
		}
	}
	return n
}

// TestWorkerSyncPollingFallbackAndRehire: with HCM's Atom feeds turned off
// (404 on /hcmCoreApi/atomservlet), worker-sync's `fusion_read: auto` polls
// Fusion's workers and a hire appears once in Epic's provider master. With
// the feeds back, a termination deactivates that provider and a rehire
// (fusionsim workRelationships, ActionCode REHIRE) reactivates the same
// one: same SER, no second provider.
func TestWorkerSyncPollingFallbackAndRehire(t *testing.T) {
	fusion := startFusion(t, "-step", "50ms")
	fusion.faults(t, `{"http":[{"status":404,"path":"/hcmCoreApi/atomservlet"}]}`)
	dir := t.TempDir()
	a := newAddrs(t)
	inbound, simAddr := freeAddr(t), freeAddr(t)
	env := []string{
		"SINEW_EPICSIM_INBOUND_ADDR=" + inbound, "SINEW_EPICSIM_INBOUND_SIM_ADDR=" + simAddr, "SINEW_EPICSIM_INBOUND_ECHO=false",
		"SINEW_LOADER_EPIC_ADDR=" + inbound, "SINEW_LOADER_EPIC_ACK_TIMEOUT=5s", "SINEW_TRANSFORM_POLL_INTERVAL=300ms",
	}
	s, _ := upWith(t, dir, a, []string{"--fusion-url", fusion.url}, env)
	epic := epicSim{url: "http://" + simAddr}
	if out, err := s.flows(t, "activate", "worker-sync", "--reason", "e2e: worker-sync cutover", "--wait=false"); err != nil {
		t.Fatalf("activate: %v\n%s", err, out)
	}
	var w struct {
		PersonID          int64 `json:"PersonId"`
		WorkRelationships []struct {
			PeriodOfServiceID int64 `json:"PeriodOfServiceId"`
		} `json:"workRelationships"`
	}
	b := hcm(t, fusion, "POST", "/workers", `{"PersonNumber":"P7201","names":[{"LastName":"NAKAMURA","FirstName":"KEI","LegislationCode":"US"}],
	 "workRelationships":[{"LegalEmployerName":"St Marys","WorkerType":"E","StartDate":"2026-01-05",
	  "assignments":[{"DepartmentName":"CARDIOLOGY","JobCode":"PHYS","assignmentsDFF":[{"npi":"1234567893","specialty":"Cardiology","providerType":"MD"}]}]}]}`, nil)
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	providers := func() []simProvider {
		var ps []simProvider
		epic.do(t, "GET", "/sim/providers", "", &ps)
		return ps
	}
	waitFor(t, "the hire in Epic's provider master, by polling", 60*time.Second, func() (bool, string) {
		ps := providers()
		return len(ps) == 1 && ps[0].PersonNumber == "P7201" && ps[0].Active, fmt.Sprintf("%+v", ps)
	})
	if fusionFaultHits(t, fusion) == 0 {
		t.Fatal("the feeds were never tried: the hire did not come by the fallback")
	}
	// A few more rounds: polling does not send the hire again. (epicsim's
	// inbound counts take supplier-sync's messages too: count the flow's
	// deliveries in the audit trail.)
	time.Sleep(2 * time.Second)
	if ps, n := providers(), providerLoads(t, s); len(ps) != 1 || n != 1 {
		t.Fatalf("after polling rounds: providers %+v, %d provider changes loaded", ps, n)
	}
	ser := providers()[0].SER
	if ser == "" {
		t.Fatal("no SER on the provider")
	}

	// Feeds back: the termination and the rehire come through them.
	hcmDelete := func() {
		req, _ := http.NewRequest("DELETE", fusion.url+"/sim/faults", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	hcmDelete()
	today := time.Now().UTC()
	rels := "/workers/" + strconv.FormatInt(w.PersonID, 10) + "/child/workRelationships"
	hcm(t, fusion, "POST", rels+"/"+strconv.FormatInt(w.WorkRelationships[0].PeriodOfServiceID, 10)+"/action/terminate",
		`{"terminationDate":"`+today.AddDate(0, 0, -1).Format(time.DateOnly)+`"}`, nil)
	waitFor(t, "the termination in Epic", 60*time.Second, func() (bool, string) {
		ps := providers()
		return len(ps) == 1 && !ps[0].Active, fmt.Sprintf("%+v", ps)
	})
	hcm(t, fusion, "POST", rels, `{"StartDate":"`+today.Format(time.DateOnly)+`","ActionCode":"REHIRE"}`, nil)
	waitFor(t, "the rehire reactivating the same provider", 60*time.Second, func() (bool, string) {
		ps := providers()
		return len(ps) == 1 && ps[0].Active && ps[0].SER == ser && ps[0].PersonNumber == "P7201", fmt.Sprintf("%+v", ps)
	})
	time.Sleep(2 * time.Second)
	if ps, n := providers(), providerLoads(t, s); len(ps) != 1 || !ps[0].Active || ps[0].SER != ser || n != 3 {
		t.Fatalf("after the rehire: %+v, %d provider changes loaded (want hire, termination, rehire)", ps, n)
	}
}
