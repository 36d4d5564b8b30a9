package fusionsim_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/services/fusionsim"
)

func (e *env) hcm(t *testing.T, method, path, body string, hdr map[string]string) (int, []byte) {
	t.Helper()
	root := fusionsim.HCMPath
	if strings.HasPrefix(path, "/employee/") {
		root = fusionsim.AtomPath
	}
	req, err := http.NewRequest(method, e.hs.URL+root+path, strings.NewReader(body))
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
	return resp.StatusCode, b
}

const hireBody = `{"PersonNumber":"P1001","names":[{"LastName":"DOE","FirstName":"JANE","LegislationCode":"US"}],
 "workRelationships":[{"LegalEmployerName":"St Marys","WorkerType":"E","StartDate":"2026-03-01",
  "assignments":[{"DepartmentName":"CARDIOLOGY","JobCode":"PHYS","assignmentsDFF":[{"npi":"1234567893","specialty":"Cardiology","providerType":"MD"}]}]}]}`

type workerOut struct {
	PersonID          int64  `json:"PersonId"`
	PersonNumber      string `json:"PersonNumber"`
	WorkRelationships []struct {
		PeriodOfServiceID int64 `json:"PeriodOfServiceId"`
		Assignments       []struct {
			AssignmentID   int64  `json:"AssignmentId"`
			Status         string `json:"AssignmentStatusType"`
			DepartmentName string `json:"DepartmentName"`
			DFF            []struct {
				Specialty string `json:"specialty"`
			} `json:"assignmentsDFF"`
		} `json:"assignments"`
	} `json:"workRelationships"`
}

func TestWorkersHireUpdateTerminate(t *testing.T) {
	e := newEnv(t, nil)
	code, b := e.hcm(t, "POST", "/workers", hireBody, nil)
	if code != http.StatusCreated {
		t.Fatalf("hire: %d %s", code, b)
	}
	var w workerOut
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	if code, b := e.hcm(t, "POST", "/workers", hireBody, nil); code != http.StatusBadRequest || !strings.Contains(string(b), "already exists") {
		t.Fatalf("duplicate hire: %d %s", code, b)
	}
	bad := strings.Replace(hireBody, "1234567893", "1234567890", 1)
	bad = strings.Replace(bad, "P1001", "P1002", 1)
	if code, b := e.hcm(t, "POST", "/workers", bad, nil); code != http.StatusBadRequest || !strings.Contains(string(b), "npi") {
		t.Fatalf("bad npi: %d %s", code, b)
	}
	rid := strconv.FormatInt(w.WorkRelationships[0].PeriodOfServiceID, 10)
	aid := strconv.FormatInt(w.WorkRelationships[0].Assignments[0].AssignmentID, 10)
	pid := strconv.FormatInt(w.PersonID, 10)
	asg := "/workers/" + pid + "/child/workRelationships/" + rid + "/child/assignments/" + aid
	// Date-effective: a new department from 2026-04-01; March still reads the old one.
	if code, b := e.hcm(t, "PATCH", asg, `{"DepartmentName":"ONCOLOGY"}`, map[string]string{"Effective-Of": "RangeMode=UPDATE;RangeStartDate=2026-04-01"}); code != http.StatusOK {
		t.Fatalf("update: %d %s", code, b)
	}
	if code, b := e.hcm(t, "PATCH", asg+"/child/assignmentsDFF/"+aid, `{"specialty":"Oncology"}`, map[string]string{"Effective-Of": "RangeMode=UPDATE;RangeStartDate=2026-04-01"}); code != http.StatusOK {
		t.Fatalf("dff: %d %s", code, b)
	}
	if code, b := e.hcm(t, "PATCH", asg, `{"DepartmentName":"X"}`, map[string]string{"Effective-Of": "RangeMode=REPLACE"}); code != http.StatusBadRequest {
		t.Fatalf("bad range mode: %d %s", code, b)
	}
	if code, b := e.hcm(t, "PATCH", asg, `{"npi":"1234567893"}`, nil); code != http.StatusBadRequest {
		t.Fatalf("dff attribute on the assignment: %d %s", code, b)
	}
	read := func(day string) workerOut {
		_, b := e.hcm(t, "GET", "/workers/"+pid+"?effectiveDate="+day, "", nil)
		var o workerOut
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	if a := read("2026-03-15").WorkRelationships[0].Assignments[0]; a.DepartmentName != "CARDIOLOGY" || a.DFF[0].Specialty != "Cardiology" {
		t.Fatalf("March: %+v", a)
	}
	if a := read("2026-04-15").WorkRelationships[0].Assignments[0]; a.DepartmentName != "ONCOLOGY" || a.DFF[0].Specialty != "Oncology" {
		t.Fatalf("April: %+v", a)
	}
	term := "/workers/" + pid + "/child/workRelationships/" + rid + "/action/terminate"
	if code, b := e.hcm(t, "POST", term, `{"terminationDate":"2026-05-31","actionCode":"RESIGNATION"}`, nil); code != http.StatusOK {
		t.Fatalf("terminate: %d %s", code, b)
	}
	if code, _ := e.hcm(t, "POST", term, `{"terminationDate":"2026-05-31"}`, nil); code != http.StatusBadRequest {
		t.Fatal("terminated twice")
	}
	if a := read("2026-06-01").WorkRelationships[0].Assignments[0]; a.Status != "INACTIVE" {
		t.Fatalf("after termination: %+v", a)
	}
	// Incremental read by LastUpdateDate.
	_, b = e.hcm(t, "GET", "/workers?q=LastUpdateDate>'"+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)+"'", "", nil)
	if !strings.Contains(string(b), `"count":1`) {
		t.Fatalf("incremental: %s", b)
	}
	// The Atom feeds.
	type feed struct {
		Links []struct {
			Href string `xml:"href,attr"`
			Rel  string `xml:"rel,attr"`
		} `xml:"link"`
		Entries []struct {
			Content string `xml:"content"`
		} `xml:"entry"`
	}
	get := func(path string) feed {
		code, b := e.hcm(t, "GET", path, "", nil)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, code, b)
		}
		var f feed
		if err := xml.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if f := get("/employee/newhire"); len(f.Entries) != 1 || !strings.Contains(f.Entries[0].Content, `"PersonNumber":"P1001"`) {
		t.Fatalf("newhire: %+v", f)
	}
	if f := get("/employee/termination"); len(f.Entries) != 1 {
		t.Fatalf("termination: %+v", f)
	}
	f := get("/employee/empupdate?page-size=1")
	if len(f.Entries) != 1 || !hasRel(f.Links, "next") {
		t.Fatalf("empupdate page 1: %+v", f)
	}
	if f := get("/employee/empupdate?page-size=1&page=2"); len(f.Entries) != 1 || hasRel(f.Links, "next") {
		t.Fatalf("empupdate page 2: %+v", f)
	}
}

func hasRel(ls []struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr"`
}, rel string) bool {
	for _, l := range ls {
		if l.Rel == rel {
			return true
		}
	}
	return false
}

func TestRunDayMakesValidChanges(t *testing.T) {
	e := newEnv(t, nil)
	before := len(e.sim.Suppliers())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.sim.RunDay(ctx, 5*time.Millisecond) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(e.sim.Workers()) < 2 || len(e.sim.Suppliers()) < before+2 || len(e.sim.Payments()) < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers, %d suppliers", len(e.sim.Workers()), len(e.sim.Suppliers()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	// Refunds paid: issued, then cleared or (every third) voided, and the
	// day's one payment of no refund.
	statuses := map[string]int{}
	unmatched := 0
	for _, p := range e.sim.Payments() {
		if !strings.HasPrefix(p.Invoices[0], "RF") {
			unmatched++
			continue
		}
		statuses[p.Status]++
	}
	if unmatched != 1 || statuses[fusionsim.PaymentCleared] == 0 || statuses[fusionsim.PaymentVoided] == 0 {
		t.Fatalf("payments by status %v, %d unmatched", statuses, unmatched)
	}
	for _, w := range e.sim.Workers() {
		if len(w.Versions) == 0 || w.Versions[0].NPI == "" {
			t.Fatalf("worker %+v", w)
		}
	}
}
