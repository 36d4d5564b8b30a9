package fhir_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sinewhq/sinew/pkg/corpus"
	"github.com/sinewhq/sinew/pkg/fhir"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// expectBad says which files are not valid read payloads, by name: the
// corpus and testdata name them the same way.
func expectBad(name string) (code string, bad bool) {
	switch {
	case strings.Contains(name, "malformed") && !strings.Contains(name, "unknown"):
		return "structure", true
	case strings.Contains(name, "unknown"):
		return "not-supported", true
	case strings.Contains(name, "missing-id"):
		return "required", true
	case strings.Contains(name, "client-log"), strings.Contains(name, "manifest"):
		return "required", true // bulk-data logs and manifests have no resourceType
	}
	return "", false
}

// checkDir reads every .json / .ndjson file in dir: a valid one
// round-trips byte for byte through a FhirResourceReceived event; a bad
// one is an *Error with the expected OperationOutcome code and no value
// from the input in its text.
func checkDir(t *testing.T, dir string) {
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		name := f.Name()
		if !strings.HasSuffix(name, ".json") && !strings.HasSuffix(name, ".ndjson") {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			code, bad := expectBad(name)
			var items []fhir.Item
			fhir.ReadDocument(b, func(it fhir.Item) bool { items = append(items, it); return true })
			if len(items) == 0 {
				t.Fatal("nothing read")
			}
			for _, it := range items {
				if bad {
					var fe *fhir.Error
					if !errors.As(it.Err, &fe) {
						if strings.HasSuffix(name, ".ndjson") && it.Err == nil && !strings.Contains(name, "client-log") {
							continue // the good lines of an NDJSON file with bad ones
						}
						t.Fatalf("want *fhir.Error (%s), got %v", code, it.Err)
					}
					if fe.Code != code {
						t.Errorf("code %q, want %q (%v)", fe.Code, code, fe)
					}
					oo := fe.Outcome()
					if oo.Issue[0].Code != code || oo.Issue[0].Severity != fhir.SeverityError {
						t.Errorf("outcome %s", oo.JSON())
					}
					continue
				}
				if it.Err != nil {
					var fe *fhir.Error
					if errors.As(it.Err, &fe) && fe.Line > 0 && strings.Contains(name, "export-") && !strings.Contains(name, "bulk") {
						continue // the synthetic NDJSON's deliberately bad line
					}
					t.Fatalf("%v", it.Err)
				}
				if it.Entry >= 0 {
					if !bytes.Contains(b, it.Resource.Raw) {
						t.Errorf("entry %d: bytes not those of the document", it.Entry)
					}
					continue
				}
				ev := &sinewv1.FhirResourceReceived{ResourceType: it.Resource.Type, ResourceId: it.Resource.ID, Json: it.Resource.Raw}
				wire, err := proto.Marshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				var back sinewv1.FhirResourceReceived
				if err := proto.Unmarshal(wire, &back); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(back.GetJson(), it.Raw) || !bytes.Contains(b, back.GetJson()) {
					t.Errorf("%s: bytes changed through the event", it.Resource.Key())
				}
			}
		})
	}
	if n == 0 {
		t.Fatalf("no FHIR files in %s", dir)
	}
}

func TestCorpusFilesRoundTripOrFailClearly(t *testing.T) {
	checkDir(t, corpus.Dir(t, "fhir"))
}

func TestFixturesRoundTripOrFailClearly(t *testing.T) { checkDir(t, "testdata") }

func TestEpicDeviationsAreWarnings(t *testing.T) {
	b, err := os.ReadFile("testdata/epic-practitioner.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := fhir.Parse(b, fhir.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range r.Warnings {
		got = append(got, w.String())
	}
	want := []string{
		"id-too-long at Practitioner.id",
		"identifier-padded at Practitioner.identifier[1].value",
		"identifier-padded at Practitioner.identifier[2].value",
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
	if r.VersionID != "3" || r.LastUpdated.IsZero() {
		t.Errorf("meta: %q %v", r.VersionID, r.LastUpdated)
	}
	p, err := fhir.Decode[fhir.Practitioner](r)
	if err != nil {
		t.Fatal(err)
	}
	if p.NPI() != "1234567893" || fhir.IdentifierValue(p.Identifier, "urn:oid:1.2.840.114350.1.13.0.1.7.2.697780") != "SYNMD" {
		t.Errorf("mapped: npi %q", p.NPI())
	}
	// Unknown elements and primitive extensions are in the bytes every
	// event carries.
	for _, s := range []string{`"futureElement"`, `"_gender"`, `"extension"`} {
		if !bytes.Contains(r.Raw, []byte(s)) {
			t.Errorf("%s lost", s)
		}
	}
}

func TestCorpusEpicSamplesWarnNotReject(t *testing.T) {
	dir := corpus.Dir(t, "fhir")
	for _, name := range []string{"epic-sandbox-practitioner.json", "epic-sandbox-patient-camila-lopez.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		r, err := fhir.Parse(b, fhir.ParseOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.ContainsFunc(r.Warnings, func(w fhir.Warning) bool { return w.Code == fhir.WarnPadded }) {
			t.Errorf("%s: padded identifier values not warned: %v", name, r.Warnings)
		}
	}
}

func TestMedicationContainedAndStrengthExact(t *testing.T) {
	b, _ := os.ReadFile("testdata/medication-contained.json")
	r, err := fhir.Parse(b, fhir.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := fhir.Decode[fhir.Medication](r)
	if err != nil {
		t.Fatal(err)
	}
	if m.Code.Code("http://www.nlm.nih.gov/research/umls/rxnorm") != "197361" || m.Form.Code("") != "385055001" {
		t.Errorf("codes %+v", m)
	}
	if got := m.Ingredient[0].Strength.Numerator.Value.String(); got != "5.000" {
		t.Errorf("strength %q, want the decimal text 5.000", got)
	}
	if !bytes.Equal(r.Raw, b) {
		t.Error("bytes changed")
	}
}

func TestSearchsetLinksModesAndOutcomeEntries(t *testing.T) {
	b, _ := os.ReadFile("testdata/searchset-next-outcome.json")
	bun, err := fhir.ParseBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	if bun.Next() != "https://epic.example/api/FHIR/R4/Encounter?date=ge2026-03-01&sessionID=abc%20def&page=2" {
		t.Errorf("next %q: must be kept exactly", bun.Next())
	}
	if m := bun.Matches(); len(m) != 1 || m[0].Key() != "Encounter/e1" {
		t.Errorf("matches %v", m)
	}
	if os := bun.Outcomes(); len(os) != 1 || os[0].Failed() || os[0].EpicCodes()[0] != "4119" {
		t.Errorf("outcomes %+v", os)
	}
	if *bun.Total != 3 {
		t.Errorf("total %d", *bun.Total)
	}
}

func TestTransactionEntriesMayLackIDs(t *testing.T) {
	b, _ := os.ReadFile("testdata/transaction-no-ids.json")
	bun, err := fhir.ParseBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(bun.Entries) != 2 || bun.Entries[0].Resource.Warnings[0].Code != fhir.WarnNoID || bun.Entries[1].Resource != nil {
		t.Errorf("entries %+v", bun.Entries)
	}
	if _, err := fhir.Parse(bun.Entries[0].Resource.Raw, fhir.ParseOptions{}); err == nil {
		t.Error("a Patient without id accepted as a read payload")
	}
}

func TestNDJSONBadLineNamedOthersKept(t *testing.T) {
	f, _ := os.Open("testdata/export-practitioner.ndjson")
	defer f.Close()
	n := fhir.NewNDJSONReader(f, fhir.ParseOptions{})
	var keys []string
	var bad []int
	for {
		r, raw, err := n.Next()
		if err != nil {
			var fe *fhir.Error
			if !errors.As(err, &fe) {
				break
			}
			bad = append(bad, fe.Line)
			if len(raw) == 0 {
				t.Error("bad line's bytes not returned")
			}
			continue
		}
		keys = append(keys, r.Key())
	}
	if !slices.Equal(keys, []string{"Practitioner/pr1", "Practitioner/pr3"}) || !slices.Equal(bad, []int{3}) {
		t.Errorf("keys %v bad lines %v", keys, bad)
	}
}

func TestErrorsNameThePathNeverTheValue(t *testing.T) {
	for _, tc := range []struct {
		in, code, path string
	}{
		{`{"resourceType":"Patient","id":"secret name!"}`, "value", "Patient.id"},
		{`{"resourceType":"Patient","id":"p","identifier":"secret"}`, "structure", "identifier"},
		{`[1,2]`, "structure", ""},
		{`{"id":"x"}`, "required", "resourceType"},
		{`{"resourceType":"Patient","name":"secret"`, "structure", "offset 41"},
	} {
		_, err := fhir.Parse([]byte(tc.in), fhir.ParseOptions{})
		var fe *fhir.Error
		if !errors.As(err, &fe) || fe.Code != tc.code || fe.Path != tc.path {
			t.Errorf("%s: %#v", tc.in, err)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("value in error text: %v", err)
		}
	}
}

func TestClassify(t *testing.T) {
	expired, _ := os.ReadFile("testdata/outcome-session-expired.json")
	exp, err := fhir.ParseOutcome(expired)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		status int
		oo     *fhir.OperationOutcome
		want   fhir.Class
	}{
		{"429", 429, nil, fhir.Retryable},
		{"503 with outcome", 503, fhir.NewOutcome("error", "invalid", ""), fhir.Retryable},
		{"transient", 500, fhir.NewOutcome("error", "transient", ""), fhir.Retryable},
		{"throttled", 400, fhir.NewOutcome("error", "throttled", ""), fhir.Retryable},
		{"401", 401, nil, fhir.NeedsHuman},
		{"403 unmapped", 403, fhir.NewOutcome("error", "security", ""), fhir.NeedsHuman},
		{"invalid", 400, fhir.NewOutcome("error", "invalid", ""), fhir.Permanent},
		{"not-found", 404, fhir.NewOutcome("error", "not-found", ""), fhir.Permanent},
		{"conflict", 409, fhir.NewOutcome("error", "conflict", ""), fhir.NeedsHuman},
		{"unknown code", 400, fhir.NewOutcome("error", "made-up", ""), fhir.NeedsHuman},
		{"warning only", 400, fhir.NewOutcome("warning", "informational", ""), fhir.Permanent},
		{"500 no outcome", 500, nil, fhir.Retryable},
		{"session expired", 400, exp, fhir.Permanent},
		{"worst wins", 400, &fhir.OperationOutcome{Issue: []fhir.Issue{{Severity: "error", Code: "invalid"}, {Severity: "error", Code: "security"}}}, fhir.NeedsHuman},
	} {
		if got := fhir.Classify(tc.status, tc.oo); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if !exp.SessionExpired() || exp.Capped() {
		t.Error("4113 not read as an expired session")
	}
}

func TestCorpusOperationOutcomesParse(t *testing.T) {
	dir := corpus.Dir(t, "fhir")
	for _, name := range []string{"r4-operationoutcome-101.json", "r4-operationoutcome-exception.json", "r4-operationoutcome-searchfail.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		oo, err := fhir.ParseOutcome(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !oo.Failed() || fhir.Classify(400, oo) == 0 {
			t.Errorf("%s: %+v", name, oo)
		}
	}
}
