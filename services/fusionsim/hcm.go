package fusionsim

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HCM: the workers resource and the HCM Atom feeds worker-sync reads.
//
//   GET  HCMPath/workers                         q (PersonNumber=, LastUpdateDate>), effectiveDate, limit/offset
//   GET  HCMPath/workers/{id}
//   POST HCMPath/workers                         hire (names, workRelationships with one assignment)
//   POST HCMPath/workers/{id}/child/workRelationships/{rid}/action/terminate
//   POST HCMPath/workers/{id}/child/workRelationships  rehire (a new period of service, ActionCode REHIRE)
//   PATCH HCMPath/workers/{id}/child/workRelationships/{rid}/child/assignments/{aid}
//   PATCH …/assignments/{aid}/child/assignmentsDFF/{aid}   provider attributes (site DFF)
//   GET  AtomPath/employee/{newhire|empupdate|termination}  page-size, page, updated-min
//
// Assignments and their DFF are date-effective: a PATCH with the header
// Effective-Of: RangeMode=UPDATE;RangeStartDate=YYYY-MM-DD starts a new
// version on that date (Fusion refuses a start before the current
// version's); without it (or RangeMode=CORRECTION) the version in effect
// that day is corrected. GET reads the version in effect on effectiveDate
// (today by default).

// HCM REST and Atom roots.
const (
	HCMPath  = "/hcmRestApi/resources/11.13.18.05"
	AtomPath = "/hcmCoreApi/atomservlet"
)

// HCM error codes the simulator answers.
const (
	CodeWorkerInvalid    = "PER_INVALID_ATTRIBUTE"
	CodeWorkerTerminated = "PER_WORKER_ALREADY_TERMINATED"
	CodeEffectiveDate    = "PER_INVALID_EFFECTIVE_DATE"
)

// AssignmentVersion is one date-effective version of an assignment: HR
// attributes and the site's provider DFF (NPI, specialty, credentials,
// provider type).
type AssignmentVersion struct {
	Start               string `json:"EffectiveStartDate"`
	End                 string `json:"EffectiveEndDate"`
	AssignmentStatus    string `json:"AssignmentStatusType"` // ACTIVE, INACTIVE
	DepartmentName      string `json:"DepartmentName"`
	JobCode             string `json:"JobCode"`
	ManagerPersonNumber string `json:"ManagerPersonNumber,omitempty"`
	NPI                 string `json:"npi,omitempty"`
	Specialty           string `json:"specialty,omitempty"`
	ClinicalCredentials string `json:"clinicalCredentials,omitempty"`
	ProviderType        string `json:"providerType,omitempty"`
	EpicProviderID      string `json:"epicProviderId,omitempty"`
}

// Worker is one simulated worker (one work relationship, one assignment).
type Worker struct {
	PersonID         int64               `json:"PersonId"`
	PersonNumber     string              `json:"PersonNumber"`
	LastName         string              `json:"LastName"`
	FirstName        string              `json:"FirstName"`
	RelationshipID   int64               `json:"PeriodOfServiceId"`
	StartDate        string              `json:"StartDate"`
	TerminationDate  string              `json:"TerminationDate,omitempty"`
	AssignmentID     int64               `json:"AssignmentId"`
	AssignmentNumber string              `json:"AssignmentNumber"`
	Versions         []AssignmentVersion `json:"versions"`
	LastUpdateDate   time.Time           `json:"LastUpdateDate"`
}

type feedEntry struct {
	feed    string // newhire, empupdate, termination
	updated time.Time
	person  string
	ctx     map[string]any
	changed []string
}

type hcmState struct {
	workers []*Worker
	nextID  int64
	entries []feedEntry
}

const dateLayout = "2006-01-02"

func (s *Server) hcmState() *hcmState {
	if s.hcm == nil {
		s.hcm = &hcmState{nextID: 300000001000001}
	}
	return s.hcm
}

// at returns the version of w in effect on day (YYYY-MM-DD), or nil.
func (w *Worker) at(day string) *AssignmentVersion {
	for i := range w.Versions {
		v := &w.Versions[i]
		if v.Start <= day && day <= v.End {
			return v
		}
	}
	return nil
}

func (s *Server) hcmRoutes(api *http.ServeMux) {
	api.HandleFunc("GET "+HCMPath+"/workers", s.workersGet)
	api.HandleFunc("GET "+HCMPath+"/workers/{id}", s.workerGetOne)
	api.HandleFunc("POST "+HCMPath+"/workers", s.workerPost)
	api.HandleFunc("POST "+HCMPath+"/workers/{id}/child/workRelationships/{rid}/action/terminate", s.workerTerminate)
	api.HandleFunc("POST "+HCMPath+"/workers/{id}/child/workRelationships", s.workerRehire)
	api.HandleFunc("PATCH "+HCMPath+"/workers/{id}/child/workRelationships/{rid}/child/assignments/{aid}", s.assignmentPatch)
	api.HandleFunc("PATCH "+HCMPath+"/workers/{id}/child/workRelationships/{rid}/child/assignments/{aid}/child/assignmentsDFF/{did}", s.assignmentPatch)
	api.HandleFunc("GET "+AtomPath+"/employee/{feed}", s.atomGet)
}

func (s *Server) workerJSON(r *http.Request, w *Worker, day string) map[string]any {
	self := baseURL(r) + HCMPath + "/workers/" + strconv.FormatInt(w.PersonID, 10)
	asg := map[string]any{"AssignmentId": w.AssignmentID, "AssignmentNumber": w.AssignmentNumber}
	if v := w.at(day); v != nil {
		asg["EffectiveStartDate"], asg["EffectiveEndDate"] = v.Start, v.End
		asg["AssignmentStatusType"], asg["DepartmentName"], asg["JobCode"], asg["ManagerPersonNumber"] = v.AssignmentStatus, v.DepartmentName, v.JobCode, v.ManagerPersonNumber
		asg["assignmentsDFF"] = []any{map[string]any{"AssignmentId": w.AssignmentID, "npi": v.NPI, "specialty": v.Specialty,
			"clinicalCredentials": v.ClinicalCredentials, "providerType": v.ProviderType, "epicProviderId": v.EpicProviderID}}
	}
	rel := map[string]any{"PeriodOfServiceId": w.RelationshipID, "StartDate": w.StartDate, "WorkerType": "E", "assignments": []any{asg}}
	if w.TerminationDate != "" {
		rel["TerminationDate"] = w.TerminationDate
	}
	return map[string]any{
		"PersonId": w.PersonID, "PersonNumber": w.PersonNumber, "LastUpdateDate": w.LastUpdateDate.UTC().Format(time.RFC3339Nano),
		"names":             []any{map[string]any{"LastName": w.LastName, "FirstName": w.FirstName, "LegislationCode": "US"}},
		"workRelationships": []any{rel},
		"links":             []any{link("self", self, "workers", "item")},
	}
}

func effectiveDay(q map[string]string) (string, error) {
	if v := q["effectiveDate"]; v != "" {
		if _, err := time.Parse(dateLayout, v); err != nil {
			return "", fmt.Errorf("the effectiveDate %q isn't a date (YYYY-MM-DD)", v)
		}
		return v, nil
	}
	return time.Now().UTC().Format(dateLayout), nil
}

var workerAttrs = map[string]func(*Worker) string{
	"PersonId":       func(w *Worker) string { return strconv.FormatInt(w.PersonID, 10) },
	"PersonNumber":   func(w *Worker) string { return w.PersonNumber },
	"LastUpdateDate": func(w *Worker) string { return w.LastUpdateDate.UTC().Format(time.RFC3339Nano) },
}

func (s *Server) workersGet(w http.ResponseWriter, r *http.Request) {
	q := queryParams(r)
	limit, offset, err := paging(q)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	day, err := effectiveDay(q)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	terms, ok := filterTerms(w, q["q"], "workers", func(a string) bool { return workerAttrs[a] != nil })
	if !ok {
		return
	}
	var items []any
	s.mu.Lock()
	for _, wk := range s.hcmState().workers {
		match := true
		for _, t := range terms {
			kind := kString
			if t.attr == "LastUpdateDate" {
				kind = kTime
			}
			match = match && t.match(kind, workerAttrs[t.attr](wk))
		}
		if match {
			items = append(items, s.workerJSON(r, wk, day))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, collection(r, q, items, limit, offset))
}

// worker finds a worker by PersonId (path). Called with s.mu held.
func (s *Server) worker(id string) *Worker {
	n, _ := strconv.ParseInt(id, 10, 64)
	for _, wk := range s.hcmState().workers {
		if wk.PersonID == n {
			return wk
		}
	}
	return nil
}

func (s *Server) workerGetOne(w http.ResponseWriter, r *http.Request) {
	day, err := effectiveDay(queryParams(r))
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	wk := s.worker(r.PathValue("id"))
	if wk == nil {
		writeError(w, http.StatusNotFound, "The worker "+r.PathValue("id")+" doesn't exist.", "")
		return
	}
	writeJSON(w, http.StatusOK, s.workerJSON(r, wk, day))
}

type hireIn struct {
	PersonNumber string `json:"PersonNumber"`
	Names        []struct {
		LastName        string `json:"LastName"`
		FirstName       string `json:"FirstName"`
		LegislationCode string `json:"LegislationCode"`
	} `json:"names"`
	WorkRelationships []struct {
		LegalEmployerName string `json:"LegalEmployerName"`
		WorkerType        string `json:"WorkerType"`
		StartDate         string `json:"StartDate"`
		Assignments       []struct {
			DepartmentName      string `json:"DepartmentName"`
			JobCode             string `json:"JobCode"`
			ManagerPersonNumber string `json:"ManagerPersonNumber"`
			AssignmentsDFF      []struct {
				NPI                 string `json:"npi"`
				Specialty           string `json:"specialty"`
				ClinicalCredentials string `json:"clinicalCredentials"`
				ProviderType        string `json:"providerType"`
			} `json:"assignmentsDFF"`
		} `json:"assignments"`
	} `json:"workRelationships"`
}

// Hire creates a worker as POST workers does and returns it.
func (s *Server) workerPost(w http.ResponseWriter, r *http.Request) {
	var in hireIn
	if err := decodeJSON(r, &in); err != nil {
		badRequest(w, "%v", err)
		return
	}
	var errs []fieldErr
	switch {
	case len(in.Names) != 1 || in.Names[0].LastName == "":
		errs = append(errs, fieldErr{"LastName", CodeWorkerInvalid, "The attribute LastName is required."})
	case in.Names[0].LegislationCode == "":
		errs = append(errs, fieldErr{"LegislationCode", CodeWorkerInvalid, "The attribute LegislationCode is required."})
	}
	if len(in.WorkRelationships) != 1 || len(in.WorkRelationships[0].Assignments) != 1 {
		errs = append(errs, fieldErr{"workRelationships", CodeWorkerInvalid, "A hire needs one work relationship with one assignment."})
	} else {
		wr := in.WorkRelationships[0]
		if wr.LegalEmployerName == "" {
			errs = append(errs, fieldErr{"LegalEmployerName", CodeWorkerInvalid, "The attribute LegalEmployerName is required."})
		}
		if wr.WorkerType != "E" && wr.WorkerType != "C" && wr.WorkerType != "N" {
			errs = append(errs, invalid("WorkerType", CodeWorkerInvalid, wr.WorkerType))
		}
		if _, err := time.Parse(dateLayout, wr.StartDate); err != nil {
			errs = append(errs, invalid("StartDate", CodeWorkerInvalid, wr.StartDate))
		}
		if d := wr.Assignments[0].AssignmentsDFF; len(d) > 0 && d[0].NPI != "" && !validNPI(d[0].NPI) {
			errs = append(errs, invalid("npi", CodeWorkerInvalid, d[0].NPI))
		}
	}
	s.mu.Lock()
	st := s.hcmState()
	if in.PersonNumber != "" && slices.ContainsFunc(st.workers, func(o *Worker) bool { return o.PersonNumber == in.PersonNumber }) {
		errs = append(errs, fieldErr{"PersonNumber", CodeWorkerInvalid, fmt.Sprintf("The person number %s already exists.", in.PersonNumber)})
	}
	if len(errs) > 0 {
		s.mu.Unlock()
		writeErrors(w, http.StatusBadRequest, errs)
		return
	}
	wr, a := in.WorkRelationships[0], in.WorkRelationships[0].Assignments[0]
	id := st.nextID
	st.nextID += 10
	wk := &Worker{PersonID: id, PersonNumber: in.PersonNumber, LastName: in.Names[0].LastName, FirstName: in.Names[0].FirstName,
		RelationshipID: id + 1, StartDate: wr.StartDate, AssignmentID: id + 2, LastUpdateDate: s.hcmNow()}
	if wk.PersonNumber == "" {
		wk.PersonNumber = strconv.FormatInt(id%1000000, 10) // Fusion numbers persons itself
	}
	wk.AssignmentNumber = "E" + wk.PersonNumber
	v := AssignmentVersion{Start: wr.StartDate, End: "4712-12-31", AssignmentStatus: "ACTIVE", DepartmentName: a.DepartmentName, JobCode: a.JobCode, ManagerPersonNumber: a.ManagerPersonNumber}
	if len(a.AssignmentsDFF) > 0 {
		d := a.AssignmentsDFF[0]
		v.NPI, v.Specialty, v.ClinicalCredentials, v.ProviderType = d.NPI, d.Specialty, d.ClinicalCredentials, d.ProviderType
	}
	wk.Versions = []AssignmentVersion{v}
	st.workers = append(st.workers, wk)
	st.entries = append(st.entries, feedEntry{feed: "newhire", updated: wk.LastUpdateDate, person: wk.PersonNumber,
		ctx: map[string]any{"PersonId": strconv.FormatInt(wk.PersonID, 10), "PersonNumber": wk.PersonNumber, "EffectiveStartDate": wr.StartDate, "PeriodType": "E", "WorkerType": "E"}})
	body := s.workerJSON(r, wk, wr.StartDate)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, body)
}

// hcmNow is a strictly increasing update time: feeds and
// LastUpdateDate>... reads never miss or tie two changes. Called with
// s.mu held.
func (s *Server) hcmNow() time.Time {
	now := time.Now().UTC().Truncate(time.Millisecond)
	st := s.hcmState()
	for _, e := range st.entries {
		if !now.After(e.updated) {
			now = e.updated.Add(time.Millisecond)
		}
	}
	return now
}

func (s *Server) workerTerminate(w http.ResponseWriter, r *http.Request) {
	var in struct {
		TerminationDate string `json:"terminationDate"`
		ActionCode      string `json:"actionCode"`
		ReasonCode      string `json:"reasonCode"`
	}
	if err := decodeJSON(r, &in); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if _, err := time.Parse(dateLayout, in.TerminationDate); err != nil {
		writeErrors(w, http.StatusBadRequest, []fieldErr{invalid("terminationDate", CodeWorkerInvalid, in.TerminationDate)})
		return
	}
	if in.ActionCode == "" {
		in.ActionCode = "TERMINATION"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	wk := s.worker(r.PathValue("id"))
	if wk == nil || r.PathValue("rid") != strconv.FormatInt(wk.RelationshipID, 10) {
		writeError(w, http.StatusNotFound, "The work relationship "+r.PathValue("rid")+" doesn't exist.", "")
		return
	}
	if wk.TerminationDate != "" {
		writeErrors(w, http.StatusBadRequest, []fieldErr{{"terminationDate", CodeWorkerTerminated, "The work relationship is already terminated."}})
		return
	}
	if in.TerminationDate < wk.StartDate {
		writeErrors(w, http.StatusBadRequest, []fieldErr{{"terminationDate", CodeEffectiveDate, "The termination date is before the start date."}})
		return
	}
	// The day after the termination the assignment is inactive.
	next := mustDay(in.TerminationDate).AddDate(0, 0, 1).Format(dateLayout)
	if err := wk.split(next, func(v *AssignmentVersion) { v.AssignmentStatus = "INACTIVE" }); err != nil {
		writeErrors(w, http.StatusBadRequest, []fieldErr{{"terminationDate", CodeEffectiveDate, err.Error()}})
		return
	}
	wk.TerminationDate = in.TerminationDate
	wk.LastUpdateDate = s.hcmNow()
	st := s.hcmState()
	st.entries = append(st.entries, feedEntry{feed: "termination", updated: wk.LastUpdateDate, person: wk.PersonNumber,
		ctx: map[string]any{"PersonId": strconv.FormatInt(wk.PersonID, 10), "PersonNumber": wk.PersonNumber, "EffectiveDate": in.TerminationDate, "ActionCode": in.ActionCode}})
	writeJSONAs(w, http.StatusOK, "application/vnd.oracle.adf.actionresult+json", map[string]any{"result": "SUCCESS"})
}

// workerRehire starts a new period of service for a terminated worker
// (Fusion's rehire: POST workRelationships with ActionCode REHIRE): the
// person, person number and assignment number stay, the assignment is
// active again from the start date, and the change is a newhire feed
// entry whose context says REHIRE.
func (s *Server) workerRehire(w http.ResponseWriter, r *http.Request) {
	var in struct {
		StartDate         string `json:"StartDate"`
		ActionCode        string `json:"ActionCode"`
		LegalEmployerName string `json:"LegalEmployerName"`
		WorkerType        string `json:"WorkerType"`
	}
	if err := decodeJSON(r, &in); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if _, err := time.Parse(dateLayout, in.StartDate); err != nil {
		writeErrors(w, http.StatusBadRequest, []fieldErr{invalid("StartDate", CodeWorkerInvalid, in.StartDate)})
		return
	}
	if in.ActionCode == "" {
		in.ActionCode = "REHIRE"
	}
	if in.ActionCode != "REHIRE" {
		writeErrors(w, http.StatusBadRequest, []fieldErr{invalid("ActionCode", CodeWorkerInvalid, in.ActionCode)})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	wk := s.worker(r.PathValue("id"))
	if wk == nil {
		writeError(w, http.StatusNotFound, "The worker "+r.PathValue("id")+" doesn't exist.", "")
		return
	}
	if wk.TerminationDate == "" {
		writeErrors(w, http.StatusBadRequest, []fieldErr{{"ActionCode", CodeWorkerInvalid, "The worker has an active work relationship: a rehire needs a terminated one."}})
		return
	}
	if in.StartDate <= wk.TerminationDate {
		writeErrors(w, http.StatusBadRequest, []fieldErr{{"StartDate", CodeEffectiveDate, "The rehire date must be after the termination date."}})
		return
	}
	if err := wk.split(in.StartDate, func(v *AssignmentVersion) { v.AssignmentStatus = "ACTIVE" }); err != nil {
		writeErrors(w, http.StatusBadRequest, []fieldErr{{"StartDate", CodeEffectiveDate, err.Error()}})
		return
	}
	st := s.hcmState()
	wk.RelationshipID = st.nextID
	st.nextID += 10
	wk.StartDate, wk.TerminationDate = in.StartDate, ""
	wk.LastUpdateDate = s.hcmNow()
	st.entries = append(st.entries, feedEntry{feed: "newhire", updated: wk.LastUpdateDate, person: wk.PersonNumber,
		ctx: map[string]any{"PersonId": strconv.FormatInt(wk.PersonID, 10), "PersonNumber": wk.PersonNumber, "EffectiveStartDate": in.StartDate,
			"PeriodType": "E", "WorkerType": "E", "ActionCode": "REHIRE"}})
	writeJSON(w, http.StatusCreated, s.workerJSON(r, wk, in.StartDate))
}

func mustDay(s string) time.Time { t, _ := time.Parse(dateLayout, s); return t }

// split starts a new version on day (UPDATE mode), changed by f; day
// must fall after the start of the version in effect then.
func (w *Worker) split(day string, f func(*AssignmentVersion)) error {
	for i := range w.Versions {
		v := w.Versions[i]
		if v.Start <= day && day <= v.End {
			if day == v.Start {
				f(&w.Versions[i])
				return nil
			}
			if i != len(w.Versions)-1 {
				return fmt.Errorf("a future-dated change exists after %s; Fusion does not insert between versions in UPDATE mode", v.Start)
			}
			nv := v
			w.Versions[i].End = mustDay(day).AddDate(0, 0, -1).Format(dateLayout)
			nv.Start = day
			f(&nv)
			w.Versions = append(w.Versions, nv)
			return nil
		}
	}
	return fmt.Errorf("no assignment version is in effect on %s", day)
}

// effectiveOf reads the Effective-Of header: RangeMode (UPDATE or
// CORRECTION) and RangeStartDate.
func effectiveOf(h string) (mode, start string, err error) {
	mode = "CORRECTION"
	if h == "" {
		return mode, time.Now().UTC().Format(dateLayout), nil
	}
	for _, part := range strings.Split(h, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "RangeMode":
			if v != "UPDATE" && v != "CORRECTION" {
				return "", "", fmt.Errorf("the Effective-Of RangeMode %q isn't supported (UPDATE or CORRECTION)", v)
			}
			mode = v
		case "RangeStartDate":
			if _, err := time.Parse(dateLayout, v); err != nil {
				return "", "", fmt.Errorf("the Effective-Of RangeStartDate %q isn't a date", v)
			}
			start = v
		default:
			return "", "", fmt.Errorf("the Effective-Of header part %q isn't valid", part)
		}
	}
	if start == "" {
		start = time.Now().UTC().Format(dateLayout)
	}
	return mode, start, nil
}

func (s *Server) assignmentPatch(w http.ResponseWriter, r *http.Request) {
	var in map[string]json.RawMessage
	if err := decodeJSON(r, &in); err != nil {
		badRequest(w, "%v", err)
		return
	}
	mode, start, err := effectiveOf(r.Header.Get("Effective-Of"))
	if err != nil {
		writeErrors(w, http.StatusBadRequest, []fieldErr{{"Effective-Of", CodeEffectiveDate, err.Error()}})
		return
	}
	dff := r.PathValue("did") != ""
	allowed := map[string]bool{"DepartmentName": !dff, "JobCode": !dff, "ManagerPersonNumber": !dff, "AssignmentStatusType": !dff,
		"npi": dff, "specialty": dff, "clinicalCredentials": dff, "providerType": dff, "epicProviderId": dff}
	vals := map[string]string{}
	var errs []fieldErr
	for k, raw := range in {
		var v string
		if !allowed[k] || json.Unmarshal(raw, &v) != nil {
			errs = append(errs, fieldErr{k, CodeWorkerInvalid, fmt.Sprintf("The attribute %s isn't valid for this resource.", k)})
			continue
		}
		if k == "npi" && v != "" && !validNPI(v) {
			errs = append(errs, invalid("npi", CodeWorkerInvalid, v))
		}
		vals[k] = v
	}
	if len(errs) > 0 {
		writeErrors(w, http.StatusBadRequest, errs)
		return
	}
	set := func(v *AssignmentVersion) {
		for k, x := range vals {
			switch k {
			case "DepartmentName":
				v.DepartmentName = x
			case "JobCode":
				v.JobCode = x
			case "ManagerPersonNumber":
				v.ManagerPersonNumber = x
			case "AssignmentStatusType":
				v.AssignmentStatus = x
			case "npi":
				v.NPI = x
			case "specialty":
				v.Specialty = x
			case "clinicalCredentials":
				v.ClinicalCredentials = x
			case "providerType":
				v.ProviderType = x
			case "epicProviderId":
				v.EpicProviderID = x
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	wk := s.worker(r.PathValue("id"))
	if wk == nil || r.PathValue("rid") != strconv.FormatInt(wk.RelationshipID, 10) || r.PathValue("aid") != strconv.FormatInt(wk.AssignmentID, 10) ||
		(dff && r.PathValue("did") != r.PathValue("aid")) {
		writeError(w, http.StatusNotFound, "The assignment "+r.PathValue("aid")+" doesn't exist.", "")
		return
	}
	if mode == "UPDATE" {
		err = wk.split(start, set)
	} else if v := wk.at(start); v != nil {
		set(v)
	} else {
		err = fmt.Errorf("no assignment version is in effect on %s", start)
	}
	if err != nil {
		writeErrors(w, http.StatusBadRequest, []fieldErr{{"Effective-Of", CodeEffectiveDate, err.Error()}})
		return
	}
	wk.LastUpdateDate = s.hcmNow()
	changed := make([]string, 0, len(vals))
	for k := range vals {
		changed = append(changed, k)
	}
	slices.Sort(changed)
	st := s.hcmState()
	st.entries = append(st.entries, feedEntry{feed: "empupdate", updated: wk.LastUpdateDate, person: wk.PersonNumber, changed: changed,
		ctx: map[string]any{"PersonId": strconv.FormatInt(wk.PersonID, 10), "PersonNumber": wk.PersonNumber, "EffectiveDate": start, "AssignmentNumber": wk.AssignmentNumber}})
	writeJSON(w, http.StatusOK, s.workerJSON(r, wk, start))
}

// validNPI is the NPI check digit (Luhn over 80840 and the first nine digits).
func validNPI(s string) bool {
	if len(s) != 10 {
		return false
	}
	sum := 24
	for i := 8; i >= 0; i-- {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		d := int(s[i] - '0')
		if (8-i)%2 == 0 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return s[9] >= '0' && s[9] <= '9' && (10-sum%10)%10 == int(s[9]-'0')
}

// Atom 1.0 as the HCM Atom servlet writes it: entries newest first, the
// change's context as JSON in <content type="text">, paged by page-size
// and page with next/prev links.
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	Title   string      `xml:"title"`
	ID      string      `xml:"id"`
	Updated string      `xml:"updated"`
	Links   []atomLink  `xml:"link"`
	Entries []atomEntry `xml:"entry"`
}

type atomLink struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr"`
}

type atomEntry struct {
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Author  string      `xml:"author>name"`
	Content atomContent `xml:"content"`
}

type atomContent struct {
	Type string `xml:"type,attr"`
	Body string `xml:",chardata"`
}

func (s *Server) atomGet(w http.ResponseWriter, r *http.Request) {
	feed := r.PathValue("feed")
	if feed != "newhire" && feed != "empupdate" && feed != "termination" {
		writeError(w, http.StatusNotFound, "The feed "+feed+" doesn't exist.", "")
		return
	}
	q := queryParams(r)
	size, page := 25, 1
	if v := q["page-size"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			badRequest(w, "the page-size %q isn't a number from 1 to 500", v)
			return
		}
		size = n
	}
	if v := q["page"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			badRequest(w, "the page %q isn't a positive number", v)
			return
		}
		page = n
	}
	var minT, maxT time.Time
	for k, dst := range map[string]*time.Time{"updated-min": &minT, "updated-max": &maxT} {
		if v := q[k]; v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				badRequest(w, "the %s %q isn't an RFC 3339 time", k, v)
				return
			}
			*dst = t
		}
	}
	s.mu.Lock()
	var es []feedEntry
	for _, e := range s.hcmState().entries {
		if e.feed == feed && (minT.IsZero() || e.updated.After(minT)) && (maxT.IsZero() || !e.updated.After(maxT)) {
			es = append(es, e)
		}
	}
	s.mu.Unlock()
	slices.Reverse(es) // newest first
	base := baseURL(r) + AtomPath + "/employee/" + feed
	out := atomFeed{Title: feed, ID: base, Updated: time.Now().UTC().Format(time.RFC3339Nano)}
	pageURL := func(p int) string {
		u := base + "?page-size=" + strconv.Itoa(size) + "&page=" + strconv.Itoa(p)
		if v := q["updated-min"]; v != "" {
			u += "&updated-min=" + v
		}
		return u
	}
	out.Links = append(out.Links, atomLink{Href: pageURL(page), Rel: "self"})
	from := (page - 1) * size
	if from+size < len(es) {
		out.Links = append(out.Links, atomLink{Href: pageURL(page + 1), Rel: "next"})
	}
	if page > 1 {
		out.Links = append(out.Links, atomLink{Href: pageURL(page - 1), Rel: "prev"})
	}
	for i := from; i < min(from+size, len(es)); i++ {
		e := es[i]
		body := map[string]any{"Context": []any{e.ctx}}
		if e.changed != nil {
			body["Changed Attributes"] = []any{map[string]any{"PER_ALL_ASSIGNMENTS_M": e.changed}}
		}
		b, _ := json.Marshal(body)
		out.Entries = append(out.Entries, atomEntry{
			ID: "urn:" + feed + ":" + e.person + ":" + strconv.FormatInt(e.updated.UnixMilli(), 10), Title: e.person + " " + feed,
			Updated: e.updated.Format(time.RFC3339Nano), Author: "FUSION_APPS_HCM", Content: atomContent{Type: "text", Body: string(b)},
		})
	}
	b, err := xml.MarshalIndent(out, "", " ")
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error(), "")
		return
	}
	w.Header().Set("Content-Type", "application/atom+xml")
	_, _ = w.Write(append([]byte(xml.Header), b...))
}

// Workers returns a copy of every worker (the /sim/workers view).
func (s *Server) Workers() []Worker {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Worker, 0, len(s.hcmState().workers))
	for _, wk := range s.hcmState().workers {
		c := *wk
		c.Versions = slices.Clone(wk.Versions)
		out = append(out, c)
	}
	return out
}
