package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sinewhq/sinew/pkg/corpus"
)

// refHead is what Parse decoded with encoding/json before scanHead: the
// reference scanHead must agree with.
type refHead struct {
	ResourceType *string `json:"resourceType"`
	ID           *string `json:"id"`
	Meta         *struct {
		VersionID   string `json:"versionId"`
		LastUpdated string `json:"lastUpdated"`
	} `json:"meta"`
	Identifier []struct {
		Value *string `json:"value"`
	} `json:"identifier"`
}

// caseOrEscapeSensitive: inputs where encoding/json's case-insensitive
// or escaped key matching differs from scanHead's exact keys (FHIR's
// element names are case-sensitive); only validity is compared there.
func caseOrEscapeSensitive(b []byte) bool {
	if bytes.IndexByte(b, '\\') >= 0 {
		return true
	}
	low := bytes.ToLower(b)
	for _, k := range []string{"resourcetype", "id", "meta", "versionid", "lastupdated", "identifier", "value"} {
		if bytes.Count(low, []byte(`"`+k+`"`)) != bytes.Count(b, []byte(`"`+k+`"`)) {
			return true
		}
	}
	for _, k := range []string{`"resourceType"`, `"versionId"`, `"lastUpdated"`} {
		if bytes.Count(low, bytes.ToLower([]byte(k))) != bytes.Count(b, []byte(k)) {
			return true
		}
	}
	return false
}

func checkScanHead(t *testing.T, b []byte) {
	t.Helper()
	if len(bytes.TrimLeft(b, " \t\r\n")) == 0 || bytes.TrimLeft(b, " \t\r\n")[0] != '{' {
		return
	}
	h, typePath, err := scanHead(b)
	if valid := json.Valid(b); valid != (err == nil) {
		t.Fatalf("json.Valid %v, scanHead error %v: %q", valid, err, b)
	}
	if err != nil || caseOrEscapeSensitive(b) {
		return
	}
	var ref refHead
	rerr := json.Unmarshal(b, &ref)
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(rerr, &te):
		if typePath != te.Field {
			t.Fatalf("type error at %q, encoding/json says %q: %q", typePath, te.Field, b)
		}
		return
	case rerr != nil:
		t.Fatalf("encoding/json: %v", rerr)
	case typePath != "":
		t.Fatalf("type error at %q, encoding/json none: %q", typePath, b)
	}
	got, _ := json.Marshal(h)
	want, _ := json.Marshal(refHead(h))
	ref2, _ := json.Marshal(ref)
	if !bytes.Equal(want, ref2) {
		t.Fatalf("scanHead %s, encoding/json %s: %q", got, ref2, b)
	}
}

func TestScanHeadAgreesWithEncodingJSON(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.*json")
	// The conformance corpus only adds breadth (required in CI).
	for _, p := range append(files, corpus.Seeds(t, "fhir", "*.json")...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		checkScanHead(t, b)
	}
	for _, in := range []string{
		`{"resourceType":"Patient","id":"a","meta":{"versionId":"1"}}`,
		`{"resourceType":5}`, `{"id":["x"]}`, `{"meta":[]}`, `{"meta":{"versionId":2}}`,
		`{"identifier":{}}`, `{"identifier":[1]}`, `{"identifier":[null,{"value":3}]}`, `{"identifier":[{"value":null}]}`,
		`{"resourceType":null,"id":null,"meta":null,"identifier":null}`, `{"a":1e5,"b":-0.5e-3,"c":[true,false,null]}`,
		`{"a":01}`, `{"a":1.}`, `{"a":"\x01"}`, `{"a":tru}`, `{"a":1}x`, `{"a":1,}`, `{"meta":{"versionId":1},"a":}`,
	} {
		checkScanHead(t, []byte(in))
	}
}

// FuzzScanHead: scanHead agrees with encoding/json on validity, on the
// head fields and on the first wrongly typed head element.
func FuzzScanHead(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.*json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"resourceType":"Patient","id":"a","meta":{"versionId":"1","lastUpdated":"2026-01-01T00:00:00Z"},"identifier":[{"value":" x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) { checkScanHead(t, b) })
}
