package fusion

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Names Journal Import is submitted under.
const (
	JournalImportPackage = "/oracle/apps/ess/financials/generalLedger/programs/common"
	JournalImportJob     = "JournalImportLauncher"
	GLImportAccount      = "fin$/generalLedger$/import$"
	null                 = "#NULL"
)

// JobStatus is an ESS request state.
type JobStatus string

// ESS request states. Terminal ones end a request for good.
const (
	StatusWait       JobStatus = "WAIT"
	StatusReady      JobStatus = "READY"
	StatusRunning    JobStatus = "RUNNING"
	StatusBlocked    JobStatus = "BLOCKED"
	StatusHold       JobStatus = "HOLD"
	StatusPaused     JobStatus = "PAUSED"
	StatusCancelling JobStatus = "CANCELLING"
	StatusSucceeded  JobStatus = "SUCCEEDED"
	StatusWarning    JobStatus = "WARNING"
	StatusError      JobStatus = "ERROR"
	StatusCancelled  JobStatus = "CANCELLED"
	StatusExpired    JobStatus = "EXPIRED"
)

// Terminal reports whether the request has finished.
func (s JobStatus) Terminal() bool {
	switch s {
	case StatusSucceeded, StatusWarning, StatusError, StatusCancelled, StatusExpired:
		return true
	}
	return false
}

// ImportRequest is an importBulkData upload of a GlInterface zip that
// launches Journal Import for one GROUP_ID (or ALL).
type ImportRequest struct {
	FileName        string
	Zip             []byte // the GlInterface zip
	DataAccessSetID string // "" → #NULL
	Source          string // journal source name
	LedgerID        string
	GroupID         string // digits, or "ALL"
	CallbackURL     string // "" → #NULL
}

type erpRequest struct {
	OperationName    string `json:"OperationName"`
	DocumentContent  string `json:"DocumentContent,omitempty"`
	ContentType      string `json:"ContentType,omitempty"`
	FileName         string `json:"FileName,omitempty"`
	DocumentAccount  string `json:"DocumentAccount,omitempty"`
	JobName          string `json:"JobName,omitempty"`
	ParameterList    string `json:"ParameterList,omitempty"`
	CallbackURL      string `json:"CallbackURL,omitempty"`
	NotificationCode string `json:"NotificationCode,omitempty"`
	JobOptions       string `json:"JobOptions,omitempty"`
	JobPackageName   string `json:"JobPackageName,omitempty"`
	JobDefName       string `json:"JobDefName,omitempty"`
	ESSParameters    string `json:"ESSParameters,omitempty"`
	ReqstID          string `json:"ReqstId,omitempty"`
	FileType         string `json:"FileType,omitempty"`
}

type erpResponse struct {
	OperationName   string `json:"OperationName"`
	ReqstID         string `json:"ReqstId"`
	RequestStatus   string `json:"RequestStatus"`
	DocumentContent string `json:"DocumentContent"`
	FileName        string `json:"FileName"`
}

func orNull(s string) string {
	if s == "" {
		return null
	}
	return s
}

// journalParams is the 7-value parameter list of JournalImportLauncher:
// data access set, source, ledger, group, post errors to suspense, create
// summary journals, import DFF.
func journalParams(das, source, ledger, group string) (string, error) {
	for _, v := range []string{das, source, ledger, group} {
		if strings.Contains(v, ",") {
			return "", fmt.Errorf("parameter %q contains a comma", v)
		}
	}
	if source == "" || ledger == "" || group == "" {
		return "", errors.New("source, ledger id and group id are required")
	}
	return strings.Join([]string{orNull(das), source, ledger, group, "N", "N", "N"}, ","), nil
}

const erpPath = "/erpintegrations"

// ImportBulkData uploads r.Zip to the GL import account and submits the
// load and Journal Import chain. The request id is the chain's first job
// (Load Interface File for Import).
func (c *Client) ImportBulkData(ctx context.Context, r ImportRequest) (requestID string, err error) {
	params, err := journalParams(r.DataAccessSetID, r.Source, r.LedgerID, r.GroupID)
	if err != nil {
		return "", fmt.Errorf("fusion: importBulkData: %w", err)
	}
	if len(r.Zip) == 0 || r.FileName == "" {
		return "", errors.New("fusion: importBulkData: FileName and Zip are required")
	}
	body := erpRequest{
		OperationName:    "importBulkData",
		DocumentContent:  base64.StdEncoding.EncodeToString(r.Zip),
		ContentType:      "zip",
		FileName:         r.FileName,
		DocumentAccount:  GLImportAccount,
		JobName:          JournalImportPackage + "," + JournalImportJob,
		ParameterList:    params,
		CallbackURL:      orNull(r.CallbackURL),
		NotificationCode: "10",
	}
	return c.submit(ctx, "importBulkData", body)
}

// JournalImportParams are the parameters of a Journal Import run on rows
// already in GL_INTERFACE.
type JournalImportParams struct{ DataAccessSetID, Source, LedgerID, GroupID string }

// SubmitJournalImport submits JournalImportLauncher (submitESSJobRequest)
// for rows already loaded, e.g. the other GROUP_IDs of a file uploaded once.
func (c *Client) SubmitJournalImport(ctx context.Context, p JournalImportParams) (requestID string, err error) {
	params, err := journalParams(p.DataAccessSetID, p.Source, p.LedgerID, p.GroupID)
	if err != nil {
		return "", fmt.Errorf("fusion: submitESSJobRequest: %w", err)
	}
	body := erpRequest{
		OperationName:  "submitESSJobRequest",
		JobPackageName: JournalImportPackage,
		JobDefName:     JournalImportJob,
		ESSParameters:  params,
	}
	return c.submit(ctx, "submitESSJobRequest", body)
}

func (c *Client) submit(ctx context.Context, op string, body erpRequest) (string, error) {
	var out erpResponse
	if err := c.do(ctx, request{op: op, method: http.MethodPost, path: erpPath, body: body}, &out); err != nil {
		return "", err
	}
	if out.ReqstID == "" || out.ReqstID == "-1" {
		return "", &ProtocolError{Op: op, Err: fmt.Errorf("no request id (ReqstId %q)", out.ReqstID)}
	}
	return out.ReqstID, nil
}

func (c *Client) finder(ctx context.Context, op, finder, requestID string) (*erpResponse, error) {
	if requestID == "" {
		return nil, fmt.Errorf("fusion: %s: empty request id", op)
	}
	var p page[erpResponse]
	q := query("finder", finder+";requestId="+requestID)
	if err := c.do(ctx, request{op: op, method: http.MethodGet, path: erpPath, rawQuery: q}, &p); err != nil {
		return nil, err
	}
	if len(p.Items) == 0 {
		return nil, &ProtocolError{Op: op, Err: fmt.Errorf("no item for request %s", requestID)}
	}
	return &p.Items[0], nil
}

// JobStatus returns the state of ESS request requestID (ESSJobStatusRF).
func (c *Client) JobStatus(ctx context.Context, requestID string) (JobStatus, error) {
	it, err := c.finder(ctx, "getESSJobStatus", "ESSJobStatusRF", requestID)
	if err != nil {
		return "", err
	}
	if it.RequestStatus == "" {
		return "", &ProtocolError{Op: "getESSJobStatus", Err: errors.New("empty RequestStatus")}
	}
	return JobStatus(it.RequestStatus), nil
}

// Job is one ESS request of an execution-details tree.
type Job struct {
	Name, Path, Document, RequestID string
	Status                          JobStatus
	Children                        []Job
}

type wireJob struct {
	JobName      string    `json:"JOBNAME"`
	JobPath      string    `json:"JOBPATH,omitempty"`
	DocumentName string    `json:"DOCUMENTNAME,omitempty"`
	RequestID    string    `json:"REQUESTID"`
	Status       string    `json:"STATUS"`
	Child        []wireJob `json:"CHILD,omitempty"`
}

func (w wireJob) job() Job {
	j := Job{Name: w.JobName, Path: w.JobPath, Document: w.DocumentName, RequestID: w.RequestID, Status: JobStatus(w.Status)}
	for _, c := range w.Child {
		j.Children = append(j.Children, c.job())
	}
	return j
}

func jobs(ws []wireJob) []Job {
	out := make([]Job, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.job())
	}
	return out
}

// ExecutionDetails returns the job tree of the chain requestID belongs to
// (ESSExecutionDetailsRF): load jobs and Import Journals with children.
func (c *Client) ExecutionDetails(ctx context.Context, requestID string) ([]Job, error) {
	const op = "getESSExecutionDetails"
	it, err := c.finder(ctx, op, "ESSExecutionDetailsRF", requestID)
	if err != nil {
		return nil, err
	}
	// RequestStatus holds a JSON document as a string.
	var tree struct {
		Jobs []wireJob `json:"JOBS"`
	}
	if err := json.Unmarshal([]byte(it.RequestStatus), &tree); err != nil {
		return nil, &ProtocolError{Op: op, Err: fmt.Errorf("RequestStatus: %w", err)}
	}
	return jobs(tree.Jobs), nil
}

// DownloadExecutionDetails fetches the log and output files of an ESS
// request (downloadESSJobExecutionDetails); fileType is "log", "out" or
// "all". The result maps file name to content.
func (c *Client) DownloadExecutionDetails(ctx context.Context, requestID, fileType string) (map[string][]byte, error) {
	const op = "downloadESSJobExecutionDetails"
	if fileType == "" {
		fileType = "all"
	}
	var out erpResponse
	body := erpRequest{OperationName: op, ReqstID: requestID, FileType: fileType}
	if err := c.do(ctx, request{op: op, method: http.MethodPost, path: erpPath, body: body, reads: true}, &out); err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(out.DocumentContent)
	if err != nil {
		return nil, &ProtocolError{Op: op, Err: fmt.Errorf("DocumentContent: %w", err)}
	}
	files, err := unzip(raw)
	if err != nil {
		return nil, &ProtocolError{Op: op, Err: err}
	}
	return files, nil
}

// maxFile bounds one file unzipped from Fusion (logs can be large, not this large).
const maxFile = 64 << 20

func unzip(raw []byte) (map[string][]byte, error) {
	files := map[string][]byte{}
	if len(raw) == 0 {
		return files, nil
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return nil, fmt.Errorf("zip: %w", err)
	}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("zip %s: %w", f.Name, err)
		}
		b, err := io.ReadAll(io.LimitReader(rc, maxFile+1))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("zip %s: %w", f.Name, err)
		}
		if len(b) > maxFile {
			return nil, fmt.Errorf("zip %s: larger than %d bytes", f.Name, maxFile)
		}
		files[f.Name] = b
	}
	return files, nil
}

// Callback is the JSON part of what Fusion posts to a CallbackURL when an
// importBulkData chain ends.
type Callback struct {
	Jobs          []Job
	SummaryStatus JobStatus
	DocumentID    string
}

// ParseCallback reads a callback's JSON part.
func ParseCallback(r io.Reader) (*Callback, error) {
	var w struct {
		Jobs          []wireJob       `json:"JOBS"`
		SummaryStatus string          `json:"SUMMARYSTATUS"`
		DocumentID    json.RawMessage `json:"DOCUMENTID"`
	}
	dec := json.NewDecoder(io.LimitReader(r, 16<<20))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("fusion: callback: %w", err)
	}
	if len(w.Jobs) == 0 {
		return nil, errors.New("fusion: callback: no JOBS")
	}
	cb := &Callback{Jobs: jobs(w.Jobs), SummaryStatus: JobStatus(w.SummaryStatus)}
	// DOCUMENTID has been seen as a string and as a number.
	if len(w.DocumentID) > 0 && string(w.DocumentID) != "null" {
		var s string
		if json.Unmarshal(w.DocumentID, &s) == nil {
			cb.DocumentID = s
		} else {
			cb.DocumentID = string(w.DocumentID)
		}
	}
	return cb, nil
}

// RequestIDs lists every request id in the tree, parents before children.
func (cb *Callback) RequestIDs() []string {
	var ids []string
	var walk func([]Job)
	walk = func(js []Job) {
		for _, j := range js {
			if j.RequestID != "" {
				ids = append(ids, j.RequestID)
			}
			walk(j.Children)
		}
	}
	walk(cb.Jobs)
	return ids
}

// FindJob returns the first job named name in the tree (depth first).
func FindJob(jobs []Job, name string) (Job, bool) {
	for _, j := range jobs {
		if j.Name == name {
			return j, true
		}
		if c, ok := FindJob(j.Children, name); ok {
			return c, true
		}
	}
	return Job{}, false
}

// FindImportRequests returns the request ids of earlier importBulkData
// uploads of fileName, oldest first, so that a caller whose answer was lost
// can follow the upload instead of sending it again.
//
// ASSUMPTION: it uses the finder ImportRequestsByFileRF;fileName=..., which
// fusionsim serves but real erpintegrations does not document; against a
// real pod this must become an ESS scheduler search or a BI report.
func (c *Client) FindImportRequests(ctx context.Context, fileName string) ([]string, error) {
	const op = "findImportRequests"
	if fileName == "" || strings.ContainsAny(fileName, ",;") {
		return nil, fmt.Errorf("fusion: %s: file name %q cannot be searched", op, fileName)
	}
	items, err := collect[erpResponse](ctx, c, op, erpPath, query("finder", "ImportRequestsByFileRF;fileName="+fileName))
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(items))
	for _, it := range items {
		if it.ReqstID != "" {
			ids = append(ids, it.ReqstID)
		}
	}
	return ids, nil
}
