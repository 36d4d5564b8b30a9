package fusion

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/corpus"
	"github.com/sinewhq/sinew/pkg/money"
)

// The end-to-end tests of this client run against fusionsim's handler in
// services/fusionsim (a module that depends on this one). These cover
// parsing against the conformance corpus's payload shapes (skipped
// without ../shared) and the in-repo synthetic ones (synthetic_test.go).

func corpusPart(t *testing.T, key string) []byte {
	t.Helper()
	return payloadPart(t, corpus.ReadFile(t, "fusion/erpintegrations_payloads.synthetic.json"), key)
}

// payloadPart returns one named payload of a file of example payloads.
func payloadPart(t *testing.T, b []byte, key string) []byte {
	t.Helper()
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	if all[key] == nil {
		t.Fatalf("payloads have no %s", key)
	}
	return all[key]
}

func TestParseCallbackCorpus(t *testing.T) {
	cb, err := ParseCallback(bytes.NewReader(corpusPart(t, "callback_json_part")))
	if err != nil {
		t.Fatal(err)
	}
	if cb.SummaryStatus != StatusSucceeded || cb.DocumentID != "1234567" || len(cb.Jobs) != 1 ||
		cb.Jobs[0].Name != "Load Interface File for Import" || cb.Jobs[0].Document != "EPICHB_20260115_700001.zip" {
		t.Fatalf("%+v", cb)
	}
	if ids := cb.RequestIDs(); strings.Join(ids, ",") != "10075838,10075840" {
		t.Fatalf("ids %v", ids)
	}
}

func TestParseCallbackErrors(t *testing.T) {
	for _, in := range []string{"", "{", `{"JOBS":[]}`, `[]`} {
		if _, err := ParseCallback(strings.NewReader(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
	cb, err := ParseCallback(strings.NewReader(`{"JOBS":[{"JOBNAME":"x","REQUESTID":"1","STATUS":"ERROR"}],"SUMMARYSTATUS":"ERROR","DOCUMENTID":42}`))
	if err != nil || cb.DocumentID != "42" || cb.SummaryStatus != StatusError {
		t.Fatalf("%+v %v", cb, err)
	}
}

func TestExecutionDetailsTreeCorpus(t *testing.T) {
	var tree struct {
		Jobs []wireJob `json:"JOBS"`
	}
	if err := json.Unmarshal(corpusPart(t, "executionDetails_RequestStatus_json_string"), &tree); err != nil {
		t.Fatal(err)
	}
	js := jobs(tree.Jobs)
	child, ok := FindJob(js, "Import Journals: Child")
	if !ok || child.RequestID != "10075842" || child.Status != StatusWarning || !child.Status.Terminal() {
		t.Fatalf("%+v", child)
	}
}

func TestReadErrorCorpus(t *testing.T) {
	resp := &http.Response{StatusCode: 400, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(corpusPart(t, "rest_error_400_example")))}
	e := readError(resp)
	if e.Title != "Bad Request" || len(e.Details) != 1 || e.Details[0].Code != "EXAMPLE-0001" || e.Temporary() {
		t.Fatalf("%+v", e)
	}
	resp = &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {"7"}}, Body: io.NopCloser(strings.NewReader("Service down"))}
	e = readError(resp)
	if e.Detail != "Service down" || e.RetryAfter != 7*time.Second || !e.Temporary() || !IsTemporary(e) {
		t.Fatalf("%+v", e)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"120", 2 * time.Minute},
		{" 3 ", 3 * time.Second},
		{"0", 0},
		{"-1", 0},
		{"Thu, 15 Jan 2026 10:00:30 GMT", 30 * time.Second},
		{"Thu, 15 Jan 2026 09:00:00 GMT", 0},
		{"soon", 0},
	} {
		if got := ParseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestIsTemporary(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&Error{StatusCode: 429}, true},
		{&Error{StatusCode: 408}, true},
		{&Error{StatusCode: 502}, true},
		{&Error{StatusCode: 400}, false},
		{&Error{StatusCode: 401}, false},
		{errors.New("dial tcp: connection refused"), true},
		{&ProtocolError{Op: "x", Err: errors.New("bad")}, false},
		{nil, false},
	} {
		if got := IsTemporary(tc.err); got != tc.want {
			t.Errorf("%v: %v", tc.err, got)
		}
	}
}

func TestParseImportReport(t *testing.T) {
	out := "Journal Import Execution Report\nRequest ID: 10075842\nTotal: 2 group id(s)\n" +
		"GROUP 700001 POSTED lines=2 batches=1\nGROUP 700002 HELD lines=2 errors=1\n" +
		`ERROR 700002 "EPIC:HB:1:1" "EF04,EC03" "FLEX-VALUE DOES NOT EXIST (SEGMENT=3) (VALUESET=A) (VALUE=9 \"x\")"` + "\n" +
		`WARNING "WU01" "Journal entry is unbalanced"` + "\nEnd of report\n"
	rep, err := ParseImportReport(map[string][]byte{"10075842.out": []byte(out), "10075842.log": []byte("Total: 2 group id(s)")})
	if err != nil {
		t.Fatal(err)
	}
	if rep.RequestID != "10075842" || rep.Groups != 2 || len(rep.Posted) != 1 || rep.Held[0] != 700002 ||
		len(rep.Errors) != 1 || rep.Errors[0].Code != "EF04,EC03" || !strings.HasSuffix(rep.Errors[0].Text, `(VALUE=9 "x")`) ||
		len(rep.Warnings) != 1 || rep.Warnings[0] != "WU01: Journal entry is unbalanced" {
		t.Fatalf("%+v", rep)
	}
	// Only a log: the group count still comes through (the 0-group trap).
	rep, err = ParseImportReport(map[string][]byte{"5.log": []byte("...\nTotal: 0 group id(s)\n")})
	if err != nil || rep.Groups != 0 || rep.RequestID != "5" {
		t.Fatalf("%+v %v", rep, err)
	}
	if _, err := ParseImportReport(map[string][]byte{"5.out": []byte("something else")}); err == nil {
		t.Fatal("no error without a report")
	}
	if _, err := ParseImportReport(map[string][]byte{"5.out": []byte(ReportTitle + "\nERROR x\n")}); err == nil {
		t.Fatal("no error on a malformed report")
	}
}

func TestAmountsNeverFloat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want money.Amount
	}{{"1234.50", 123450}, {"0.1", 10}, {"-3.20", -320}, {"1250.000", 125000}, {"", 0}, {"90071992547409.93", 9007199254740993}} {
		got, err := optAmount(json.Number(tc.in))
		if err != nil || got != tc.want {
			t.Errorf("%q: %v %v", tc.in, got, err)
		}
	}
	if _, err := optAmount("1e3"); err == nil {
		t.Error("exponent accepted")
	}
}

func TestQueryEscape(t *testing.T) {
	got := query("q", "BatchName='B 1';GroupId=7", "finder", "ESSJobStatusRF;requestId=1", "empty", "")
	if got != "q=BatchName='B%201';GroupId=7&finder=ESSJobStatusRF;requestId=1" {
		t.Fatal(got)
	}
}

func TestNewConfig(t *testing.T) {
	for _, cfg := range []Config{{}, {BaseURL: "ftp://x", Username: "u"}, {BaseURL: "http://x"}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := New(Config{BaseURL: "http://x/", BearerToken: "t"}); err != nil {
		t.Fatal(err)
	}
}

func TestSplitAccount(t *testing.T) {
	if got := strings.Join(splitAccount("101-1000-11010"), "|"); got != "101|1000|11010" {
		t.Fatal(got)
	}
	if got := strings.Join(splitAccount("101.1000"), "|"); got != "101|1000" {
		t.Fatal(got)
	}
}

func TestStagedStatusWire(t *testing.T) {
	tests := []struct {
		name, payload string
		want          StagedStatus
		wantErr       bool
	}{
		{"accepted", `{"TransactionInterfaceId":300000001,"ItemNumber":"RX-1","ProcessFlag":1,"ErrorCode":null,"lots":{"items":[]}}`,
			StagedStatus{TransactionInterfaceID: 300000001, ProcessFlag: 1}, false},
		{"in error", `{"TransactionInterfaceId":"7","ProcessFlag":"3","ErrorCode":"INV_INVALID_ITEM","ErrorExplanation":"no such item"}`,
			StagedStatus{TransactionInterfaceID: 7, ProcessFlag: 3, ErrorCode: "INV_INVALID_ITEM", ErrorExplanation: "no such item"}, false},
		{"no id", `{"ProcessFlag":1}`, StagedStatus{}, true},
		{"not JSON", `<html>`, StagedStatus{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w stagedStatusWire
			err := json.Unmarshal([]byte(tt.payload), &w)
			var got StagedStatus
			if err == nil {
				got, err = w.status()
			}
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %+v, %v; want %+v (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
