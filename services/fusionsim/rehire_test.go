package fusionsim_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestWorkerRehireStartsANewPeriodOfService: a terminated worker is
// rehired with a new period of service; the person and assignment numbers
// stay, the assignment is active from the rehire date, the newhire feed
// carries the rehire (ActionCode REHIRE), and an active worker cannot be
// rehired.
func TestWorkerRehireStartsANewPeriodOfService(t *testing.T) {
	e := newEnv(t, nil)
	_, b := e.hcm(t, "POST", "/workers", hireBody, nil)
	var w workerOut
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	pid := strconv.FormatInt(w.PersonID, 10)
	rid := strconv.FormatInt(w.WorkRelationships[0].PeriodOfServiceID, 10)
	rels := "/workers/" + pid + "/child/workRelationships"
	if code, b := e.hcm(t, "POST", rels, `{"StartDate":"2026-09-01"}`, nil); code != http.StatusBadRequest || !strings.Contains(string(b), "active work relationship") {
		t.Fatalf("rehire of an active worker: %d %s", code, b)
	}
	if code, b := e.hcm(t, "POST", rels+"/"+rid+"/action/terminate", `{"terminationDate":"2026-05-31"}`, nil); code != http.StatusOK {
		t.Fatalf("terminate: %d %s", code, b)
	}
	if code, b := e.hcm(t, "POST", rels, `{"StartDate":"2026-05-15"}`, nil); code != http.StatusBadRequest {
		t.Fatalf("rehire before the termination: %d %s", code, b)
	}
	code, b := e.hcm(t, "POST", rels, `{"StartDate":"2026-09-01","ActionCode":"REHIRE"}`, nil)
	if code != http.StatusCreated {
		t.Fatalf("rehire: %d %s", code, b)
	}
	var re workerOut
	if err := json.Unmarshal(b, &re); err != nil {
		t.Fatal(err)
	}
	if re.PersonNumber != "P1001" || re.WorkRelationships[0].PeriodOfServiceID == w.WorkRelationships[0].PeriodOfServiceID ||
		re.WorkRelationships[0].Assignments[0].AssignmentID != w.WorkRelationships[0].Assignments[0].AssignmentID {
		t.Fatalf("rehired: %+v (hired %+v)", re, w)
	}
	read := func(day string) string {
		_, b := e.hcm(t, "GET", "/workers/"+pid+"?effectiveDate="+day, "", nil)
		var o workerOut
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatal(err)
		}
		return o.WorkRelationships[0].Assignments[0].Status
	}
	if s := read("2026-07-01"); s != "INACTIVE" {
		t.Fatalf("between the periods: %s", s)
	}
	if s := read("2026-09-02"); s != "ACTIVE" {
		t.Fatalf("after the rehire: %s", s)
	}
	_, feed := e.hcm(t, "GET", "/employee/newhire", "", nil)
	if n := strings.Count(string(feed), "<entry>"); n != 2 || !strings.Contains(string(feed), "REHIRE") {
		t.Fatalf("newhire feed (%d entries): %s", n, feed)
	}
}
