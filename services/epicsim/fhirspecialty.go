package epicsim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// SimPractitioner is one seeded Practitioner as GET /sim/fhir/practitioners
// lists it: its FHIR id, NPI, and its PractitionerRole's id and specialty.
type SimPractitioner struct {
	ID        string `json:"id"`
	NPI       string `json:"npi"`
	Role      string `json:"role"`
	Specialty string `json:"specialty"`
}

// Specialty is a PractitionerRole specialty: a NUCC taxonomy code and its
// text (Epic sends both; the text is what Fusion holds).
type Specialty struct {
	Code string `json:"code"`
	Text string `json:"text"`
}

const nuccSystem = "http://nucc.org/provider-taxonomy"

// SetSpecialty replaces PractitionerRole id's specialty, as a provider
// record edited in Epic: a new version (meta.versionId and lastUpdated
// move) that searches, reads and exports serve and subscriptions are told of.
func (s *FHIRSim) SetSpecialty(ctx context.Context, id string, sp Specialty) error {
	if sp.Text == "" {
		return fmt.Errorf("epicsim: a specialty needs its text")
	}
	return s.update(ctx, "PractitionerRole", id, func(cur []byte) ([]byte, error) {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(cur, &fields); err != nil {
			return nil, fmt.Errorf("epicsim: PractitionerRole/%s: %w", id, err)
		}
		coding := []map[string]string{}
		if sp.Code != "" {
			coding = append(coding, map[string]string{"system": nuccSystem, "code": sp.Code, "display": sp.Text})
		}
		b, err := json.Marshal([]map[string]any{{"coding": coding, "text": sp.Text}})
		if err != nil {
			return nil, err
		}
		fields["specialty"] = b
		return json.Marshal(fields)
	})
}

// Practitioners lists the Practitioners with their roles, by NPI.
func (s *FHIRSim) Practitioners() []SimPractitioner {
	var out []SimPractitioner
	byRef := map[string]*SimPractitioner{}
	for i := range s.data {
		res := &s.data[i]
		if res.Type != "Practitioner" {
			continue
		}
		var p struct {
			Identifier []struct{ System, Value string } `json:"identifier"`
		}
		_ = json.Unmarshal(s.jsonOf(res), &p)
		sp := SimPractitioner{ID: res.ID}
		for _, id := range p.Identifier {
			if id.System == "http://hl7.org/fhir/sid/us-npi" {
				sp.NPI = id.Value
			}
		}
		out = append(out, sp)
	}
	for i := range out {
		byRef["Practitioner/"+out[i].ID] = &out[i]
	}
	for i := range s.data {
		res := &s.data[i]
		if res.Type != "PractitionerRole" {
			continue
		}
		var r struct {
			Practitioner struct{ Reference string } `json:"practitioner"`
			Specialty    []struct{ Text string }    `json:"specialty"`
		}
		_ = json.Unmarshal(s.jsonOf(res), &r)
		if p := byRef[r.Practitioner.Reference]; p != nil {
			p.Role = res.ID
			if len(r.Specialty) > 0 {
				p.Specialty = r.Specialty[0].Text
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NPI < out[j].NPI })
	return out
}

// SpecialtyRoutes serves GET /sim/fhir/practitioners and
// POST /sim/fhir/PractitionerRole/{id}/specialty ({code, text}) on mux.
func (s *FHIRSim) SpecialtyRoutes(mux *http.ServeMux) {
	reply := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /sim/fhir/practitioners", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, s.Practitioners())
	})
	mux.HandleFunc("POST /sim/fhir/PractitionerRole/{id}/specialty", func(w http.ResponseWriter, r *http.Request) {
		var sp Specialty
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sp); err != nil || strings.TrimSpace(sp.Text) == "" {
			reply(w, http.StatusBadRequest, map[string]string{"error": "want {code, text}; text is required"})
			return
		}
		id := r.PathValue("id")
		if _, ok := s.byKey["PractitionerRole/"+id]; !ok {
			reply(w, http.StatusNotFound, map[string]string{"error": "no such PractitionerRole"})
			return
		}
		if err := s.SetSpecialty(r.Context(), id, sp); err != nil {
			reply(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		for _, p := range s.Practitioners() {
			if p.Role == id {
				reply(w, http.StatusOK, p)
				return
			}
		}
		reply(w, http.StatusOK, map[string]string{"role": id})
	})
}
