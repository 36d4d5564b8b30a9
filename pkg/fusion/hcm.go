package fusion

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// HCM roots: the REST resources (workers) and the Atom feeds.
const (
	HCMPath  = "/hcmRestApi/resources/11.13.18.05"
	AtomPath = "/hcmCoreApi/atomservlet"
)

// HCM Atom feeds of employee changes.
const (
	FeedNewHire     = "newhire"
	FeedEmpUpdate   = "empupdate"
	FeedTermination = "termination"
)

// Worker is a Fusion HCM worker as worker-sync reads it: one work
// relationship, its primary assignment as of a day, and the site's
// provider attributes (the assignment's DFF: npi, specialty,
// clinicalCredentials, providerType, epicProviderId).
type Worker struct {
	PersonID         string
	PersonNumber     string
	LastName         string
	FirstName        string
	RelationshipID   string
	TerminationDate  string
	AssignmentID     string
	AssignmentNumber string
	Status           string // ACTIVE, INACTIVE
	Department       string
	Job              string
	Manager          string // the manager's person number
	NPI              string
	Specialty        string
	Credentials      string
	ProviderType     string
	EpicProviderID   string
	LastUpdate       time.Time
}

type wireWorker struct {
	PersonID       json.Number `json:"PersonId"`
	PersonNumber   string      `json:"PersonNumber"`
	LastUpdateDate string      `json:"LastUpdateDate"`
	Names          []struct {
		LastName, FirstName string
	} `json:"names"`
	WorkRelationships []struct {
		PeriodOfServiceID json.Number `json:"PeriodOfServiceId"`
		TerminationDate   string      `json:"TerminationDate"`
		Assignments       []struct {
			AssignmentID         json.Number `json:"AssignmentId"`
			AssignmentNumber     string      `json:"AssignmentNumber"`
			AssignmentStatusType string      `json:"AssignmentStatusType"`
			DepartmentName       string      `json:"DepartmentName"`
			JobCode              string      `json:"JobCode"`
			ManagerPersonNumber  string      `json:"ManagerPersonNumber"`
			DFF                  []struct {
				NPI                 string `json:"npi"`
				Specialty           string `json:"specialty"`
				ClinicalCredentials string `json:"clinicalCredentials"`
				ProviderType        string `json:"providerType"`
				EpicProviderID      string `json:"epicProviderId"`
			} `json:"assignmentsDFF"`
		} `json:"assignments"`
	} `json:"workRelationships"`
}

func (w wireWorker) worker() (Worker, error) {
	out := Worker{PersonID: w.PersonID.String(), PersonNumber: w.PersonNumber}
	if len(w.Names) > 0 {
		out.LastName, out.FirstName = w.Names[0].LastName, w.Names[0].FirstName
	}
	if t, err := time.Parse(time.RFC3339Nano, w.LastUpdateDate); err == nil {
		out.LastUpdate = t
	}
	if len(w.WorkRelationships) == 0 || len(w.WorkRelationships[0].Assignments) == 0 {
		return out, errors.New("worker without a work relationship and assignment")
	}
	r := w.WorkRelationships[0]
	a := r.Assignments[0]
	out.RelationshipID, out.TerminationDate = r.PeriodOfServiceID.String(), r.TerminationDate
	out.AssignmentID, out.AssignmentNumber, out.Status = a.AssignmentID.String(), a.AssignmentNumber, a.AssignmentStatusType
	out.Department, out.Job, out.Manager = a.DepartmentName, a.JobCode, a.ManagerPersonNumber
	if len(a.DFF) > 0 {
		d := a.DFF[0]
		out.NPI, out.Specialty, out.Credentials, out.ProviderType, out.EpicProviderID = d.NPI, d.Specialty, d.ClinicalCredentials, d.ProviderType, d.EpicProviderID
	}
	return out, nil
}

// WorkerQuery selects workers: by person number, or changed after a time
// (the polling fallback to the Atom feeds); the zero query is every worker.
// AsOf is the day the date-effective assignment is read on (today when zero).
type WorkerQuery struct {
	PersonNumber string
	UpdatedAfter time.Time
	AsOf         time.Time
}

// Workers returns the workers q selects, every page.
func (c *Client) Workers(ctx context.Context, q WorkerQuery) ([]Worker, error) {
	const op = "workers"
	var terms []string
	if q.PersonNumber != "" {
		terms = append(terms, "PersonNumber="+qString(q.PersonNumber))
	}
	if !q.UpdatedAfter.IsZero() {
		terms = append(terms, "LastUpdateDate>"+qString(q.UpdatedAfter.UTC().Format(time.RFC3339Nano)))
	}
	asOf := ""
	if !q.AsOf.IsZero() {
		asOf = q.AsOf.UTC().Format(time.DateOnly)
	}
	raw, err := collect[wireWorker](ctx, c, op, HCMPath+"/workers", query("q", strings.Join(terms, ";"), "expand", "names,workRelationships.assignments.assignmentsDFF", "effectiveDate", asOf))
	if err != nil {
		return nil, err
	}
	out := make([]Worker, 0, len(raw))
	for _, w := range raw {
		wk, err := w.worker()
		if err != nil {
			return nil, &ProtocolError{Op: op, Err: err}
		}
		out = append(out, wk)
	}
	return out, nil
}

// FeedEntry is one entry of an HCM Atom feed: the change's time and the
// identifiers of its context.
type FeedEntry struct {
	Feed         string
	ID           string
	Updated      time.Time
	PersonNumber string
	PersonID     string
	// ActionCode is the context's action (HIRE, REHIRE, TERMINATION, ...)
	// when the feed names one.
	ActionCode string
}

type atomFeed struct {
	Links []struct {
		Href string `xml:"href,attr"`
		Rel  string `xml:"rel,attr"`
	} `xml:"link"`
	Entries []struct {
		ID      string `xml:"id"`
		Updated string `xml:"updated"`
		Content string `xml:"content"`
	} `xml:"entry"`
}

// Feed returns the entries of an HCM Atom feed updated after since,
// following its next links, oldest first.
func (c *Client) Feed(ctx context.Context, feed string, since time.Time, pageSize int) ([]FeedEntry, error) {
	op := "atom " + feed
	if pageSize <= 0 {
		pageSize = 100
	}
	q := query("page-size", strconv.Itoa(pageSize), "updated-min", sinceText(since))
	var out []FeedEntry
	for page := 1; page <= maxPages; page++ {
		var raw []byte
		if err := c.do(ctx, request{op: op, method: http.MethodGet, path: AtomPath + "/employee/" + feed, rawQuery: q + "&page=" + strconv.Itoa(page),
			header: http.Header{"Accept": {"application/atom+xml"}}}, &raw); err != nil {
			return nil, err
		}
		var f atomFeed
		if err := xml.Unmarshal(raw, &f); err != nil {
			return nil, &ProtocolError{Op: op, Err: err}
		}
		for _, e := range f.Entries {
			fe := FeedEntry{Feed: feed, ID: e.ID}
			t, err := time.Parse(time.RFC3339Nano, e.Updated)
			if err != nil {
				return nil, &ProtocolError{Op: op, Err: fmt.Errorf("entry updated %q: %w", e.Updated, err)}
			}
			fe.Updated = t
			var body struct {
				Context []struct {
					PersonNumber string `json:"PersonNumber"`
					PersonID     string `json:"PersonId"`
					ActionCode   string `json:"ActionCode"`
				} `json:"Context"`
			}
			if err := json.Unmarshal([]byte(e.Content), &body); err != nil || len(body.Context) == 0 {
				return nil, &ProtocolError{Op: op, Err: errors.New("entry content has no Context")}
			}
			fe.PersonNumber, fe.PersonID, fe.ActionCode = body.Context[0].PersonNumber, body.Context[0].PersonID, body.Context[0].ActionCode
			out = append(out, fe)
		}
		next := ""
		for _, l := range f.Links {
			if l.Rel == "next" {
				next = l.Href
			}
		}
		if next == "" {
			break
		}
		if u, err := url.Parse(next); err != nil || u.Query().Get("page") != strconv.Itoa(page+1) {
			return nil, &ProtocolError{Op: op, Err: errors.New("next link does not name the next page")}
		}
	}
	// Newest first on the wire; oldest first for the caller.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

func sinceText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// UpdateProviderAttributes writes a worker's provider attributes (the
// assignment DFF: npi, specialty, clinicalCredentials, providerType,
// epicProviderId) as a new date-effective version from effective on
// (Effective-Of: RangeMode=UPDATE). Keys not given are left alone.
func (c *Client) UpdateProviderAttributes(ctx context.Context, w Worker, effective time.Time, attrs map[string]string) error {
	path := HCMPath + "/workers/" + w.PersonID + "/child/workRelationships/" + w.RelationshipID + "/child/assignments/" + w.AssignmentID + "/child/assignmentsDFF/" + w.AssignmentID
	return c.do(ctx, request{op: "updateProviderAttributes", method: http.MethodPatch, path: path, body: attrs,
		header: http.Header{"Effective-Of": {"RangeMode=UPDATE;RangeStartDate=" + effective.UTC().Format(time.DateOnly)}}}, nil)
}
