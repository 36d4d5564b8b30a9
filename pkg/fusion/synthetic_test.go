package fusion

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The in-repo counterparts of the corpus payload tests: the same parsers
// on testdata/erpintegrations.synthetic.json (written here; other ids, an
// ERROR chain, a RUNNING tree, two error details).

func syntheticPart(t *testing.T, key string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "erpintegrations.synthetic.json"))
	if err != nil {
		t.Fatal(err)
	}
	return payloadPart(t, b, key)
}

func TestParseCallbackSynthetic(t *testing.T) {
	cb, err := ParseCallback(bytes.NewReader(syntheticPart(t, "callback_json_part")))
	if err != nil {
		t.Fatal(err)
	}
	if cb.SummaryStatus != StatusError || cb.DocumentID != "7654321" || len(cb.Jobs) != 2 ||
		cb.Jobs[0].Name != "Load Interface File for Import" || cb.Jobs[0].Document != "SYNHB_20260212_700042.zip" {
		t.Fatalf("%+v", cb)
	}
	if ids := cb.RequestIDs(); strings.Join(ids, ",") != "20400100,20400101,20400102,20400103,20400104" {
		t.Fatalf("ids %v", ids)
	}
	if child, ok := FindJob(cb.Jobs, "Import Journals: Child"); !ok || child.RequestID != "20400104" || child.Status != StatusError {
		t.Fatalf("child %+v", child)
	}
}

func TestExecutionDetailsTreeSynthetic(t *testing.T) {
	var tree struct {
		Jobs []wireJob `json:"JOBS"`
	}
	if err := json.Unmarshal(syntheticPart(t, "executionDetails_RequestStatus_json_string"), &tree); err != nil {
		t.Fatal(err)
	}
	js := jobs(tree.Jobs)
	child, ok := FindJob(js, "Import Journals: Child")
	if !ok || child.RequestID != "20400104" || child.Status != StatusRunning || child.Status.Terminal() {
		t.Fatalf("%+v", child)
	}
	if load, ok := FindJob(js, "Load File to Interface"); !ok || load.RequestID != "20400102" || !load.Status.Terminal() {
		t.Fatalf("%+v", load)
	}
}

func TestReadErrorSynthetic(t *testing.T) {
	resp := &http.Response{StatusCode: 400, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(syntheticPart(t, "rest_error_400_example")))}
	e := readError(resp)
	if e.Title != "Bad Request" || len(e.Details) != 2 || e.Details[0].Code != "SYNTH-0042" || e.Details[1].Code != "SYNTH-0043" || e.Temporary() {
		t.Fatalf("%+v", e)
	}
	resp = &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {"7"}}, Body: io.NopCloser(strings.NewReader("Service down"))}
	e = readError(resp)
	if e.Detail != "Service down" || e.RetryAfter != 7*time.Second || !e.Temporary() || !IsTemporary(e) {
		t.Fatalf("%+v", e)
	}
}
