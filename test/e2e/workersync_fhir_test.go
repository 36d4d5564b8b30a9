package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"
)

// fusionSpecialtyOn is a worker's assignment specialty in effect on day
// (fusionsim's effectiveDate) and the Epic provider id Fusion holds.
func fusionSpecialtyOn(t *testing.T, f *fusionProc, personNumber string, day time.Time) (specialty, ser string) {
	t.Helper()
	var out struct {
		Items []struct {
			WorkRelationships []struct {
				Assignments []struct {
					DFF []struct {
						Specialty      string `json:"specialty"`
						EpicProviderID string `json:"epicProviderId"`
					} `json:"assignmentsDFF"`
				} `json:"assignments"`
			} `json:"workRelationships"`
		} `json:"items"`
	}
	q := "/workers?q=" + url.QueryEscape("PersonNumber='"+personNumber+"'") + "&effectiveDate=" + day.Format(time.DateOnly)
	if err := json.Unmarshal(hcm(t, f, "GET", q, "", nil), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 1 {
		t.Fatalf("worker %s: %d found", personNumber, len(out.Items))
	}
	dff := out.Items[0].WorkRelationships[0].Assignments[0].DFF[0]
	return dff.Specialty, dff.EpicProviderID
}

// TestWorkerSyncFHIRSpecialtyReachesFusionWithoutEcho: worker-sync's FHIR
// leg. A Fusion worker holds the NPI of one of epicsim's Practitioners;
// ingest's FHIR export rounds (every 2 s, SINEW_INGEST_FHIR_INTERVAL)
// bring the Practitioner and its PractitionerRole, matched by NPI: Fusion
// records Epic's provider id and the role's specialty. The role's
// specialty is then changed in Epic (a new version): Fusion's worker
// takes it from today (date-effective: yesterday still reads the hire's
// specialty), and nothing goes back to Epic.
func TestWorkerSyncFHIRSpecialtyReachesFusionWithoutEcho(t *testing.T) {
	fusion := startFusion(t, "-step", "50ms")
	dir := t.TempDir()
	a := newAddrs(t)
	inbound, simAddr := freeAddr(t), freeAddr(t)
	env := []string{
		"SINEW_EPICSIM_INBOUND_ADDR=" + inbound, "SINEW_EPICSIM_INBOUND_SIM_ADDR=" + simAddr, "SINEW_EPICSIM_INBOUND_ECHO=false",
		"SINEW_LOADER_EPIC_ADDR=" + inbound, "SINEW_LOADER_EPIC_ACK_TIMEOUT=5s", "SINEW_TRANSFORM_POLL_INTERVAL=300ms",
		"SINEW_EPICSIM_FHIR_ENABLED=true", "SINEW_INGEST_FHIR_INTERVAL=2s",
	}
	s, _ := upWith(t, dir, a, []string{"--fusion-url", fusion.url}, env)
	epic := epicSim{url: "http://" + simAddr}
	if out, err := s.flows(t, "activate", "worker-sync", "--reason", "e2e: worker-sync cutover", "--wait=false"); err != nil {
		t.Fatalf("activate: %v\n%s", err, out)
	}
	var ps []struct{ ID, NPI, Role, Specialty string }
	epic.do(t, "GET", "/sim/fhir/practitioners", "", &ps)
	if len(ps) == 0 || ps[0].NPI == "" || ps[0].Role == "" || ps[0].Specialty == "" {
		t.Fatalf("practitioners: %+v", ps)
	}
	p := ps[0]
	if p.Specialty == "Oncology" {
		t.Fatal("the seeded specialty is the one the test changes to")
	}
	hcm(t, fusion, "POST", "/workers", `{"PersonNumber":"P7301","names":[{"LastName":"ADEYEMI","FirstName":"TOLU","LegislationCode":"US"}],
	 "workRelationships":[{"LegalEmployerName":"St Marys","WorkerType":"E","StartDate":"2026-01-05",
	  "assignments":[{"DepartmentName":"SURGERY","JobCode":"PHYS","assignmentsDFF":[{"npi":"`+p.NPI+`","specialty":"Cardiology","providerType":"MD"}]}]}]}`, nil)

	today := time.Now().UTC()
	var ser string
	waitFor(t, "the Practitioner matched by NPI and its role's specialty in Fusion", 90*time.Second, func() (bool, string) {
		sp, linked := fusionSpecialtyOn(t, fusion, "P7301", today)
		ser = linked
		return sp == p.Specialty && linked != "", fmt.Sprintf("specialty %q, epic id %q", sp, linked)
	})
	received := func() int {
		var in simInbound
		epic.do(t, "GET", "/sim/inbound", "", &in)
		return in.Received
	}
	settled := func(what string) int {
		n := received()
		for range 20 {
			time.Sleep(time.Second)
			m := received()
			if m == n {
				return n
			}
			n = m
		}
		t.Fatalf("%s: Epic keeps receiving (%d messages): ping-pong", what, n)
		return 0
	}
	n0 := settled("after the match")

	epic.do(t, "POST", "/sim/fhir/PractitionerRole/"+p.Role+"/specialty", `{"code":"207RX0202X","text":"Oncology"}`, nil)
	waitFor(t, "Epic's new specialty in Fusion", 60*time.Second, func() (bool, string) {
		sp, _ := fusionSpecialtyOn(t, fusion, "P7301", today)
		return sp == "Oncology", sp
	})
	// Epic's values were written from today on, not as corrections of
	// history: yesterday still reads the hire's.
	if sp, _ := fusionSpecialtyOn(t, fusion, "P7301", today.AddDate(0, 0, -1)); sp != "Cardiology" {
		t.Errorf("yesterday reads specialty %q, want the hire's Cardiology: the change was not date-effective", sp)
	}
	if _, linked := fusionSpecialtyOn(t, fusion, "P7301", today); linked != ser {
		t.Errorf("Epic id moved: %q, was %q", linked, ser)
	}
	// A few more rounds read the same version: still nothing to Epic.
	time.Sleep(5 * time.Second)
	if n := settled("after Epic's specialty change"); n != n0 {
		t.Fatalf("Epic's own change was sent back to Epic: %d messages, %d before", n, n0)
	}
	if sp, _ := fusionSpecialtyOn(t, fusion, "P7301", today); sp != "Oncology" {
		t.Fatalf("specialty moved again: %q", sp)
	}
}
