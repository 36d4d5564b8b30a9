package optimeencounters_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/services/transform/flows/fhircheck"
	optimeencounters "github.com/sinewhq/sinew/services/transform/flows/optime-encounters"
)

var cfg = flows.EncounterCheck{CaseIdentifier: "urn:oid:case", ImplantsExtension: "https://site/implants"}

func encounterJSON(id, caseID string, implants int, end string) []byte {
	return fmt.Appendf(nil, `{"resourceType":"Encounter","id":"%s","meta":{"versionId":"1"},"extension":[{"url":"https://site/implants","valueInteger":%d},{"url":"https://other","valueString":"x"}],"identifier":[{"system":"urn:oid:csn","value":"  1"},{"system":"urn:oid:case","value":"  %s"}],"status":"finished","subject":{"reference":"Patient/p1"},"period":{"start":"2026-11-26T08:00:00Z","end":"%s"},"contained":[{"resourceType":"Location"}]}`,
		id, implants, caseID, end)
}

func TestFromEvent(t *testing.T) {
	c, err := optimeencounters.FromEvent(&sinewv1.FhirResourceReceived{Json: encounterJSON("e1", "CASE1", 2, "2026-11-26T09:30:00Z")}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := optimeencounters.Case{Encounter: "Encounter/e1", Version: "1", Case: "CASE1", Implants: 2, Status: "finished", At: time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)}
	if c != want {
		t.Errorf("got %+v, want %+v", c, want)
	}
	for name, raw := range map[string]string{
		"not an encounter": `{"resourceType":"Observation","id":"o1"}`,
		"implants a text":  `{"resourceType":"Encounter","id":"e1","extension":[{"url":"https://site/implants","valueString":"2"}]}`,
		"negative":         `{"resourceType":"Encounter","id":"e1","extension":[{"url":"https://site/implants","valueInteger":-1}]}`,
		"wrong json type":  `{"resourceType":"Encounter","id":"e1","identifier":"x"}`,
		"not json":         `{"resourceType":`,
	} {
		if _, err := optimeencounters.FromEvent(&sinewv1.FhirResourceReceived{Json: []byte(raw)}, cfg); err == nil {
			t.Errorf("%s: no error", name)
		} else if strings.Contains(err.Error(), "Patient/") {
			t.Errorf("%s: error shows a value: %v", name, err)
		}
	}
}

func TestReconcile(t *testing.T) {
	day := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return day.Add(time.Duration(h) * time.Hour) }
	enc := func(id, caseID string, implants int64, h int) optimeencounters.Case {
		return optimeencounters.Case{Encounter: "Encounter/" + id, Case: caseID, Implants: implants, Status: "finished", At: at(h)}
	}
	line := func(caseID string, n int, outcome string, h int, serial string) fhircheck.Posting {
		return fhircheck.Posting{Key: fmt.Sprintf("%s:%d", caseID, n), SourceID: caseID, Outcome: outcome, Date: at(h), Serial: serial}
	}
	for _, tc := range []struct {
		name    string
		encs    []optimeencounters.Case
		carts   []fhircheck.Posting
		verdict string // "" for no result
		want    []string
		pending int64
	}{
		{"clean day", []optimeencounters.Case{enc("e1", "C1", 1, 9), enc("e2", "C2", 0, 10), enc("e3", "", 0, 11)},
			[]fhircheck.Posting{line("C1", 1, "accepted", 9, "SN1"), line("C1", 2, "accepted", 9, ""), line("C2", 1, "accepted", 10, "")}, recon.VerdictPass, nil, 0},
		{"cart without encounter", []optimeencounters.Case{enc("e1", "C1", 0, 9)},
			[]fhircheck.Posting{line("C1", 1, "accepted", 9, ""), line("C9", 1, "accepted", 10, "SN9")}, recon.VerdictVariance, []string{"C9/no-encounter"}, 0},
		{"implants without cart", []optimeencounters.Case{enc("e1", "C1", 2, 9), enc("e2", "C2", 0, 10)},
			nil, recon.VerdictVariance, []string{"C1/no-cart"}, 0},
		{"after the cut: next run", []optimeencounters.Case{enc("e1", "C1", 2, 13)},
			[]fhircheck.Posting{line("C9", 1, "accepted", 13, "")}, "", nil, 0},
		{"in flight: pending, no variance", []optimeencounters.Case{enc("e1", "C1", 1, 9)},
			[]fhircheck.Posting{line("C1", 1, "", 9, "SN1"), line("C9", 1, "", 9, "")}, recon.VerdictPass, nil, 2},
		{"refused cart is the inventory recon's", []optimeencounters.Case{enc("e1", "C1", 0, 9)},
			[]fhircheck.Posting{line("C8", 1, "rejected", 9, "")}, recon.VerdictPass, nil, 0},
		{"cancelled encounter is no case", []optimeencounters.Case{enc("e1", "C1", 1, 9), {Encounter: "Encounter/e1", Case: "C1", Status: "cancelled", At: at(9)}},
			[]fhircheck.Posting{line("C1", 1, "accepted", 9, "")}, recon.VerdictVariance, []string{"C1/no-encounter"}, 0},
		{"nothing that day", nil, nil, "", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := optimeencounters.Reconcile(optimeencounters.Input{Scope: "2026-11-26", Day: day, Cut: at(12), Encounters: tc.encs, Carts: tc.carts})
			if tc.verdict == "" {
				if res != nil {
					t.Fatalf("want no result, got %+v", res.Summary)
				}
				return
			}
			if res == nil {
				t.Fatal("no result")
			}
			var got []string
			for _, r := range res.Rows {
				if r.Verdict == recon.VerdictVariance {
					got = append(got, r.Key)
				}
			}
			if res.Summary.Verdict != tc.verdict || strings.Join(got, ",") != strings.Join(tc.want, ",") || res.Summary.Pending != tc.pending {
				t.Errorf("verdict %s variances %v pending %d, want %s %v %d", res.Summary.Verdict, got, res.Summary.Pending, tc.verdict, tc.want, tc.pending)
			}
		})
	}
}

func FuzzFromEvent(f *testing.F) {
	f.Add(encounterJSON("e1", "CASE1", 2, "2026-11-26T09:30:00Z"))
	f.Add([]byte(`{"resourceType":"Encounter","id":"e1","extension":[{"url":"https://site/implants","valueInteger":-1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := optimeencounters.FromEvent(&sinewv1.FhirResourceReceived{Json: b}, cfg)
		if err == nil && c.Implants < 0 {
			t.Fatalf("negative implant count %d accepted", c.Implants)
		}
	})
}
