package epicsim_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/fhir"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/services/epicsim"
)

// TestLiveChartMatchesTrafficAndFlowsYAML: with fhir.live the FHIR
// server charts the traffic: every OpTime case is an Encounter carrying
// its case id (space-padded, as Epic pads) and implant count, every
// test of a final Beaker result an Observation with its instrument, all
// found by date search over HTTP; the identifiers and the instruments'
// tests are those flows.yaml's optime-encounters and beaker-expected-use
// read; the clinical faults on /sim/faults/fhir seed their variances.
func TestLiveChartMatchesTrafficAndFlowsYAML(t *testing.T) {
	cfg := epicsim.DefaultFHIRConfig()
	cfg.Live, cfg.Volume = true, epicsim.FHIRVolume{Patients: 3, Observations: 50, Days: 1}
	sim, key := fhirServer(t, cfg)
	c := client(t, sim, key)
	ctx := context.Background()
	gen := epicsim.NewGenerator(11, "STMARYS")
	start := time.Date(2026, 3, 8, 10, 0, 0, 0, time.UTC)
	implants := map[string]int{} // case id → implant units (FT1-10 of lines with ZIM)
	finals, sent := 0, 0
	var glu []string // ZRG-2 of GLU-R1 per final result
	send := func(n int) {
		for range n {
			sent++
			gen.Overuse = sim.Overuse()
			raw, _ := gen.Next(start.Add(time.Duration(sent) * time.Second))
			sim.Chart(gen.Clinical())
			m, err := hl7.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			switch m.SendingApplication() + " " + m.Type() {
			case "OPTIME DFT":
				id := m.Get("ZCS-1")
				implants[id] += 0
				segs := strings.Split(strings.TrimRight(string(raw), "\r"), "\r")
				for i, s := range segs {
					if strings.HasPrefix(s, "ZIM|") {
						var q int
						_ = json.Unmarshal([]byte(strings.Split(segs[i-1], "|")[10]), &q)
						implants[id] += q
					}
				}
			case "BEAKER ORU":
				if m.Get("OBR-25") == "F" {
					finals++
					for _, s := range strings.Split(string(raw), "\r") {
						if strings.HasPrefix(s, "ZRG|GLU-R1|") {
							glu = append(glu, strings.Split(s, "|")[2])
						}
					}
				}
			}
		}
	}
	send(300)
	inv, err := flows.Load("../../flows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	oe, _ := inv.Get("optime-encounters")
	bu, _ := inv.Get("beaker-expected-use")
	if oe == nil || oe.Encounters == nil || oe.Encounters.CaseIdentifier != epicsim.CaseIdentifierSystem || oe.Encounters.ImplantsExtension != epicsim.ImplantsExtensionURL {
		t.Fatalf("flows.yaml optime-encounters does not read the simulator's identifiers: %+v", oe)
	}
	search := func(typ string) []*fhir.Resource {
		t.Helper()
		var out []*fhir.Resource
		next := sim.BaseURL() + "/" + typ + "?date=ge2026-03-08T10:00:00Z&_count=50"
		for next != "" {
			b, err := c.Search(ctx, next)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b.Matches()...)
			next = b.Next()
		}
		return out
	}
	charted := map[string]int64{}
	for _, r := range search("Encounter") {
		var e struct {
			Identifier []fhir.Identifier `json:"identifier"`
			Extension  []struct {
				URL          string `json:"url"`
				ValueInteger int64  `json:"valueInteger"`
			} `json:"extension"`
		}
		if err := json.Unmarshal(r.Raw, &e); err != nil {
			t.Fatal(err)
		}
		id := fhir.IdentifierValue(e.Identifier, epicsim.CaseIdentifierSystem)
		if len(e.Extension) != 1 || e.Extension[0].URL != epicsim.ImplantsExtensionURL {
			t.Fatalf("%s: extensions %+v", r.Key(), e.Extension)
		}
		charted[id] = e.Extension[0].ValueInteger
	}
	if len(charted) != len(implants) || len(implants) < 10 {
		t.Fatalf("%d cases sent, %d Encounters charted", len(implants), len(charted))
	}
	for id, n := range implants {
		if got, ok := charted[id]; !ok || got != int64(n) {
			t.Errorf("case %s: %d implants sent, Encounter says %d (%v)", id, n, got, ok)
		}
	}
	declared := map[string]bool{}
	for _, u := range bu.ExpectedUse.Use {
		declared[u.Device+"|"+u.Test] = true
	}
	obs := search("Observation")
	if len(obs) != 2*finals {
		t.Fatalf("%d final results, %d Observations (want two tests each)", finals, len(obs))
	}
	for _, r := range obs {
		o, err := fhir.Decode[fhir.Observation](r)
		if err != nil {
			t.Fatal(err)
		}
		if k := o.Device.Identifier.Value + "|" + o.Code.Code("http://loinc.org"); !declared[k] {
			t.Errorf("%s: %s has no reagent use in flows.yaml", r.Key(), k)
		}
	}
	for _, q := range glu {
		if q != "0.025" {
			t.Fatalf("GLU-R1 per glucose test %s, want the declared 0.025 L", q)
		}
	}

	// Faults over HTTP.
	mux := http.NewServeMux()
	sim.FaultRoutes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	post := func(body string) int {
		resp, err := http.Post(srv.URL+"/sim/faults/fhir", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if post(`{"missing_encounters":-1}`) != 400 || post(`{"over_consume":{"device":"X","percent":"lots"}}`) != 400 || post(`{"colour":1}`) != 400 {
		t.Error("a bad fault was accepted")
	}
	if post(`{"missing_encounters":1,"uncarted_implants":1,"over_consume":{"device":"BEAKER-CHEM-01","percent":"20"}}`) != 200 {
		t.Fatal("faults refused")
	}
	cases, before := len(implants), len(glu)
	send(100)
	if len(implants) == cases || len(glu) == before {
		t.Fatal("no case or final result after the faults")
	}
	charted = map[string]int64{}
	for _, r := range search("Encounter") {
		var e struct {
			Identifier []fhir.Identifier `json:"identifier"`
		}
		_ = json.Unmarshal(r.Raw, &e)
		charted[fhir.IdentifierValue(e.Identifier, epicsim.CaseIdentifierSystem)] = 1
	}
	missing, nocart := 0, 0
	for id := range implants {
		if charted[id] == 0 {
			missing++
		}
	}
	for id := range charted {
		if strings.HasPrefix(id, "CASE-NOCART-") {
			nocart++
		}
	}
	if missing != 1 || nocart != 1 {
		t.Errorf("%d cases without an Encounter, %d Encounters without a case; want 1 and 1", missing, nocart)
	}
	for _, q := range glu[before:] {
		if q != "0.03" {
			t.Errorf("over-consuming: GLU-R1 %s per test, want 0.03", q)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/sim/faults/fhir", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("clear: %v %v", resp, err)
	}
	if sim.Overuse() != nil {
		t.Error("over-consumption not cleared")
	}
}

// TestChartEndpointChartsASendersOwnDay: POST /sim/fhir/chart charts
// what a sender of its own HL7 day (the cutover drill) says Epic charted,
// in order, under the clinical faults; the answer names each resource,
// which a date search then finds; a simulator of the same seed charting
// the same records charts the same ids, and so does a chart file
// (fhir.chart_file: the drill's day, charted again after a kill); a bad
// body, test or fault is refused.
func TestChartEndpointChartsASendersOwnDay(t *testing.T) {
	cfg := epicsim.DefaultFHIRConfig()
	cfg.Live, cfg.Volume = true, epicsim.FHIRVolume{Patients: 3, Days: 1}
	gen := epicsim.NewGenerator(5, "STMARYS")
	start := time.Date(2026, 3, 8, 10, 0, 0, 0, time.UTC)
	var req epicsim.ChartRequest
	cases, tests := 0, 0
	for i := range 200 {
		gen.Next(start.Add(time.Duration(i) * time.Minute))
		if c := gen.Clinical(); c.Case != nil || len(c.Tests) > 0 {
			req.Records = append(req.Records, c)
			tests += len(c.Tests)
			if c.Case != nil {
				cases++
			}
		}
	}
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	chart := func(sim *epicsim.FHIRSim, faults string) (int, epicsim.ChartResponse) {
		t.Helper()
		mux := http.NewServeMux()
		sim.FaultRoutes(mux)
		sim.ChartRoutes(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		if faults != "" {
			resp, err := http.Post(srv.URL+"/sim/faults/fhir", "application/json", strings.NewReader(faults))
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("faults: %v %v", resp, err)
			}
			resp.Body.Close()
		}
		resp, err := http.Post(srv.URL+"/sim/fhir/chart", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out epicsim.ChartResponse
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	sim, key := fhirServer(t, cfg)
	code, got := chart(sim, `{"missing_encounters":2}`)
	if code != 200 || cases < 5 || tests < 10 {
		t.Fatalf("chart: %d, %d cases, %d tests", code, cases, tests)
	}
	byType := map[string]int{}
	for _, c := range got.Charted {
		byType[c.Type]++
	}
	if byType["Encounter"] != cases-2 || byType["Observation"] != tests {
		t.Fatalf("charted %v; want %d Encounters (2 cases missing) and %d Observations", byType, cases-2, tests)
	}
	dated := map[time.Time]bool{}
	for _, r := range req.Records {
		if r.Case != nil {
			dated[r.Case.At] = true
		}
		for _, x := range r.Tests {
			dated[x.At] = true
		}
	}
	for _, ch := range got.Charted {
		if !dated[ch.At] {
			t.Errorf("%+v is not dated by any record", ch)
		}
	}
	c := client(t, sim, key)
	found := map[string]bool{}
	for _, typ := range []string{"Encounter", "Observation"} {
		for next := sim.BaseURL() + "/" + typ + "?date=ge2026-03-08T00:00:00Z&_count=50"; next != ""; {
			b, err := c.Search(context.Background(), next)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range b.Matches() {
				found[r.Type+"/"+r.ID] = true
			}
			next = b.Next()
		}
	}
	for _, ch := range got.Charted {
		if !found[ch.Type+"/"+ch.ID] {
			t.Errorf("%s/%s charted, not found by date search", ch.Type, ch.ID)
		}
	}
	again, _ := fhirServer(t, cfg)
	if _, same := chart(again, `{"missing_encounters":2}`); !slices.Equal(same.Charted, got.Charted) {
		t.Error("the same records on a simulator of the same seed charted other resources")
	}
	// The same day from a chart file (fhir.chart_file), its faults in it.
	two := 2
	file := filepath.Join(t.TempDir(), "chart.json")
	b, _ := json.Marshal(epicsim.ChartRequest{Faults: &epicsim.ClinicalFaults{MissingEncounters: two}, Records: req.Records})
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, _ := fhirServer(t, cfg)
	if charted, err := fromFile.ChartFile(file, time.Now()); err != nil || !slices.Equal(charted, got.Charted) {
		t.Errorf("chart file: %v, %d resources, want the endpoint's %d", err, len(charted), len(got.Charted))
	}

	mux := http.NewServeMux()
	sim.ChartRoutes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, bad := range []string{`{"records":[{"tests":[{"loinc":"0000-0","accession":"A","at":"2026-03-08T10:00:00Z"}]}]}`,
		`{"records":[{"case":{"id":"","at":"2026-03-08T10:00:00Z"}}]}`, `{"colour":1}`,
		`{"faults":{"over_consume":{"device":"BEAKER-CHEM-01","percent":"20"}},"records":[]}`} {
		resp, err := http.Post(srv.URL+"/sim/fhir/chart", "application/json", strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s: %d, want 400", bad, resp.StatusCode)
		}
	}
}
