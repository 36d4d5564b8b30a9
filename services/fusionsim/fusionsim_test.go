package fusionsim_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/corpus"
	"github.com/sinewhq/sinew/pkg/fbdi"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/services/fusionsim"
)

const (
	ledgerID = "300000000000001"
	dasID    = "300000000000010"
	source   = "Epic Resolute"
)

// env is a simulator on a real HTTP server and a client of it.
type env struct {
	sim *fusionsim.Server
	hs  *httptest.Server
	c   *fusion.Client
}

func newEnv(t *testing.T, mod func(*fusionsim.SimConfig)) *env {
	t.Helper()
	cfg := fusionsim.DefaultSimConfig()
	cfg.Step = 2 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	sim, err := fusionsim.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim.Handler())
	t.Cleanup(hs.Close)
	t.Cleanup(sim.Close) // runs first: ends hanging fault handlers
	c, err := fusion.New(fusion.Config{BaseURL: hs.URL, Username: "sinew", Password: "sinew", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &env{sim: sim, hs: hs, c: c}
}

func (e *env) wait(t *testing.T, id string) fusion.JobStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st, err := e.c.JobStatus(context.Background(), id)
		if err != nil {
			t.Fatalf("JobStatus(%s): %v", id, err)
		}
		if st.Terminal() {
			return st
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("request %s did not finish", id)
	return ""
}

// row is one GL_INTERFACE line for tests that need lines the fbdi Writer
// refuses (unbalanced, malformed, foreign values).
type row struct {
	group      int64
	batch      string
	journal    string
	ref21      string
	account    string // dash-separated segments
	dr, cr     string
	source     string
	category   string
	dateCreate string
	fields     int // 0: 149
}

func (r row) csv() string {
	n := r.fields
	if n == 0 {
		n = fbdi.NumColumns
	}
	f := make([]string, max(n, fbdi.NumColumns))
	f[0], f[1], f[2] = "NEW", ledgerID, "2026/01/15"
	f[3], f[4], f[5] = source, "Revenue", "USD"
	if r.source != "" {
		f[3] = r.source
	}
	if r.category != "" {
		f[4] = r.category
	}
	f[6], f[7] = "2026/01/15", "A"
	if r.dateCreate != "" {
		f[6] = r.dateCreate
	}
	if r.dateCreate == "-" {
		f[6] = ""
	}
	for i, s := range strings.Split(r.account, "-") {
		f[8+i] = s
	}
	f[38], f[39] = r.dr, r.cr
	f[42], f[45], f[51], f[52] = r.batch, r.journal, "line", r.ref21
	f[66] = strconv.FormatInt(r.group, 10)
	f[94] = "Jan-26"
	return strings.Join(f[:n], ",")
}

func zipCSV(t *testing.T, csv string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("GlInterface.csv")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte(csv))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func rowsZip(t *testing.T, rows ...row) []byte {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r.csv() + "\n")
	}
	return zipCSV(t, b.String())
}

const (
	cash  = "101-1000-11010-000-000"
	rev   = "101-6010-40100-300-000"
	bad   = "101-6010-99999-300-000"
	gA    = 700001
	gB    = 700002
	gNone = 999999
)

func balanced(g int64, batch, journal string, amount string, ref string) []row {
	return []row{
		{group: g, batch: batch, journal: journal, ref21: ref + ":1", account: cash, dr: amount},
		{group: g, batch: batch, journal: journal, ref21: ref + ":2", account: rev, cr: amount},
	}
}

func (e *env) importZip(t *testing.T, file string, zipped []byte, group string) string {
	t.Helper()
	id, err := e.c.ImportBulkData(context.Background(), fusion.ImportRequest{
		FileName: file, Zip: zipped, DataAccessSetID: dasID, Source: source, LedgerID: ledgerID, GroupID: group,
	})
	if err != nil {
		t.Fatalf("ImportBulkData: %v", err)
	}
	return id
}

func (e *env) report(t *testing.T, id string) *fusion.ImportReport {
	t.Helper()
	files, err := e.c.DownloadExecutionDetails(context.Background(), id, "all")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := fusion.ParseImportReport(files)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestHappyPathWithFBDIWriter(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	day := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	group := fbdi.GroupID("resolute:batch-20260115:J0001")
	var buf bytes.Buffer
	w, err := fbdi.NewWriter(&buf, fbdi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range []struct {
		segs  []string
		amt   money.Amount
		debit bool
	}{{[]string{"101", "1000", "11010", "000", "000"}, 123450, true}, {[]string{"101", "6010", "40100", "300", "000"}, 123450, false}} {
		line := &fbdi.Line{LedgerID: ledgerID, AccountingDate: day, DateCreated: day, Source: source, Category: "Revenue",
			Currency: "USD", Segments: l.segs, BatchName: "EPICHB-20260115-B0001", JournalName: "EPICHB-20260115-J0001",
			Reference21: "EPIC:HB:1:" + strconv.Itoa(i+1), GroupID: group, LineDescription: "rev"}
		if l.debit {
			line.EnteredDR, line.HasDR = l.amt, true
		} else {
			line.EnteredCR, line.HasCR = l.amt, true
		}
		if err := w.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	id := e.importZip(t, "EPICHB_20260115.zip", buf.Bytes(), strconv.FormatInt(group, 10))
	if st := e.wait(t, id); st != fusion.StatusSucceeded {
		t.Fatalf("status %s", st)
	}
	jobs, err := e.c.ExecutionDetails(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.ParseInt(id, 10, 64)
	want := map[string]int64{"Load Interface File for Import": n, "Transfer File": n + 1, "Load File to Interface": n + 2,
		"Import Journals": n + 3, "Import Journals: Child": n + 4}
	for name, wid := range want {
		j, ok := fusion.FindJob(jobs, name)
		if !ok || j.RequestID != strconv.FormatInt(wid, 10) || j.Status != fusion.StatusSucceeded {
			t.Errorf("job %s: %+v (found %v), want id %d SUCCEEDED", name, j, ok, wid)
		}
	}
	child, _ := fusion.FindJob(jobs, "Import Journals: Child")
	rep := e.report(t, child.RequestID)
	if rep.Groups != 1 || len(rep.Errors) != 0 || len(rep.Posted) != 1 || rep.Posted[0] != group {
		t.Fatalf("report %+v", rep)
	}
	batches, err := e.c.JournalBatches(ctx, fusion.JournalBatchQuery{Source: source, GroupID: group})
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 1 || batches[0].Name != "EPICHB-20260115-B0001" || batches[0].GroupID != group || len(batches[0].Journals) != 1 {
		t.Fatalf("batches %+v", batches)
	}
	lines := batches[0].Journals[0].Lines
	if len(lines) != 2 || lines[0].DR != 123450 || lines[1].CR != 123450 || lines[0].Reference21 != "EPIC:HB:1:1" ||
		lines[0].Account != cash || strings.Join(lines[1].Segments, ".") != "101.6010.40100.300.000" {
		t.Fatalf("lines %+v", lines)
	}
	bal, err := e.c.LedgerBalances(ctx, fusion.LedgerBalanceQuery{Ledger: "US Primary Ledger", Period: "Jan-26", Currency: "USD", Account: "101-%-%-%-%"})
	if err != nil {
		t.Fatal(err)
	}
	if len(bal) != 2 || bal[0].Account != cash || bal[0].Activity != 123450 || bal[0].Ending != 123450 || bal[1].Activity != -123450 {
		t.Fatalf("balances %+v", bal)
	}
	if got := e.sim.GroupImports()[group]; got.Posted != 1 || got.Imports != 1 {
		t.Fatalf("group stats %+v", got)
	}
	if rows := e.sim.InterfaceRows(); len(rows) != 0 {
		t.Fatalf("interface keeps %d rows", len(rows))
	}
}

// corpusChart accepts the corpus file's six segments except account 99999.
const corpusChart = "company,cc,account,product,interco,future\n" +
	"101,1000,11010,000,0000,000\n101,6010,40100,300,0000,000\n101,6020,40100,300,0000,000\n"

func TestCorpusFileBadAccountHoldsGroup(t *testing.T) {
	csv := corpus.ReadFile(t, "fusion/GlInterface.synthetic.csv")
	e := newEnv(t, func(c *fusionsim.SimConfig) {
		c.ChartCSV = corpusChart
		c.Sources = []string{"Epic Resolute HB"}
	})
	ctx := context.Background()
	id, err := e.c.ImportBulkData(ctx, fusion.ImportRequest{FileName: "EPICHB_20260115_700001.zip", Zip: zipCSV(t, string(csv)),
		Source: "Epic Resolute HB", LedgerID: ledgerID, GroupID: "700001"})
	if err != nil {
		t.Fatal(err)
	}
	if st := e.wait(t, id); st != fusion.StatusWarning {
		t.Fatalf("status %s, want WARNING", st)
	}
	rep := e.report(t, id) // the chain's first request gives every job's files
	if rep.Groups != 1 || len(rep.Held) != 1 || len(rep.Errors) != 1 {
		t.Fatalf("report %+v", rep)
	}
	le := rep.Errors[0]
	if le.GroupID != 700001 || le.Reference21 != "EPIC:HB:20260115:0002:1" || le.Code != "EF04" ||
		le.Text != "FLEX-VALUE DOES NOT EXIST (SEGMENT=3) (VALUESET=ACCOUNT) (VALUE=99999)" {
		t.Fatalf("error %+v", le)
	}
	files, _ := e.c.DownloadExecutionDetails(ctx, strconv.Itoa(mustAtoi(id)+4), "log")
	if !bytes.Contains(files[strconv.Itoa(mustAtoi(id)+4)+".log"], []byte("LEZL0010: Deleting journal entry error lines")) {
		t.Fatalf("log: %q", files)
	}
	rows := e.sim.InterfaceRows()
	statuses := map[string]string{}
	for _, r := range rows {
		statuses[r.Reference21] = r.Status
	}
	if len(rows) != 4 || statuses["EPIC:HB:20260115:0002:1"] != "EF04" || statuses["EPIC:HB:20260115:0001:1"] != "P" {
		t.Fatalf("interface %v", statuses)
	}
	if len(e.sim.JournalBatches()) != 0 {
		t.Fatal("a held group made a batch")
	}
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

// Sinew's pattern: one upload, the first group through importBulkData,
// the others through submitESSJobRequest.
func TestBadLineHoldsOnlyItsGroup(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	rows := balanced(gA, "B-A", "J-A", "100.00", "A")
	rows = append(rows, row{group: gB, batch: "B-B", journal: "J-B", ref21: "B:1", account: bad, dr: "10.00"},
		row{group: gB, batch: "B-B", journal: "J-B", ref21: "B:2", account: cash, cr: "10.00"})
	id := e.importZip(t, "two.zip", rowsZip(t, rows...), strconv.Itoa(gA))
	if st := e.wait(t, id); st != fusion.StatusSucceeded {
		t.Fatalf("first group: %s", st)
	}
	id2, err := e.c.SubmitJournalImport(ctx, fusion.JournalImportParams{DataAccessSetID: dasID, Source: source, LedgerID: ledgerID, GroupID: strconv.Itoa(gB)})
	if err != nil {
		t.Fatal(err)
	}
	if st := e.wait(t, id2); st != fusion.StatusWarning {
		t.Fatalf("second group: %s", st)
	}
	jobs, err := e.c.ExecutionDetails(ctx, id2)
	if err != nil || len(jobs) != 1 || jobs[0].Name != "Import Journals" || len(jobs[0].Children) != 1 {
		t.Fatalf("jobs %+v %v", jobs, err)
	}
	rep := e.report(t, jobs[0].Children[0].RequestID)
	if rep.Groups != 1 || len(rep.Held) != 1 || rep.Held[0] != gB || len(rep.Errors) != 1 || rep.Errors[0].Reference21 != "B:1" ||
		!strings.Contains(rep.Errors[0].Text, "(SEGMENT=3) (VALUESET=SINEW_ACCOUNT) (VALUE=99999)") {
		t.Fatalf("report %+v", rep)
	}
	stats := e.sim.GroupImports()
	if stats[gA].Posted != 1 || stats[gB].Posted != 0 || stats[gB].Held != 1 {
		t.Fatalf("stats %+v", stats)
	}
	got, err := e.c.JournalBatches(ctx, fusion.JournalBatchQuery{Source: source})
	if err != nil || len(got) != 1 || got[0].GroupID != gA {
		t.Fatalf("batches %+v %v", got, err)
	}
}

func TestZeroGroupTrap(t *testing.T) {
	e := newEnv(t, nil)
	id := e.importZip(t, "trap.zip", rowsZip(t, balanced(gA, "B", "J", "5.00", "T")...), strconv.Itoa(gNone))
	if st := e.wait(t, id); st != fusion.StatusSucceeded {
		t.Fatalf("status %s: the trap is that it still succeeds", st)
	}
	rep := e.report(t, strconv.Itoa(mustAtoi(id)+4))
	if rep.Groups != 0 {
		t.Fatalf("groups %d", rep.Groups)
	}
	// The log alone says it too.
	files, err := e.c.DownloadExecutionDetails(context.Background(), strconv.Itoa(mustAtoi(id)+4), "log")
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := fusion.ParseImportReport(files); err != nil || rep.Groups != 0 {
		t.Fatalf("log report %+v %v", rep, err)
	}
	rows := e.sim.InterfaceRows()
	if len(rows) != 2 || rows[0].Status != "NEW" || len(e.sim.JournalBatches()) != 0 {
		t.Fatalf("rows %+v", rows)
	}
}

func TestMalformedFileFailsLoad(t *testing.T) {
	good := balanced(gA, "B", "J", "1.00", "M")
	for _, tc := range []struct {
		name string
		zip  func(t *testing.T) []byte
	}{
		{"95 fields", func(t *testing.T) []byte {
			return rowsZip(t, good[0], row{group: gA, account: rev, cr: "1.00", fields: 95})
		}},
		{"empty DATE_CREATED", func(t *testing.T) []byte {
			return rowsZip(t, good[0], row{group: gA, account: rev, cr: "1.00", dateCreate: "-"})
		}},
		{"bad date", func(t *testing.T) []byte {
			return rowsZip(t, good[0], row{group: gA, account: rev, cr: "1.00", dateCreate: "2026-01-15"})
		}},
		{"bad amount", func(t *testing.T) []byte { return rowsZip(t, good[0], row{group: gA, account: rev, cr: "1,00"}) }},
		{"not a zip", func(t *testing.T) []byte { return []byte("plain text") }},
		{"no csv", func(t *testing.T) []byte {
			var b bytes.Buffer
			zw := zip.NewWriter(&b)
			_, _ = zw.Create("readme.txt")
			_ = zw.Close()
			return b.Bytes()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			id := e.importZip(t, "bad.zip", tc.zip(t), strconv.Itoa(gA))
			if st := e.wait(t, id); st != fusion.StatusError {
				t.Fatalf("status %s, want ERROR", st)
			}
			jobs, _ := e.c.ExecutionDetails(context.Background(), id)
			if j, ok := fusion.FindJob(jobs, "Load File to Interface"); !ok || j.Status != fusion.StatusError {
				t.Fatalf("jobs %+v", jobs)
			}
			if _, ok := fusion.FindJob(jobs, "Import Journals"); ok {
				t.Fatal("import submitted after a failed load")
			}
			if n := len(e.sim.InterfaceRows()); n != 0 {
				t.Fatalf("%d rows loaded", n)
			}
		})
	}
}

func TestUnbalancedAccepted(t *testing.T) {
	e := newEnv(t, nil)
	id := e.importZip(t, "unbal.zip", rowsZip(t,
		row{group: gA, batch: "B", journal: "J", ref21: "U:1", account: cash, dr: "10.00"},
		row{group: gA, batch: "B", journal: "J", ref21: "U:2", account: rev, cr: "7.50"}), strconv.Itoa(gA))
	if st := e.wait(t, id); st != fusion.StatusSucceeded {
		t.Fatalf("status %s", st)
	}
	rep := e.report(t, id)
	if len(rep.Warnings) != 1 || !strings.HasPrefix(rep.Warnings[0], "WU01: ") || len(rep.Posted) != 1 {
		t.Fatalf("report %+v", rep)
	}
	if b := e.sim.JournalBatches(); len(b) != 1 {
		t.Fatalf("batches %d", len(b))
	}
}

func TestUnknownCategory(t *testing.T) {
	e := newEnv(t, nil)
	id := e.importZip(t, "cat.zip", rowsZip(t,
		row{group: gA, batch: "B", journal: "J", ref21: "C:1", account: cash, dr: "1.00", category: "Nope"},
		row{group: gA, batch: "B", journal: "J", ref21: "C:2", account: bad, cr: "1.00", category: "Nope"}), strconv.Itoa(gA))
	if st := e.wait(t, id); st != fusion.StatusWarning {
		t.Fatalf("status %s", st)
	}
	rep := e.report(t, id)
	if len(rep.Errors) != 2 || rep.Errors[1].Code != "EJ01,EF04" {
		t.Fatalf("errors %+v", rep.Errors)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	// A bad ParameterList never reaches Fusion through the client, so post raw.
	body := `{"OperationName":"importBulkData","DocumentContent":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==","ContentType":"zip","FileName":"x.zip",` +
		`"DocumentAccount":"fin$/payables$/import$","JobName":"/oracle/apps/ess/financials/generalLedger/programs/common,JournalImportLauncher",` +
		`"ParameterList":"#NULL,Epic Resolute,300000000000001,1,N,N,N"}`
	req, _ := http.NewRequest(http.MethodPost, e.hs.URL+fusionsim.APIPath+"/erpintegrations", strings.NewReader(body))
	req.SetBasicAuth("sinew", "sinew")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Title   string `json:"title"`
		Details []struct {
			Detail string `json:"detail"`
		} `json:"o:errorDetails"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&env)
	resp.Body.Close()
	if resp.StatusCode != 400 || env.Title != "Bad Request" || len(env.Details) != 1 || !strings.Contains(env.Details[0].Detail, "document account") {
		t.Fatalf("%d %+v", resp.StatusCode, env)
	}
	// A group id that is neither digits nor ALL is refused by Fusion.
	_, err = e.c.SubmitJournalImport(ctx, fusion.JournalImportParams{Source: source, LedgerID: ledgerID, GroupID: "G1"})
	var fe *fusion.Error
	if !errors.As(err, &fe) || fe.StatusCode != 400 || fe.Temporary() || len(fe.Details) != 1 {
		t.Fatalf("err %v", err)
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t, func(c *fusionsim.SimConfig) { c.BearerTokens = []string{"tok-1"} })
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cfg  fusion.Config
		ok   bool
	}{
		{"basic", fusion.Config{Username: "sinew", Password: "sinew"}, true},
		{"wrong password", fusion.Config{Username: "sinew", Password: "nope"}, false},
		{"bearer", fusion.Config{BearerToken: "tok-1"}, true},
		{"wrong bearer", fusion.Config{BearerToken: "tok-2"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.BaseURL = e.hs.URL
			c, err := fusion.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.JournalBatches(ctx, fusion.JournalBatchQuery{})
			var fe *fusion.Error
			switch {
			case tc.ok && err != nil:
				t.Fatal(err)
			case !tc.ok && (!errors.As(err, &fe) || fe.StatusCode != 401 || fe.Temporary()):
				t.Fatalf("err %v", err)
			}
		})
	}
	resp, err := http.Get(e.hs.URL + fusionsim.APIPath + "/journalBatches")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
}

func TestHTTPFaults(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		fault fusionsim.HTTPFault
		check func(t *testing.T, err error)
	}{
		{"429 with Retry-After", fusionsim.HTTPFault{Status: 429, RetryAfter: fusionsim.Duration(2 * time.Second), Count: 1},
			func(t *testing.T, err error) {
				var fe *fusion.Error
				if !errors.As(err, &fe) || fe.StatusCode != 429 || fe.RetryAfter != 2*time.Second || !fe.Temporary() {
					t.Fatalf("err %v", err)
				}
			}},
		{"503", fusionsim.HTTPFault{Status: 503, Count: 1}, func(t *testing.T, err error) {
			var fe *fusion.Error
			if !errors.As(err, &fe) || fe.StatusCode != 503 || fe.RetryAfter != time.Second || !fusion.IsTemporary(err) {
				t.Fatalf("err %v", err)
			}
		}},
		{"500", fusionsim.HTTPFault{Status: 500, Count: 1}, func(t *testing.T, err error) {
			var fe *fusion.Error
			if !errors.As(err, &fe) || fe.StatusCode != 500 || !fe.Temporary() {
				t.Fatalf("err %v", err)
			}
		}},
		{"408", fusionsim.HTTPFault{Status: 408, Count: 1}, func(t *testing.T, err error) {
			if !fusion.IsTemporary(err) {
				t.Fatalf("err %v", err)
			}
		}},
		{"401", fusionsim.HTTPFault{Status: 401, Count: 1}, func(t *testing.T, err error) {
			var fe *fusion.Error
			if !errors.As(err, &fe) || fe.StatusCode != 401 || fusion.IsTemporary(err) {
				t.Fatalf("err %v", err)
			}
		}},
		{"timeout", fusionsim.HTTPFault{Timeout: true, Hang: fusionsim.Duration(50 * time.Millisecond), Count: 1}, func(t *testing.T, err error) {
			var fe *fusion.Error
			if err == nil || errors.As(err, &fe) || !fusion.IsTemporary(err) {
				t.Fatalf("err %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			if err := e.sim.SetFaults(fusionsim.Faults{HTTP: []fusionsim.HTTPFault{tc.fault}}); err != nil {
				t.Fatal(err)
			}
			_, err := e.c.JobStatus(ctx, "1")
			tc.check(t, err)
			// Count 1: the next request goes through.
			if _, err := e.c.JournalBatches(ctx, fusion.JournalBatchQuery{}); err != nil {
				t.Fatalf("after the fault: %v", err)
			}
		})
	}
}

// A fault after the effect: Fusion took the upload, the caller got a 500.
// The upload can be found by file name instead of being sent twice.
func TestFaultAfterEffect(t *testing.T) {
	e := newEnv(t, func(c *fusionsim.SimConfig) {
		c.Faults.HTTP = []fusionsim.HTTPFault{{Status: 500, After: true, Operation: "importBulkData", Count: 1}}
	})
	ctx := context.Background()
	_, err := e.c.ImportBulkData(ctx, fusion.ImportRequest{FileName: "lost.zip", Zip: rowsZip(t, balanced(gA, "B", "J", "3.00", "L")...),
		Source: source, LedgerID: ledgerID, GroupID: strconv.Itoa(gA)})
	if !fusion.IsTemporary(err) {
		t.Fatalf("err %v", err)
	}
	ids, err := e.c.FindImportRequests(ctx, "lost.zip")
	if err != nil || len(ids) != 1 {
		t.Fatalf("ids %v %v", ids, err)
	}
	e.wait(t, ids[0])
	if got := e.sim.GroupImports()[gA].Posted; got != 1 {
		t.Fatalf("posted %d", got)
	}
}

func TestFaultRateDeterministic(t *testing.T) {
	run := func() []bool {
		e := newEnv(t, func(c *fusionsim.SimConfig) {
			c.Seed = 42
			c.Faults.HTTP = []fusionsim.HTTPFault{{Status: 503, Rate: 0.5, Path: "/journalBatches"}}
		})
		var out []bool
		for range 20 {
			_, err := e.c.JournalBatches(context.Background(), fusion.JournalBatchQuery{})
			out = append(out, err != nil)
		}
		return out
	}
	a, b := run(), run()
	fails := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("run differs at %d", i)
		}
		if a[i] {
			fails++
		}
	}
	if fails == 0 || fails == 20 {
		t.Fatalf("%d failures of 20 at rate 0.5", fails)
	}
}

func TestCallbacks(t *testing.T) {
	var mu sync.Mutex
	var got []*fusion.Callback
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cb, err := fusion.ParseCallback(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		got = append(got, cb)
		mu.Unlock()
	}))
	defer recv.Close()
	e := newEnv(t, func(c *fusionsim.SimConfig) { c.Faults.LoseCallbacks = 1 })
	ctx := context.Background()
	submit := func(group int64, file string) string {
		id, err := e.c.ImportBulkData(ctx, fusion.ImportRequest{FileName: file, Zip: rowsZip(t, balanced(group, "B", "J", "2.00", file)...),
			Source: source, LedgerID: ledgerID, GroupID: strconv.FormatInt(group, 10), CallbackURL: recv.URL + "/cb"})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	lost := submit(gA, "a.zip")
	e.wait(t, lost)
	delivered := submit(gB, "b.zip")
	e.wait(t, delivered)
	if err := e.sim.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("%d callbacks received, want 1 (one lost)", len(got))
	}
	cb := got[0]
	ids := cb.RequestIDs()
	if cb.SummaryStatus != fusion.StatusSucceeded || len(ids) != 5 || ids[0] != delivered || cb.DocumentID == "" {
		t.Fatalf("callback %+v ids %v", cb, ids)
	}
	recs := e.sim.Callbacks()
	if len(recs) != 2 || !recs[0].Lost || !recs[1].Delivered {
		t.Fatalf("records %+v", recs)
	}
}

func TestCallbackRetried(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			w.WriteHeader(503)
		}
	}))
	defer recv.Close()
	e := newEnv(t, nil)
	id, err := e.c.ImportBulkData(context.Background(), fusion.ImportRequest{FileName: "r.zip", Zip: rowsZip(t, balanced(gA, "B", "J", "2.00", "R")...),
		Source: source, LedgerID: ledgerID, GroupID: strconv.Itoa(gA), CallbackURL: recv.URL})
	if err != nil {
		t.Fatal(err)
	}
	e.wait(t, id)
	if err := e.sim.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if recs := e.sim.Callbacks(); len(recs) != 1 || recs[0].Attempts != 2 || !recs[0].Delivered {
		t.Fatalf("records %+v", recs)
	}
}

func TestReadLag(t *testing.T) {
	e := newEnv(t, func(c *fusionsim.SimConfig) { c.ReadLag = 300 * time.Millisecond })
	ctx := context.Background()
	id := e.importZip(t, "lag.zip", rowsZip(t, balanced(gA, "B", "J", "9.99", "G")...), strconv.Itoa(gA))
	e.wait(t, id)
	q := fusion.JournalBatchQuery{GroupID: gA}
	if b, err := e.c.JournalBatches(ctx, q); err != nil || len(b) != 0 {
		t.Fatalf("visible before the lag: %v %v", b, err)
	}
	bq := fusion.LedgerBalanceQuery{Ledger: "US Primary Ledger", Period: "Jan-26", Currency: "USD", Account: cash}
	if b, err := e.c.LedgerBalances(ctx, bq); err != nil || len(b) != 1 || b[0].Ending != 0 {
		t.Fatalf("balance before the lag: %+v %v", b, err)
	}
	time.Sleep(350 * time.Millisecond)
	if b, err := e.c.JournalBatches(ctx, q); err != nil || len(b) != 1 {
		t.Fatalf("after the lag: %v %v", b, err)
	}
	if b, err := e.c.LedgerBalances(ctx, bq); err != nil || len(b) != 1 || b[0].Ending != 999 {
		t.Fatalf("balance after the lag: %+v %v", b, err)
	}
}

func TestPagingAndExpandedChildren(t *testing.T) {
	e := newEnv(t, func(c *fusionsim.SimConfig) { c.ExpandLimit = 1 })
	var rows []row
	for g := int64(1); g <= 7; g++ {
		rows = append(rows, balanced(g, "B"+strconv.FormatInt(g, 10), "J1", "1.00", "P"+strconv.FormatInt(g, 10))...)
		rows = append(rows, balanced(g, "B"+strconv.FormatInt(g, 10), "J2", "2.00", "Q"+strconv.FormatInt(g, 10))...)
	}
	id := e.importZip(t, "many.zip", rowsZip(t, rows...), "ALL")
	if st := e.wait(t, id); st != fusion.StatusSucceeded {
		t.Fatal(st)
	}
	c, _ := fusion.New(fusion.Config{BaseURL: e.hs.URL, Username: "sinew", Password: "sinew", PageSize: 2})
	got, err := c.JournalBatches(context.Background(), fusion.JournalBatchQuery{Source: source})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 {
		t.Fatalf("%d batches", len(got))
	}
	for _, b := range got {
		if len(b.Journals) != 2 || len(b.Journals[0].Lines) != 2 || len(b.Journals[1].Lines) != 2 || b.Journals[1].Lines[1].CR != 200 {
			t.Fatalf("batch %+v", b)
		}
	}
	// q by batch name.
	one, err := c.JournalBatches(context.Background(), fusion.JournalBatchQuery{BatchName: "B3"})
	if err != nil || len(one) != 1 || one[0].GroupID != 3 {
		t.Fatalf("%+v %v", one, err)
	}
}

func TestStuckJobs(t *testing.T) {
	e := newEnv(t, func(c *fusionsim.SimConfig) { c.Faults.StuckJobs = 1 })
	id := e.importZip(t, "stuck.zip", rowsZip(t, balanced(gA, "B", "J", "1.00", "S")...), strconv.Itoa(gA))
	time.Sleep(50 * time.Millisecond)
	if st, err := e.c.JobStatus(context.Background(), id); err != nil || st.Terminal() {
		t.Fatalf("stuck chain: %s %v", st, err)
	}
	e.sim.Release()
	if st := e.wait(t, id); st != fusion.StatusSucceeded {
		t.Fatal(st)
	}
}

func TestAdminEndpoints(t *testing.T) {
	e := newEnv(t, nil)
	post := func(path, body string) *http.Response {
		resp, err := http.Post(e.hs.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := post("/sim/faults", `{"http":[{"status":429,"retryAfter":"3s","count":2,"path":"/erpintegrations"}],"readLag":"1s"}`)
	var f fusionsim.Faults
	_ = json.NewDecoder(resp.Body).Decode(&f)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(f.HTTP) != 1 || time.Duration(f.HTTP[0].RetryAfter) != 3*time.Second || time.Duration(f.ReadLag) != time.Second {
		t.Fatalf("%d %+v", resp.StatusCode, f)
	}
	if resp := post("/sim/faults", `{"http":[{"status":200}]}`); resp.StatusCode != 400 {
		t.Fatalf("bad fault accepted: %d", resp.StatusCode)
	}
	_, err := e.c.JobStatus(context.Background(), "1")
	var fe *fusion.Error
	if !errors.As(err, &fe) || fe.StatusCode != 429 || fe.RetryAfter != 3*time.Second {
		t.Fatalf("err %v", err)
	}
	if f := e.sim.Faults(); f.HTTP[0].Hits != 1 {
		t.Fatalf("hits %d", f.HTTP[0].Hits)
	}
	resp = post("/sim/release", "")
	resp.Body.Close()
	resp = post("/sim/reset", "")
	resp.Body.Close()
	if len(e.sim.Requests()) != 0 || len(e.sim.Faults().HTTP) != 0 {
		t.Fatal("reset kept state")
	}
	for _, p := range []string{"/sim/imports", "/sim/interface", "/sim/batches", "/sim/requests", "/sim/callbacks", "/sim/faults", "/sim/health"} {
		resp, err := http.Get(e.hs.URL + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
}

func TestAccountCombinationsAreTheChart(t *testing.T) {
	e := newEnv(t, func(c *fusionsim.SimConfig) {
		c.ChartCSV = "segment1,segment2,segment3\n101,1000,11010\n101,6010,40100\n102,6010,40100\n"
	})
	got, err := e.c.AccountCombinations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"101", "1000", "11010"}, {"101", "6010", "40100"}, {"102", "6010", "40100"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
