package epicsim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestSimSpecialtyNewVersion: POST /sim/fhir/PractitionerRole/{id}/specialty
// serves a new version of the role (versionId 2, lastUpdated now) with the
// new specialty; the rest of the role is kept; bad input is refused.
func TestSimSpecialtyNewVersion(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	cfg := DefaultFHIRConfig()
	cfg.Volume = FHIRVolume{Practitioners: 3, Days: 1}
	s := NewFHIRSim(cfg, now.AddDate(0, 0, -1), func() time.Time { return now })
	mux := http.NewServeMux()
	s.SpecialtyRoutes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ps := s.Practitioners()
	if len(ps) != 3 || ps[0].Role == "" || ps[0].NPI == "" || ps[0].Specialty == "" {
		t.Fatalf("practitioners: %+v", ps)
	}
	for _, tc := range []struct {
		name, path, body string
		status           int
	}{
		{"no text", "/sim/fhir/PractitionerRole/" + ps[0].Role + "/specialty", `{"code":"207RX0202X"}`, http.StatusBadRequest},
		{"unknown field", "/sim/fhir/PractitionerRole/" + ps[0].Role + "/specialty", `{"text":"Oncology","x":1}`, http.StatusBadRequest},
		{"no such role", "/sim/fhir/PractitionerRole/eNope/specialty", `{"text":"Oncology"}`, http.StatusNotFound},
		{"replaced", "/sim/fhir/PractitionerRole/" + ps[0].Role + "/specialty", `{"code":"207RX0202X","text":"Oncology"}`, http.StatusOK},
	} {
		resp, err := http.Post(srv.URL+tc.path, "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}
	var role struct {
		ID   string `json:"id"`
		Meta struct {
			VersionID   string `json:"versionId"`
			LastUpdated string `json:"lastUpdated"`
		} `json:"meta"`
		Practitioner struct{ Reference string } `json:"practitioner"`
		Specialty    []struct {
			Coding []struct{ System, Code string }
			Text   string
		} `json:"specialty"`
	}
	if err := json.Unmarshal(s.jsonOf(s.byKey["PractitionerRole/"+ps[0].Role]), &role); err != nil {
		t.Fatal(err)
	}
	if role.Meta.VersionID != "2" || role.Meta.LastUpdated != now.Format(time.RFC3339) {
		t.Errorf("meta: %+v", role.Meta)
	}
	if role.ID != ps[0].Role || role.Practitioner.Reference != "Practitioner/"+ps[0].ID {
		t.Errorf("role lost its id or practitioner: %+v", role)
	}
	if len(role.Specialty) != 1 || role.Specialty[0].Text != "Oncology" || role.Specialty[0].Coding[0].Code != "207RX0202X" {
		t.Errorf("specialty: %+v", role.Specialty)
	}
	if got := s.Practitioners()[0].Specialty; got != "Oncology" {
		t.Errorf("listed specialty %q", got)
	}
}
