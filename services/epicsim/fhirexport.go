package epicsim

import (
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/fhir"
)

func b64url(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// exportTypes are the types a Group $export returns (the group's
// patients' compartment plus the referenced practitioners and medications).
var exportTypes = []string{"Patient", "Practitioner", "PractitionerRole", "Encounter", "Observation", "Medication"}

type exportJob struct {
	id      string
	client  string
	request string
	types   []string
	bad     []string // requested types not exported (reported in error)
	since   time.Time
	at      time.Time
	polls   int
	files   []exportFile
}

type exportFile struct {
	typ     string
	lines   [][]byte
	deleted bool // a deleted file: one DELETE Bundle per line
}

// kickoff starts a Group $export: Prefer: respond-async is required,
// _type and _since are honoured; 202 with Content-Location.
func (s *FHIRSim) kickoff(w http.ResponseWriter, r *http.Request, tok token, group string) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		outcome(w, http.StatusMethodNotAllowed, fhir.NewOutcome(fhir.SeverityError, "not-supported", "GET or POST"))
		return
	}
	if !strings.Contains(r.Header.Get("Prefer"), "respond-async") {
		outcome(w, http.StatusBadRequest, fhir.NewOutcome(fhir.SeverityFatal, "required", "the Prefer: respond-async header is required"))
		return
	}
	q := r.URL.Query()
	types := exportTypes
	if t := q.Get("_type"); t != "" {
		types = strings.Split(t, ",")
	}
	job := &exportJob{client: tok.client, request: s.BaseURL() + "/Group/" + group + "/$export?" + r.URL.RawQuery, at: s.now()}
	if v := q.Get("_since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			outcome(w, http.StatusBadRequest, fhir.NewOutcome(fhir.SeverityFatal, "value", "_since is not an instant"))
			return
		}
		job.since = t
	}
	for _, t := range types {
		if !contains(exportTypes, t) || !allowed(tok.scope, t) {
			job.bad = append(job.bad, t)
			continue
		}
		job.types = append(job.types, t)
	}
	s.mu.Lock()
	s.seq++
	job.id = fmt.Sprintf("job%04d%s", s.seq, NewJobSuffix())
	s.jobs[job.id] = job
	s.mu.Unlock()
	w.Header().Set("Content-Location", s.BaseURL()+"/export/status/"+job.id)
	w.WriteHeader(http.StatusAccepted)
}

// BadExportLine is the truncated line the BadExportLine fault writes.
const BadExportLine = `{"resourceType":"Practitioner","id":"eTruncated","name":[{"family":`

// NewJobSuffix makes a job id unguessable across restarts.
func NewJobSuffix() string { return strconv.FormatInt(time.Now().UnixNano()%1e6, 36) }

// serveStatus answers a status poll (202 + Retry-After until the job is
// done, an injected 429 every Every429 polls, then the manifest) or a
// DELETE (the job and its files are gone).
func (s *FHIRSim) serveStatus(w http.ResponseWriter, r *http.Request, tok token, id string) {
	s.mu.Lock()
	job, ok := s.jobs[id]
	if ok && job.client != tok.client {
		ok = false
	}
	if ok && r.Method == http.MethodDelete {
		delete(s.jobs, id)
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		return
	}
	var polls int
	if ok {
		job.polls++
		polls = job.polls
	}
	s.mu.Unlock()
	if !ok {
		outcome(w, http.StatusNotFound, fhir.NewOutcome(fhir.SeverityError, "not-found", "no such export job"))
		return
	}
	retry := strconv.Itoa(max(1, int(s.cfg.Export.RetryAfter.Seconds())))
	if s.cfg.Export.Every429 > 0 && polls%s.cfg.Export.Every429 == 0 {
		w.Header().Set("Retry-After", retry)
		outcome(w, http.StatusTooManyRequests, fhir.NewOutcome(fhir.SeverityError, "throttled", "polling too fast"))
		return
	}
	if polls <= s.cfg.Export.Polls {
		w.Header().Set("Retry-After", retry)
		w.Header().Set("X-Progress", fmt.Sprintf("%d%%", 100*polls/(s.cfg.Export.Polls+1)))
		w.WriteHeader(http.StatusAccepted)
		return
	}
	base := s.BaseURL()
	s.mu.Lock()
	if job.files == nil {
		s.build(job)
	}
	type out struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count int    `json:"count"`
	}
	m := struct {
		TransactionTime     string `json:"transactionTime"`
		Request             string `json:"request"`
		RequiresAccessToken bool   `json:"requiresAccessToken"`
		Output              []out  `json:"output"`
		Error               []out  `json:"error"`
		Deleted             []out  `json:"deleted,omitempty"`
	}{TransactionTime: job.at.UTC().Format(time.RFC3339), Request: job.request, RequiresAccessToken: true, Output: []out{}, Error: []out{}}
	for i, f := range job.files {
		o := out{Type: f.typ, URL: fmt.Sprintf("%s/export/file/%s/%d", base, job.id, i), Count: len(f.lines)}
		if s.del.expired > 0 {
			o.URL += fmt.Sprintf("?generation=%d", s.del.expired)
		}
		if f.deleted {
			m.Deleted = append(m.Deleted, o)
		} else if f.typ == "OperationOutcome" {
			m.Error = append(m.Error, o)
		} else {
			m.Output = append(m.Output, o)
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(m)
}

// build makes a job's files (lock held).
func (s *FHIRSim) build(job *exportJob) {
	job.files = []exportFile{}
	for _, t := range job.types {
		var f *exportFile
		for i := range s.data {
			res := &s.data[i]
			if res.Type != t || (!job.since.IsZero() && res.Date.Before(job.since) && !res.Date.IsZero()) {
				continue
			}
			if _, gone := s.del.at[res.Type+"/"+res.ID]; gone {
				continue
			}
			if f == nil || len(f.lines) >= s.cfg.Export.LinesPerFile {
				job.files = append(job.files, exportFile{typ: t})
				f = &job.files[len(job.files)-1]
			}
			f.lines = append(f.lines, s.jsonLocked(res))
		}
	}
	if !job.since.IsZero() {
		df := exportFile{typ: "Bundle", deleted: true}
		for _, t := range job.types {
			for i := range s.data {
				k := s.data[i].Type + "/" + s.data[i].ID
				if at, gone := s.del.at[k]; gone && s.data[i].Type == t && !at.Before(job.since) {
					df.lines = append(df.lines, deletedLine(k))
				}
			}
		}
		if len(df.lines) > 0 {
			job.files = append(job.files, df)
		}
	}
	if len(job.bad) > 0 {
		var ef exportFile
		ef.typ = "OperationOutcome"
		for _, t := range job.bad {
			ef.lines = append(ef.lines, fhir.NewOutcome(fhir.SeverityError, "not-supported", "type "+t+" is not exported for this client").JSON())
		}
		job.files = append(job.files, ef)
	}
}

// serveFile streams one output file as NDJSON, gzip when asked for.
func (s *FHIRSim) serveFile(w http.ResponseWriter, r *http.Request, tok token, id, n string) {
	s.mu.Lock()
	job, ok := s.jobs[id]
	i, err := strconv.Atoi(n)
	if !ok || job.client != tok.client || err != nil || i < 0 || i >= len(job.files) {
		s.mu.Unlock()
		outcome(w, http.StatusNotFound, fhir.NewOutcome(fhir.SeverityError, "not-found", "no such export file"))
		return
	}
	if s.del.expire {
		// The files expired: a new manifest (status poll) rebuilds them.
		s.del.expire = false
		s.del.expired++
		for _, j := range s.jobs {
			j.files = nil
		}
		s.mu.Unlock()
		outcome(w, http.StatusNotFound, fhir.NewOutcome(fhir.SeverityError, "not-found", "export file expired"))
		return
	}
	f := job.files[i]
	s.reads[f.typ] += len(f.lines)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/fhir+ndjson")
	var out interface {
		Write([]byte) (int, error)
	} = w
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzip.NewWriter(w)
		defer gz.Close()
		out = gz
	}
	for j, l := range f.lines {
		if _, err := out.Write(append(l, '\n')); err != nil {
			return
		}
		if i == 0 && j+1 == s.cfg.Faults.BadExportLine {
			if _, err := out.Write([]byte(BadExportLine + "\n")); err != nil {
				return
			}
		}
	}
}
