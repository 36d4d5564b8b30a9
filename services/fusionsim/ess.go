package fusionsim

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ESS job names and paths of the Journal Import chain.
const (
	jobLoad        = "Load Interface File for Import"
	jobTransfer    = "Transfer File"
	jobLoadIf      = "Load File to Interface"
	jobImport      = "Import Journals"
	jobImportChild = "Import Journals: Child"
	pathLoader     = "/oracle/apps/ess/financials/commonModules/shared/common/interfaceLoader"
	pathGL         = "/oracle/apps/ess/financials/generalLedger/programs/common"
	jobDefImport   = "JournalImportLauncher"
	glAccount      = "fin$/generalLedger$/import$"
)

// ESS states.
const (
	stWait      = "WAIT"
	stRunning   = "RUNNING"
	stSucceeded = "SUCCEEDED"
	stWarning   = "WARNING"
	stError     = "ERROR"
	stCancelled = "CANCELLED"
)

func terminal(s string) bool {
	return s == stSucceeded || s == stWarning || s == stError || s == stCancelled
}

type job struct {
	id        int64
	name      string
	path      string
	document  string
	status    string
	parent    *job
	children  []*job
	log, out  string
	chain     *chain
	submitted time.Time
}

// chain is the set of jobs one submission starts.
type chain struct {
	root        *job
	op          string // importBulkData or submitESSJobRequest
	top         []*job // JOBS of execution details
	params      importParams
	fileName    string
	zip         []byte
	callbackURL string
	documentID  string
	stuck       bool
	relGen      int // Release count when the chain started
	done        bool
	st          *state
}

func (st *state) newJob(c *chain, id int64, name, path string, parent *job, now time.Time) *job {
	j := &job{id: id, name: name, path: path, status: stWait, parent: parent, chain: c, submitted: now}
	if parent != nil {
		parent.children = append(parent.children, j)
	}
	st.jobs[id] = j
	st.order = append(st.order, j)
	return j
}

// summary is the worst state of a finished chain.
func (c *chain) summary() string {
	worst := stSucceeded
	rank := map[string]int{stSucceeded: 0, stWarning: 1, stCancelled: 2, stError: 3}
	var walk func([]*job)
	walk = func(js []*job) {
		for _, j := range js {
			if rank[j.status] > rank[worst] {
				worst = j.status
			}
			walk(j.children)
		}
	}
	walk(c.top)
	return worst
}

// statusOf is what ESSJobStatusRF answers. The first request of an
// importBulkData chain reports the whole chain (terminal only once Import
// Journals has ended, with the chain's worst state) so that a caller
// polling the ReqstId it was given never sees SUCCEEDED before the import
// ran; every other request reports its own state.
func statusOf(j *job) string {
	c := j.chain
	if j == c.root && c.op == opImportBulkData {
		if c.done {
			return c.summary()
		}
		if j.status == stWait {
			return stWait
		}
		return stRunning
	}
	return j.status
}

// wireJob is a JOBS/CHILD entry of execution details and callbacks.
type wireJob struct {
	JobName      string    `json:"JOBNAME"`
	JobPath      string    `json:"JOBPATH,omitempty"`
	DocumentName string    `json:"DOCUMENTNAME,omitempty"`
	RequestID    string    `json:"REQUESTID"`
	Status       string    `json:"STATUS"`
	Child        []wireJob `json:"CHILD,omitempty"`
}

func wireJobs(js []*job) []wireJob {
	out := make([]wireJob, 0, len(js))
	for _, j := range js {
		w := wireJob{JobName: j.name, JobPath: j.path, DocumentName: j.document, RequestID: strconv.FormatInt(j.id, 10), Status: j.status}
		if len(j.children) > 0 {
			w.Child = wireJobs(j.children)
		}
		out = append(out, w)
	}
	return out
}

const (
	opImportBulkData = "importBulkData"
	opSubmitESS      = "submitESSJobRequest"
	opDownload       = "downloadESSJobExecutionDetails"
	maxUpload        = 512 << 20
)

func (s *Server) erpPost(w http.ResponseWriter, r *http.Request) {
	raw, err := readBody(r, maxUpload)
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, err.Error(), "")
		return
	}
	var req map[string]any
	if err := json.Unmarshal(raw, &req); err != nil {
		writeError(w, http.StatusBadRequest, "The request body isn't valid JSON.", "")
		return
	}
	str := func(k string) string {
		v, _ := req[k].(string)
		return v
	}
	switch op := str("OperationName"); op {
	case opImportBulkData:
		s.importBulkData(w, req, str)
	case opSubmitESS:
		s.submitESS(w, req, str)
	case opDownload:
		s.download(w, str)
	case "":
		writeError(w, http.StatusBadRequest, "The attribute OperationName is required.", "")
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("The operation %q isn't supported.", op), "")
	}
}

func badRequest(w http.ResponseWriter, format string, a ...any) {
	writeError(w, http.StatusBadRequest, fmt.Sprintf(format, a...), "")
}

func (s *Server) importBulkData(w http.ResponseWriter, req map[string]any, str func(string) string) {
	doc, err := base64.StdEncoding.DecodeString(str("DocumentContent"))
	switch {
	case str("DocumentContent") == "":
		badRequest(w, "The attribute DocumentContent is required.")
		return
	case err != nil:
		badRequest(w, "The attribute DocumentContent isn't valid base64.")
		return
	case !strings.EqualFold(str("ContentType"), "zip"):
		badRequest(w, "The attribute ContentType must be zip.")
		return
	case str("FileName") == "":
		badRequest(w, "The attribute FileName is required.")
		return
	case str("DocumentAccount") != glAccount:
		badRequest(w, "The document account %q isn't valid for Journal Import (want %s).", str("DocumentAccount"), glAccount)
		return
	case str("JobName") != pathGL+","+jobDefImport:
		badRequest(w, "The job %q isn't valid (want %s,%s).", str("JobName"), pathGL, jobDefImport)
		return
	}
	p, err := parseParams(str("ParameterList"))
	if err != nil {
		badRequest(w, "ParameterList: %v", err)
		return
	}
	cb := str("CallbackURL")
	if cb == "" {
		cb = "#NULL"
	}
	if cb != "#NULL" {
		if u, err := url.Parse(cb); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			badRequest(w, "The attribute CallbackURL must be an http(s) URL or #NULL.")
			return
		}
	}
	now := time.Now()
	s.mu.Lock()
	st := s.st
	c := &chain{op: opImportBulkData, params: p, fileName: str("FileName"), zip: doc, callbackURL: cb, st: st}
	c.documentID = strconv.FormatInt(st.nextDoc, 10)
	st.nextDoc++
	id := st.nextReq
	st.nextReq += 5 // load, transfer, load to interface, import, import child
	c.root = st.newJob(c, id, jobLoad, pathLoader, nil, now)
	c.root.document = c.fileName
	transfer := st.newJob(c, id+1, jobTransfer, pathLoader, c.root, now)
	loadIf := st.newJob(c, id+2, jobLoadIf, pathLoader, c.root, now)
	c.top = []*job{c.root}
	c.stuck, c.relGen = s.takeStuck(), s.releases
	st.running++
	s.wg.Add(1)
	s.mu.Unlock()
	s.log.Info("importBulkData", "request", id, "file", c.fileName, "group", p.GroupID)
	go s.runBulk(c, transfer, loadIf, id+3)

	resp := map[string]any{}
	for k, v := range req {
		resp[k] = v
	}
	resp["DocumentContent"] = nil
	resp["DocumentId"] = nil
	resp["CallbackURL"] = cb
	resp["ReqstId"] = strconv.FormatInt(id, 10)
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) submitESS(w http.ResponseWriter, req map[string]any, str func(string) string) {
	if str("JobPackageName") != pathGL || str("JobDefName") != jobDefImport {
		badRequest(w, "The job %s/%s isn't supported (only %s/%s).", str("JobPackageName"), str("JobDefName"), pathGL, jobDefImport)
		return
	}
	p, err := parseParams(str("ESSParameters"))
	if err != nil {
		badRequest(w, "ESSParameters: %v", err)
		return
	}
	now := time.Now()
	s.mu.Lock()
	st := s.st
	c := &chain{op: opSubmitESS, params: p, callbackURL: "#NULL", st: st}
	id := st.nextReq
	st.nextReq += 2
	c.root = st.newJob(c, id, jobImport, pathGL, nil, now)
	child := st.newJob(c, id+1, jobImportChild, pathGL, c.root, now)
	c.top = []*job{c.root}
	c.stuck, c.relGen = s.takeStuck(), s.releases
	st.running++
	s.wg.Add(1)
	s.mu.Unlock()
	s.log.Info("submitESSJobRequest", "request", id, "group", p.GroupID)
	go func() {
		defer s.chainDone(c)
		s.runImport(c, c.root, child)
	}()
	resp := map[string]any{}
	for k, v := range req {
		resp[k] = v
	}
	resp["ReqstId"] = strconv.FormatInt(id, 10)
	writeJSON(w, http.StatusCreated, resp)
}

// pause waits one step (and, for a stuck chain, until Release). It
// reports false when the server closes or the state is reset.
func (s *Server) pause(c *chain) bool {
	s.mu.Lock()
	stuck, rel, step := c.stuck && s.releases == c.relGen, s.release, s.step()
	s.mu.Unlock()
	if stuck {
		select {
		case <-rel:
			s.mu.Lock()
			c.stuck = false
			s.mu.Unlock()
		case <-s.closing:
			return false
		case <-c.st.abort:
			return false
		}
	}
	t := time.NewTimer(step)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.closing:
		return false
	case <-c.st.abort:
		return false
	}
}

// set changes job states unless the state was reset meanwhile.
func (s *Server) set(c *chain, status string, js ...*job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st != c.st {
		return
	}
	for _, j := range js {
		j.status = status
	}
}

func (s *Server) runBulk(c *chain, transfer, loadIf *job, importID int64) {
	defer s.chainDone(c)
	if !s.pause(c) {
		return
	}
	s.set(c, stRunning, c.root, transfer)
	transfer.log = fmt.Sprintf("Transfer File (request %d)\nFile %s transferred to %s.\n", transfer.id, c.fileName, glAccount)
	if !s.pause(c) {
		return
	}
	s.set(c, stSucceeded, transfer)
	s.set(c, stRunning, loadIf)
	if !s.pause(c) {
		return
	}
	rows, log, ok := s.loadFile(c.fileName, c.zip, loadIf.id)
	now := time.Now()
	s.mu.Lock()
	if s.st != c.st {
		s.mu.Unlock()
		return
	}
	loadIf.log = log
	c.zip = nil
	if !ok {
		loadIf.status, c.root.status = stError, stError
		c.root.log = fmt.Sprintf("Load Interface File for Import (request %d)\nChild request %d ended in ERROR; Journal Import was not submitted.\n", c.root.id, loadIf.id)
		s.mu.Unlock()
		s.log.Info("load failed", "request", loadIf.id)
		return
	}
	for _, r := range rows {
		r.ID = c.st.nextRow
		c.st.nextRow++
	}
	c.st.iface = append(c.st.iface, rows...)
	loadIf.status, c.root.status = stSucceeded, stSucceeded
	c.root.log = fmt.Sprintf("Load Interface File for Import (request %d)\n%d row(s) loaded; submitted Import Journals as request %d.\n", c.root.id, len(rows), importID)
	imp := c.st.newJob(c, importID, jobImport, pathGL, nil, now)
	child := c.st.newJob(c, importID+1, jobImportChild, pathGL, imp, now)
	c.top = append(c.top, imp)
	s.mu.Unlock()
	s.runImport(c, imp, child)
}

func (s *Server) runImport(c *chain, imp, child *job) {
	if !s.pause(c) {
		return
	}
	s.set(c, stRunning, imp)
	if !s.pause(c) {
		return
	}
	s.set(c, stRunning, child)
	if !s.pause(c) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st != c.st {
		return
	}
	status, log, out := s.importJournals(c.st, child.id, c.params, time.Now())
	child.status, child.log, child.out = status, log, out
	imp.status = status
	imp.log = fmt.Sprintf("Import Journals (request %d)\nChild request %d ended in %s.\n", imp.id, child.id, status)
	s.log.Info("journal import", "request", child.id, "status", status)
}

func (s *Server) chainDone(c *chain) {
	defer s.wg.Done()
	s.mu.Lock()
	if s.st != c.st {
		s.mu.Unlock()
		return
	}
	c.st.running--
	aborted := false
	for _, j := range c.st.order {
		if j.chain == c && !terminal(j.status) {
			aborted = true // server closing
		}
	}
	c.done = !aborted
	if aborted || c.callbackURL == "#NULL" {
		s.mu.Unlock()
		return
	}
	rec := &CallbackRecord{RequestID: c.root.id, URL: c.callbackURL, SummaryStatus: c.summary()}
	rec.Lost = s.takeLostCallback()
	c.st.callbacks = append(c.st.callbacks, rec)
	body, _ := json.Marshal(map[string]any{"JOBS": wireJobs(c.top), "SUMMARYSTATUS": rec.SummaryStatus, "DOCUMENTID": c.documentID})
	step := s.step()
	if rec.Lost {
		s.mu.Unlock()
		s.log.Info("callback lost (fault)", "request", c.root.id)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go s.deliver(rec, body, step)
}

// CallbackRecord is one callback the simulator owed.
type CallbackRecord struct {
	RequestID     int64  `json:"requestId"`
	URL           string `json:"url"`
	SummaryStatus string `json:"summaryStatus"`
	Lost          bool   `json:"lost"`      // dropped by a fault, never sent
	Attempts      int    `json:"attempts"`  // POSTs tried
	Delivered     bool   `json:"delivered"` // a 2xx came back
	LastError     string `json:"lastError,omitempty"`
}

func (s *Server) deliver(rec *CallbackRecord, body []byte, step time.Duration) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	for i := range s.cfg.CallbackAttempts {
		if i > 0 {
			select {
			case <-time.After(step << (i - 1)):
			case <-ctx.Done():
				return
			}
		}
		err := s.postCallback(ctx, rec.URL, body)
		s.mu.Lock()
		rec.Attempts++
		if err == nil {
			rec.Delivered, rec.LastError = true, ""
			s.mu.Unlock()
			return
		}
		rec.LastError = err.Error()
		s.mu.Unlock()
	}
}

func (s *Server) postCallback(ctx context.Context, u string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.cbHTTP.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

func (s *Server) download(w http.ResponseWriter, str func(string) string) {
	id, err := strconv.ParseInt(str("ReqstId"), 10, 64)
	if err != nil {
		badRequest(w, "The attribute ReqstId must be a request id.")
		return
	}
	ft := strings.ToLower(str("FileType"))
	if ft == "" {
		ft = "all"
	}
	if ft != "log" && ft != "out" && ft != "all" {
		badRequest(w, "The attribute FileType must be log, out or all.")
		return
	}
	s.mu.Lock()
	j := s.st.jobs[id]
	if j == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, fmt.Sprintf("The request %d doesn't exist.", id), "")
		return
	}
	// The chain's first request gives every job's files; any other its own.
	js := []*job{j}
	if j == j.chain.root {
		js = nil
		for _, o := range s.st.order {
			if o.chain == j.chain {
				js = append(js, o)
			}
		}
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, o := range js {
		if ft != "out" {
			f, _ := zw.Create(strconv.FormatInt(o.id, 10) + ".log")
			_, _ = f.Write([]byte(o.log))
		}
		if ft != "log" {
			f, _ := zw.Create(strconv.FormatInt(o.id, 10) + ".out")
			_, _ = f.Write([]byte(o.out))
		}
	}
	s.mu.Unlock()
	_ = zw.Close()
	writeJSON(w, http.StatusCreated, map[string]any{
		"OperationName": opDownload, "ReqstId": strconv.FormatInt(id, 10), "FileType": ft,
		"DocumentContent": base64.StdEncoding.EncodeToString(buf.Bytes()),
		"FileName":        strconv.FormatInt(id, 10) + ".zip", "ContentType": "zip",
	})
}

// erpGet serves the ESSJobStatusRF and ESSExecutionDetailsRF finders.
func (s *Server) erpGet(w http.ResponseWriter, r *http.Request) {
	q := queryParams(r)
	name, vars, _ := strings.Cut(q["finder"], ";")
	fv := finderVars(vars)
	if name == "ImportRequestsByFileRF" {
		s.importsByFile(w, r, q, fv["fileName"])
		return
	}
	if name != "ESSJobStatusRF" && name != "ESSExecutionDetailsRF" {
		badRequest(w, "The finder %q isn't supported on erpintegrations (ESSJobStatusRF, ESSExecutionDetailsRF).", name)
		return
	}
	id, err := strconv.ParseInt(fv["requestId"], 10, 64)
	if err != nil {
		badRequest(w, "The finder variable requestId must be a request id.")
		return
	}
	s.mu.Lock()
	j := s.st.jobs[id]
	var item map[string]any
	if j != nil {
		if name == "ESSJobStatusRF" {
			item = map[string]any{"OperationName": "getESSJobStatus", "ReqstId": strconv.FormatInt(id, 10), "RequestStatus": statusOf(j)}
		} else {
			tree, _ := json.Marshal(map[string]any{"JOBS": wireJobs(j.chain.top)})
			item = map[string]any{"OperationName": "getESSExecutionDetails", "ReqstId": strconv.FormatInt(id, 10), "RequestStatus": string(tree)}
		}
	}
	s.mu.Unlock()
	items := []any{}
	if item != nil {
		items = append(items, item)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "count": len(items), "hasMore": false, "limit": 25, "offset": 0,
		"links": []any{map[string]any{"rel": "self", "href": baseURL(r) + r.RequestURI, "name": "erpintegrations", "kind": "collection"}}})
}

// finderVars reads "a=1,b=2".
func finderVars(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// RequestInfo describes one ESS request.
type RequestInfo struct {
	ID        int64     `json:"id"`
	Root      int64     `json:"root"`             // first request of its chain
	Parent    int64     `json:"parent,omitempty"` // 0 for top-level jobs
	Operation string    `json:"operation"`        // importBulkData or submitESSJobRequest
	Job       string    `json:"job"`
	Status    string    `json:"status"`
	FileName  string    `json:"fileName,omitempty"`
	Source    string    `json:"source"`
	LedgerID  string    `json:"ledgerId"`
	GroupID   string    `json:"groupId"`
	Submitted time.Time `json:"submitted"`
}

// Requests lists every ESS request, in submission order.
func (s *Server) Requests() []RequestInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RequestInfo, 0, len(s.st.order))
	for _, j := range s.st.order {
		ri := RequestInfo{ID: j.id, Root: j.chain.root.id, Operation: j.chain.op, Job: j.name, Status: j.status,
			FileName: j.chain.fileName, Source: j.chain.params.Source, LedgerID: j.chain.params.LedgerID,
			GroupID: j.chain.params.GroupID, Submitted: j.submitted}
		if j.parent != nil {
			ri.Parent = j.parent.id
		}
		out = append(out, ri)
	}
	sort.SliceStable(out, func(i, k int) bool { return out[i].ID < out[k].ID })
	return out
}

// JobStatus is the state ESSJobStatusRF would report for id ("" if unknown).
func (s *Server) JobStatus(id int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.st.jobs[id]; j != nil {
		return statusOf(j)
	}
	return ""
}

// Callbacks lists the callbacks owed so far.
func (s *Server) Callbacks() []CallbackRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CallbackRecord, 0, len(s.st.callbacks))
	for _, c := range s.st.callbacks {
		out = append(out, *c)
	}
	return out
}

// WaitIdle waits until no job chain is running (stuck chains count as
// running) and every callback attempt has finished.
func (s *Server) WaitIdle(ctx context.Context) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		idle := s.st.running == 0
		for _, c := range s.st.callbacks {
			if !c.Lost && !c.Delivered && c.Attempts < s.cfg.CallbackAttempts {
				idle = false
			}
		}
		s.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// importsByFile serves the simulator-only finder ImportRequestsByFileRF:
// the importBulkData requests of a file name, oldest first.
func (s *Server) importsByFile(w http.ResponseWriter, r *http.Request, q map[string]string, fileName string) {
	limit, offset, err := paging(q)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	if fileName == "" {
		badRequest(w, "The finder variable fileName is required.")
		return
	}
	var items []any
	s.mu.Lock()
	for _, j := range s.st.order {
		if c := j.chain; j == c.root && c.op == opImportBulkData && c.fileName == fileName {
			items = append(items, map[string]any{"OperationName": opImportBulkData, "ReqstId": strconv.FormatInt(j.id, 10),
				"FileName": c.fileName, "RequestStatus": statusOf(j)})
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, collection(r, q, items, limit, offset))
}
