package workersync

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ws "github.com/sinewhq/sinew/pkg/workersync"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s differs:\n%s", path, got)
	}
}

// TestPractitionerAndRoleGiveEpicsProviderAttributes: an Epic Practitioner
// (id past R4's 64 characters, identifier values padded with spaces, SER
// and EMP by Epic's OIDs) gives the SER, EMP, NPI, name, status and
// credentials; its PractitionerRole the specialty and provider type.
func TestPractitionerAndRoleGiveEpicsProviderAttributes(t *testing.T) {
	raw, err := os.ReadFile("testdata/practitioner_epic.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ReadPractitioner(raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.SER != "SER100001" || p.EMP != "EMP100001" || p.NPI != "1234567893" || len(p.FHIRID) <= 64 {
		t.Fatalf("ids: %+v", p)
	}
	golden(t, "practitioner_epic", p)
	raw, err = os.ReadFile("testdata/role_epic.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := ReadRole(raw)
	if err != nil {
		t.Fatal(err)
	}
	if r.Practitioner != p.FHIRID || r.Values[ws.Specialty] != "Cardiology" || r.Values[ws.ProviderType] != "MD" {
		t.Fatalf("role: %+v", r)
	}
	golden(t, "role_epic", r)
}

// TestPractitionerIdentifiersThatCannotNameOneProvider: no SER and no
// NPI is SINEW-WORKER-002, two SERs that disagree are ambiguous
// (SINEW-WORKER-001, triage), an NPI failing its check digit is warned
// and not used; the error names the element, never a value.
func TestPractitionerIdentifiersThatCannotNameOneProvider(t *testing.T) {
	const ser = `{"type":{"text":"INTERNAL"},"system":"urn:oid:1.2.840.114350.1.13.0.1.7.2.697780","value":"  SER1"}`
	cases := []struct {
		name, ids string
		ambiguous bool
		fails     bool
		warn      string
	}{
		{"nothing to match on", `[{"system":"urn:other","value":"X9"}]`, false, true, ""},
		{"two SER ids", `[` + ser + `,{"type":{"text":"EXTERNAL"},"system":"urn:oid:1.2.840.114350.1.13.0.1.7.2.697780","value":"SER2"}]`, true, true, ""},
		{"bad NPI only", `[{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567890"}]`, false, true, ""},
		{"bad NPI and a SER", `[{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567890"},` + ser + `]`, false, false, "identifier[0].value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ReadPractitioner([]byte(`{"resourceType":"Practitioner","id":"e1","identifier":` + c.ids + `}`))
			if !c.fails {
				if err != nil || p.SER != "SER1" || p.NPI != "" || len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], c.warn) {
					t.Fatalf("%+v %v", p, err)
				}
				return
			}
			var pe *ProviderIDError
			if !errors.As(err, &pe) || pe.Ambiguous != c.ambiguous || !strings.HasPrefix(pe.Path, "Practitioner.identifier") {
				t.Fatalf("err %v", err)
			}
			if strings.Contains(err.Error(), "SER2") || strings.Contains(err.Error(), "1234567890") {
				t.Fatalf("error carries a value: %v", err)
			}
		})
	}
}

// TestActionFromFeedAndStatusSent: what a worker's change is to Epic,
// from the feed (empty when polling) and the status Sinew last sent.
func TestActionFromFeedAndStatusSent(t *testing.T) {
	cases := []struct{ feed, sent, status, want string }{
		{"", "", "A", ws.ActionHire},                       // polling finds a new hire
		{"", "", "I", ""},                                  // polling: left before Epic had it
		{ws.ActionHire, "", "A", ws.ActionHire},            // the newhire feed
		{ws.ActionHire, "A", "A", ws.ActionUpdate},         // a hire re-read (after polling)
		{"", "A", "A", ws.ActionUpdate},                    // polling: an update
		{"", "A", "I", ws.ActionTerminate},                 // polling: a termination
		{ws.ActionTerminate, "A", "I", ws.ActionTerminate}, // the termination feed
		{"", "I", "A", ws.ActionRehire},                    // polling: a rehire
		{ws.ActionRehire, "I", "A", ws.ActionRehire},       // the newhire feed's REHIRE
		{ws.ActionHire, "I", "A", ws.ActionRehire},         // a newhire entry for a terminated provider
		{ws.ActionUpdate, "I", "I", ws.ActionUpdate},       // an edit of a terminated worker
		{ws.ActionUpdate, "", "A", ws.ActionUpdate},        // a worker from before the cutover
	}
	for _, c := range cases {
		if got := Action(c.feed, c.sent, c.status); got != c.want {
			t.Errorf("Action(%q, %q, %q) = %q, want %q", c.feed, c.sent, c.status, got, c.want)
		}
	}
}
