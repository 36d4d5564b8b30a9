package epicsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/sinewhq/sinew/pkg/decimal"
	"github.com/sinewhq/sinew/pkg/recon"
)

// The site's identifiers the simulator charts with; flows.yaml's
// optime-encounters names the same (TestLiveChartMatchesFlowsYAML).
const (
	// CaseIdentifierSystem is the Encounter.identifier system of the OpTime
	// case (surgical log) id, the id ZCS-1 of the case cart carries.
	CaseIdentifierSystem = "urn:oid:1.2.840.114350.1.13.0.1.7.2.696580"
	// ImplantsExtensionURL is the site's Encounter extension counting the
	// implants logged for the case (valueInteger).
	ImplantsExtensionURL = "https://fhir.stmarys.example/StructureDefinition/optime-implant-count"
	// DeviceIdentifierSystem is Observation.device.identifier's system.
	DeviceIdentifierSystem = "urn:oid:1.2.840.114350.1.13.0.1.7.2.768076"
	// AccessionIdentifierSystem is the Observation.identifier system of
	// the Beaker accession (OBR-3) the test was resulted under.
	AccessionIdentifierSystem = "urn:oid:1.2.840.114350.1.13.0.1.7.2.798268"
)

// labTest is a test a Beaker order results, the instrument it runs on
// and the reagent one test uses (Epic's unit).
type labTest struct {
	loinc, text, unit, device, reagent, epicUnit string
	perTest                                      recon.Qty
}

// labTests are the tests of the generator's Beaker orders (CBC with a
// hemoglobin, and a glucose), in OBX order. flows.yaml's
// beaker-expected-use declares the same use per test in Fusion's units.
var labTests = []labTest{
	{"718-7", "Hemoglobin", "g/dL", "BEAKER-HEME-02", "CBC-PK", "PK", 1 * 10000},
	{"2345-7", "Glucose", "mg/dL", "BEAKER-CHEM-01", "GLU-R1", "L", 250}, // 0.025 L
}

// Clinical is what Epic charts for one message of the traffic: the
// surgical case of an OpTime case cart, the tests of a final Beaker result.
// Its JSON is what POST /sim/fhir/chart takes.
type Clinical struct {
	Case  *SurgicalCase `json:"case,omitempty"`
	Tests []LabResult   `json:"tests,omitempty"`
}

// SurgicalCase is an OpTime case: its log id (ZCS-1), when it completed
// (the cart's FT1-4) and how many implants it logged.
type SurgicalCase struct {
	ID       string    `json:"id"`
	At       time.Time `json:"at"`
	Implants int       `json:"implants"`
}

// LabResult is one resulted test. In JSON the test is its LOINC code
// (one of the generator's tests: its instrument and reagent follow).
type LabResult struct {
	Test      labTest
	Accession string
	At        time.Time
	Value     string
}

// LOINC is the test's code.
func (r LabResult) LOINC() string { return r.Test.loinc }

// labResultJSON is LabResult on the wire.
type labResultJSON struct {
	LOINC     string    `json:"loinc"`
	Accession string    `json:"accession"`
	At        time.Time `json:"at"`
	Value     string    `json:"value"`
}

// MarshalJSON writes the test as its LOINC code.
func (r LabResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(labResultJSON{LOINC: r.Test.loinc, Accession: r.Accession, At: r.At, Value: r.Value})
}

// UnmarshalJSON reads a result of one of the generator's tests.
func (r *LabResult) UnmarshalJSON(b []byte) error {
	var w labResultJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	for _, t := range labTests {
		if t.loinc == w.LOINC {
			*r = LabResult{Test: t, Accession: w.Accession, At: w.At, Value: w.Value}
			return nil
		}
	}
	return fmt.Errorf("epicsim: test %q is not one of Beaker's simulated tests", w.LOINC)
}

// Charted is one resource the simulator charted: its type, id and
// clinical date (what a date search selects it by).
type Charted struct {
	Type string    `json:"type"`
	ID   string    `json:"id"`
	At   time.Time `json:"at"`
}

// Clinical returns what Epic charted for the message Next returned last;
// valid until the next call to Next.
func (g *Generator) Clinical() Clinical { return g.clinical }

// use is the reagent one test of t consumes, times Overuse.
func (g *Generator) use(t labTest) recon.Qty {
	if f, ok := g.Overuse[t.reagent]; ok && f > 0 {
		return t.perTest * f / 10000
	}
	return t.perTest
}

// ClinicalFaults seed variances for the FHIR reconciliations (POST
// /sim/faults/fhir).
type ClinicalFaults struct {
	// MissingEncounters: the next N OpTime cases chart no Encounter (a
	// case cart without one).
	MissingEncounters int `json:"missing_encounters,omitempty"`
	// UncartedImplants charts N surgical Encounters with implants, now,
	// whose case cart is never sent (an encounter with implants and no cart).
	UncartedImplants int `json:"uncarted_implants,omitempty"`
	// OverConsume makes an instrument's tests use Percent more reagent
	// than declared, until cleared.
	OverConsume *OverConsume `json:"over_consume,omitempty"`
}

// OverConsume is an instrument using more reagent than its tests need.
type OverConsume struct {
	Device  string `json:"device"`
	Percent string `json:"percent"` // a decimal: "20" is 20 %
}

// live is the FHIR simulator's charted day: Encounters and Observations
// of the traffic (FHIRConfig.Live), searched beside the seeded data.
type live struct {
	mu     sync.RWMutex
	rnd    *rand.Rand
	res    []*simResource
	byKey  map[string]*simResource
	n      int
	faults ClinicalFaults
	pats   []string
}

func newLive(seed uint64, data []simResource) *live {
	l := &live{rnd: rand.New(rand.NewPCG(seed, 0x11FE)), byKey: map[string]*simResource{}}
	for _, r := range data {
		if r.Type == "Patient" {
			l.pats = append(l.pats, r.ID)
		}
	}
	return l
}

func (l *live) add(r *simResource) {
	l.res = append(l.res, r)
	l.byKey[r.Type+"/"+r.ID] = r
}

func (l *live) patient() string {
	if len(l.pats) == 0 {
		return ""
	}
	return l.pats[l.rnd.IntN(len(l.pats))]
}

// Chart records what Epic charted for one traffic message and returns
// the resources it charted (nothing when the simulator is not Live). The
// same records charted in the same order, with the same faults, on a
// simulator of the same seed chart the same resources (ids included).
func (s *FHIRSim) Chart(c Clinical) []Charted {
	if s.live == nil {
		return nil
	}
	l := s.live
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Charted
	if c.Case != nil {
		if l.faults.MissingEncounters > 0 {
			l.faults.MissingEncounters--
		} else {
			out = append(out, l.encounter(*c.Case))
		}
	}
	for _, t := range c.Tests {
		out = append(out, l.observation(t))
	}
	return out
}

// encounter charts a finished surgical Encounter: identified by the case
// id (space-padded, as Epic pads), dated by its end (the case's
// completion, when the cart is charged), implants in the site extension.
// Lock held.
func (l *live) encounter(c SurgicalCase) Charted {
	l.n++
	id := epicID(l.rnd, true)
	start := c.At.Add(-90 * time.Minute)
	r := &simResource{Type: "Encounter", ID: id, Date: c.At, Patient: l.patient()}
	r.JSON = fmt.Appendf(nil,
		`{"resourceType":"Encounter","id":"%s","meta":{"versionId":"1","lastUpdated":"%s"},"extension":[{"url":"%s","valueInteger":%d}],"identifier":[{"use":"usual","system":"urn:oid:1.2.840.114350.1.13.0.1.7.3.698084.8","value":"  %d"},{"use":"usual","type":{"text":"ORL"},"system":"%s","value":"  %s"}],"status":"finished","class":{"system":"urn:oid:1.2.840.114350.1.72.1.7.7.10.696784.13260","code":"IMP"},"type":[{"coding":[{"system":"urn:oid:1.2.840.114350.1.13.0.1.7.10.698084.10110","code":"51","display":"Surgery"}],"text":"Surgery"}],"subject":{"reference":"Patient/%s"},"period":{"start":"%s","end":"%s"}}`,
		id, c.At.UTC().Format(time.RFC3339), ImplantsExtensionURL, c.Implants, 9500000+l.n, CaseIdentifierSystem, c.ID, r.Patient,
		start.UTC().Format(time.RFC3339), c.At.UTC().Format(time.RFC3339))
	l.add(r)
	return Charted{Type: r.Type, ID: r.ID, At: r.Date}
}

// observation charts a final lab Observation with its instrument. Lock held.
func (l *live) observation(t LabResult) Charted {
	id := epicID(l.rnd, true)
	r := &simResource{Type: "Observation", ID: id, Date: t.At, Patient: l.patient()}
	r.JSON = fmt.Appendf(nil,
		`{"resourceType":"Observation","id":"%s","meta":{"versionId":"1","lastUpdated":"%s"},"identifier":[{"use":"usual","system":"%s","value":"%s"}],"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"%s","display":"%s"}],"text":"%s"},"subject":{"reference":"Patient/%s"},"effectiveDateTime":"%s","issued":"%s","device":{"display":"%s","identifier":{"system":"%s","value":"%s"}},"valueQuantity":{"value":%s,"unit":"%s","system":"http://unitsofmeasure.org","code":"%s"}}`,
		id, t.At.UTC().Format(time.RFC3339), AccessionIdentifierSystem, t.Accession, t.Test.loinc, t.Test.text, t.Test.text, r.Patient, t.At.UTC().Format(time.RFC3339), t.At.UTC().Format(time.RFC3339),
		t.Test.device, DeviceIdentifierSystem, t.Test.device, t.Value, t.Test.unit, t.Test.unit)
	l.add(r)
	return Charted{Type: r.Type, ID: r.ID, At: r.Date}
}

// Overuse is the traffic's reagent factors under an over_consume fault
// (Generator.Overuse), nil without one.
func (s *FHIRSim) Overuse() map[string]recon.Qty {
	if s.live == nil {
		return nil
	}
	s.live.mu.RLock()
	oc := s.live.faults.OverConsume
	s.live.mu.RUnlock()
	if oc == nil {
		return nil
	}
	return oc.Factors()
}

// Factors are the reagent factors (Generator.Overuse) of the instrument's
// over-consumption: each reagent its tests use, 1 + Percent/100; nil when
// Percent is not a decimal.
func (oc OverConsume) Factors() map[string]recon.Qty {
	p, err := recon.ParseQty(oc.Percent)
	if err != nil {
		return nil
	}
	out := map[string]recon.Qty{}
	for _, t := range labTests {
		if t.device == oc.Device {
			out[t.reagent] = 10000 + p/100
		}
	}
	return out
}

// SetClinicalFaults replaces the clinical faults; UncartedImplants are
// charted at once.
func (s *FHIRSim) SetClinicalFaults(f ClinicalFaults, now time.Time) {
	if s.live == nil {
		return
	}
	l := s.live
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range f.UncartedImplants {
		l.encounter(SurgicalCase{ID: fmt.Sprintf("CASE-NOCART-%s-%d", now.UTC().Format("150405"), i+1), At: now.UTC().Truncate(time.Second), Implants: 1})
	}
	f.UncartedImplants = 0
	l.faults = f
}

// ClinicalFaults returns the faults in force.
func (s *FHIRSim) ClinicalFaults() ClinicalFaults {
	if s.live == nil {
		return ClinicalFaults{}
	}
	s.live.mu.RLock()
	defer s.live.mu.RUnlock()
	return s.live.faults
}

// FaultRoutes serves GET, POST and DELETE /sim/faults/fhir (the clinical
// faults) on mux.
func (s *FHIRSim) FaultRoutes(mux *http.ServeMux) {
	reply := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /sim/faults/fhir", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, s.ClinicalFaults())
	})
	mux.HandleFunc("POST /sim/faults/fhir", func(w http.ResponseWriter, r *http.Request) {
		var f ClinicalFaults
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil || f.MissingEncounters < 0 || f.UncartedImplants < 0 {
			reply(w, http.StatusBadRequest, map[string]string{"error": "want {missing_encounters, uncarted_implants, over_consume: {device, percent}}"})
			return
		}
		if oc := f.OverConsume; oc != nil {
			if _, err := decimal.ParsePlain(oc.Percent); err != nil || oc.Device == "" {
				reply(w, http.StatusBadRequest, map[string]string{"error": "over_consume needs a device and a decimal percent"})
				return
			}
		}
		if s.live == nil {
			reply(w, http.StatusConflict, map[string]string{"error": "the FHIR simulator is not charting the traffic (fhir.live)"})
			return
		}
		s.SetClinicalFaults(f, time.Now())
		reply(w, http.StatusOK, s.ClinicalFaults())
	})
	mux.HandleFunc("DELETE /sim/faults/fhir", func(w http.ResponseWriter, r *http.Request) {
		s.SetClinicalFaults(ClinicalFaults{}, time.Now())
		w.WriteHeader(http.StatusNoContent)
	})
}

// chartLimit bounds a POST /sim/fhir/chart body (a peak drill day is a
// few MB).
const chartLimit = 64 << 20

// ChartRequest is POST /sim/fhir/chart and FHIRConfig.ChartFile: what
// Epic charted for each of a sender's messages, in the order they
// happened, and the clinical faults to chart them under (replacing those
// in force; none when absent).
type ChartRequest struct {
	Faults  *ClinicalFaults `json:"faults,omitempty"`
	Records []Clinical      `json:"records"`
}

// check refuses a record Epic could not chart.
func (req ChartRequest) check() error {
	if f := req.Faults; f != nil && (f.MissingEncounters < 0 || f.UncartedImplants < 0 || f.OverConsume != nil) {
		return fmt.Errorf("faults: missing_encounters and uncarted_implants only, not negative")
	}
	for i, c := range req.Records {
		if c.Case != nil && (c.Case.ID == "" || c.Case.At.IsZero() || c.Case.Implants < 0) {
			return fmt.Errorf("record %d: a case needs an id, a time and a non-negative implant count", i)
		}
		for _, t := range c.Tests {
			if t.Accession == "" || t.At.IsZero() {
				return fmt.Errorf("record %d: a test needs an accession and a time", i)
			}
		}
	}
	return nil
}

// ChartAll charts req's records (Chart, in order) under its faults and
// returns what was charted; an error when the simulator is not Live.
func (s *FHIRSim) ChartAll(req ChartRequest, now time.Time) ([]Charted, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	if s.live == nil {
		return nil, errNotLive
	}
	if req.Faults != nil {
		s.SetClinicalFaults(*req.Faults, now)
	}
	out := []Charted{}
	for _, c := range req.Records {
		out = append(out, s.Chart(c)...)
	}
	return out, nil
}

var errNotLive = errors.New("the FHIR simulator is not charting (fhir.live)")

// ChartFile charts the ChartRequest in the JSON file at path: what Epic
// had charted before Sinew's intake began (FHIRConfig.ChartFile).
func (s *FHIRSim) ChartFile(path string, now time.Time) ([]Charted, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("epicsim: fhir chart file: %w", err)
	}
	var req ChartRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("epicsim: fhir chart file %s: %w", path, err)
	}
	out, err := s.ChartAll(req, now)
	if err != nil {
		return nil, fmt.Errorf("epicsim: fhir chart file %s: %w", path, err)
	}
	return out, nil
}

// ChartResponse lists the resources charted, in order (a case under
// missing_encounters charts none).
type ChartResponse struct {
	Charted []Charted `json:"charted"`
}

// ChartRoutes serves POST /sim/fhir/chart on mux: Epic charts the records
// now (ChartAll) as if its own traffic had sent them. A resource dated
// more than ingest's search overlap (an hour) before its last search is
// not read again: a day charted late belongs in FHIRConfig.ChartFile.
func (s *FHIRSim) ChartRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /sim/fhir/chart", func(w http.ResponseWriter, r *http.Request) {
		reply := func(code int, v any) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(v)
		}
		var req ChartRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, chartLimit))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			reply(http.StatusBadRequest, map[string]string{"error": "want {faults, records: [{case: {id, at, implants}, tests: [{loinc, accession, at, value}]}]}: " + err.Error()})
			return
		}
		charted, err := s.ChartAll(req, time.Now())
		switch {
		case errors.Is(err, errNotLive):
			reply(http.StatusConflict, map[string]string{"error": err.Error()})
		case err != nil:
			reply(http.StatusBadRequest, map[string]string{"error": err.Error()})
		default:
			reply(http.StatusOK, ChartResponse{Charted: charted})
		}
	})
}

// liveMatches appends the charted resources of typ that q's dates select.
func (s *FHIRSim) liveMatches(out []*simResource, typ string, keep func(*simResource) bool) []*simResource {
	if s.live == nil {
		return out
	}
	s.live.mu.RLock()
	defer s.live.mu.RUnlock()
	for _, r := range s.live.res {
		if r.Type == typ && keep(r) {
			out = append(out, r)
		}
	}
	return out
}

func (s *FHIRSim) liveRead(key string) (*simResource, bool) {
	if s.live == nil {
		return nil, false
	}
	s.live.mu.RLock()
	defer s.live.mu.RUnlock()
	r, ok := s.live.byKey[key]
	return r, ok
}
