package epicsim

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/mfn"
)

// FHIRVolume is how many of each resource type the FHIR simulator seeds.
type FHIRVolume struct {
	Practitioners int `yaml:"practitioners"`
	Patients      int `yaml:"patients"`
	Encounters    int `yaml:"encounters"`
	Medications   int `yaml:"medications"`
	Observations  int `yaml:"observations"`
	// Days spreads Encounters and Observations over the days before
	// the simulator's Today.
	Days int `yaml:"days"`
}

// simResource is one stored resource: its type, id, clinical date (the
// one search's date parameter filters on; zero for types without) and
// its JSON bytes.
type simResource struct {
	Type string
	ID   string
	Date time.Time
	JSON []byte
	// Patient is the id of the patient the resource is about ("" for none).
	Patient string
}

// epicID is an Epic-style opaque id; long makes it exceed R4's 64
// characters as Epic's Observation and Encounter ids do.
func epicID(r *rand.Rand, long bool) string {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	n := 24
	if long {
		n = 72
	}
	var b strings.Builder
	b.WriteByte('e')
	for range n - 1 {
		b.WriteByte(alpha[r.IntN(len(alpha))])
	}
	return b.String()
}

// withCheckDigit is the NPI of nine digits with its check digit: Epic
// holds real NPIs, and Sinew drops one failing the check.
func withCheckDigit(nine string) string {
	for d := '0'; d <= '9'; d++ {
		if n := nine + string(d); mfn.ValidNPI(n) {
			return n
		}
	}
	return nine + "0"
}

// seedFHIR makes the simulator's synthetic data set: the same seed gives
// the same resources, byte for byte. Every person is fictitious.
func seedFHIR(seed uint64, v FHIRVolume, drift bool, today time.Time) []simResource {
	r := rand.New(rand.NewPCG(seed, 0xF41))
	var out []simResource
	meta := func(ver int, at time.Time) string {
		return fmt.Sprintf(`"meta":{"versionId":"%d","lastUpdated":"%s"}`, ver, at.UTC().Format(time.RFC3339))
	}
	specialties := []struct{ code, text string }{{"208600000X", "Surgery"}, {"207L00000X", "Anesthesiology"}, {"207N00000X", "Dermatology"}, {"246Q00000X", "Pathology"}}
	base := today.AddDate(0, 0, -v.Days)
	for i := range v.Practitioners {
		id := epicID(r, false)
		npi := withCheckDigit(fmt.Sprintf("1%09d", 100000000+i*7919)[:9])
		sp := specialties[i%len(specialties)]
		out = append(out, simResource{Type: "Practitioner", ID: id, JSON: fmt.Appendf(nil,
			`{"resourceType":"Practitioner","id":"%s",%s,"identifier":[{"use":"usual","system":"http://hl7.org/fhir/sid/us-npi","value":"%s"},{"use":"usual","type":{"text":"INTERNAL"},"system":"urn:oid:1.2.840.114350.1.13.0.1.7.2.697780","value":"  SIM%03d"},{"use":"usual","type":{"text":"EXTERNAL"},"system":"urn:oid:1.2.840.114350.1.13.0.1.7.2.697780","value":"SIM%03d"},{"use":"usual","type":{"text":"INTERNAL"},"system":"urn:oid:1.2.840.114350.1.13.0.1.7.2.836982","value":"   E%04d"}],"active":true,"name":[{"use":"usual","text":"Sim Provider %d, MD","family":"Provider%d","given":["Sim"]}],"qualification":[{"code":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0360","code":"MD"}],"text":"MD"}}]}`,
			id, meta(1, base), npi, i, i, 1000+i, i, i)})
		rid := epicID(r, false)
		out = append(out, simResource{Type: "PractitionerRole", ID: rid, JSON: fmt.Appendf(nil,
			`{"resourceType":"PractitionerRole","id":"%s",%s,"active":true,"practitioner":{"reference":"Practitioner/%s","display":"Sim Provider %d, MD"},"organization":{"reference":"Organization/eSimOrg1"},"specialty":[{"coding":[{"system":"http://nucc.org/provider-taxonomy","code":"%s","display":"%s"}],"text":"%s"}]}`,
			rid, meta(1, base), id, i, sp.code, sp.text, sp.text)})
	}
	var patients []string
	for i := range v.Patients {
		id := epicID(r, false)
		patients = append(patients, id)
		out = append(out, simResource{Type: "Patient", ID: id, Patient: id, JSON: fmt.Appendf(nil,
			`{"resourceType":"Patient","id":"%s",%s,"extension":[{"url":"http://open.epic.com/FHIR/StructureDefinition/extension/legal-sex","valueCodeableConcept":{"coding":[{"system":"urn:oid:1.2.840.114350.1.13.0.1.7.10.698084.130.657370.19999000","code":"unknown"}]}}],"identifier":[{"use":"usual","type":{"text":"EPI"},"system":"urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.0","value":"E%06d"},{"use":"usual","type":{"text":"INTERNAL"},"system":"urn:oid:1.2.840.114350.1.13.0.1.7.2.698084","value":"    Z%05d"}],"active":true,"name":[{"use":"official","family":"Testpatient%d","given":["Synthetic"]}],"birthDate":"19%02d-0%d-1%d"}`,
			id, meta(1, base), 100000+i, i, i, 40+i%50, 1+i%9, i%9)})
	}
	// Medications are the demo formulary's drugs (epicsim.go drugs), by
	// NDC in 11-digit form as Epic sends it; drift (FHIRFaults.FormularyDrift)
	// gives the heparin another strength than Willow's formulary states.
	for i := range v.Medications {
		m := drugs[i%len(drugs)]
		strength := m.strength
		if drift && m.charge == "PHM1003" {
			strength = "1000"
		}
		id := epicID(r, false)
		out = append(out, simResource{Type: "Medication", ID: id, JSON: fmt.Appendf(nil,
			`{"resourceType":"Medication","id":"%s",%s,"identifier":[{"use":"usual","system":"urn:oid:1.2.840.114350.1.13.0.1.7.2.698288","value":"  %d"}],"code":{"coding":[{"system":"http://hl7.org/fhir/sid/ndc","code":"%s","display":"%s"}],"text":"%s"},"status":"active","form":{"coding":[{"system":"http://snomed.info/sct","code":"%s","display":"%s"}],"text":"%s"},"ingredient":[{"itemCodeableConcept":{"text":"%s"},"strength":{"numerator":{"value":%s,"unit":"%s"},"denominator":{"value":1,"unit":"%s"}}}]}`,
			id, meta(1, base), 70000+i, ndc11(m.ndc), m.name, m.name, m.formCode, m.form, m.form, m.name, strength, m.unit, m.per)})
	}
	span := time.Duration(v.Days) * 24 * time.Hour
	if span <= 0 {
		span = 24 * time.Hour
	}
	var encs []simResource
	for i := range v.Encounters {
		id := epicID(r, true)
		at := base.Add(time.Duration(r.Int64N(int64(span)))).Truncate(time.Minute)
		pat := ""
		if len(patients) > 0 {
			pat = patients[r.IntN(len(patients))]
		}
		surgical := i%3 == 0
		class, typ := "AMB", `{"coding":[{"system":"urn:oid:1.2.840.114350.1.13.0.1.7.10.698084.10110","code":"101","display":"Office Visit"}],"text":"Office Visit"}`
		if surgical {
			class, typ = "IMP", `{"coding":[{"system":"urn:oid:1.2.840.114350.1.13.0.1.7.10.698084.10110","code":"51","display":"Surgery"}],"text":"Surgery"}`
		}
		e := simResource{Type: "Encounter", ID: id, Date: at, Patient: pat, JSON: fmt.Appendf(nil,
			`{"resourceType":"Encounter","id":"%s",%s,"identifier":[{"use":"usual","system":"urn:oid:1.2.840.114350.1.13.0.1.7.3.698084.8","value":"  %d"}],"status":"finished","class":{"system":"urn:oid:1.2.840.114350.1.72.1.7.7.10.696784.13260","code":"%s"},"type":[%s],"subject":{"reference":"Patient/%s"},"period":{"start":"%s","end":"%s"}}`,
			id, meta(1, at), 9000000+i, class, typ, pat, at.UTC().Format(time.RFC3339), at.Add(90*time.Minute).UTC().Format(time.RFC3339))}
		encs = append(encs, e)
		out = append(out, e)
	}
	devices := []string{"BEAKER-CHEM-01", "BEAKER-HEME-02", "BEAKER-COAG-03"}
	tests := []struct{ loinc, text, unit string }{{"2345-7", "Glucose", "mg/dL"}, {"718-7", "Hemoglobin", "g/dL"}, {"5902-2", "Prothrombin time", "s"}}
	for i := range v.Observations {
		id := epicID(r, true)
		at := base.Add(time.Duration(r.Int64N(int64(span)))).Truncate(time.Second)
		k := i % len(tests)
		ts := tests[k]
		pat, enc := "", ""
		if len(encs) > 0 {
			e := encs[r.IntN(len(encs))]
			pat, enc = e.Patient, e.ID
		}
		out = append(out, simResource{Type: "Observation", ID: id, Date: at, Patient: pat, JSON: fmt.Appendf(nil,
			`{"resourceType":"Observation","id":"%s",%s,"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"%s","display":"%s"}],"text":"%s"},"subject":{"reference":"Patient/%s"},"encounter":{"reference":"Encounter/%s"},"effectiveDateTime":"%s","issued":"%s","device":{"display":"%s","identifier":{"system":"urn:oid:1.2.840.114350.1.13.0.1.7.2.768076","value":"%s"}},"valueQuantity":{"value":%d.%d,"unit":"%s","system":"http://unitsofmeasure.org","code":"%s"}}`,
			id, meta(1, at), ts.loinc, ts.text, ts.text, pat, enc, at.UTC().Format(time.RFC3339), at.Add(time.Hour).UTC().Format(time.RFC3339), devices[k], devices[k], 10+r.IntN(90), r.IntN(10), ts.unit, ts.unit)})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return out[i].Type < out[j].Type
		}
		if !out[i].Date.Equal(out[j].Date) {
			return out[i].Date.Before(out[j].Date)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// ndc11 is a hyphenated 10-digit NDC zero-padded to 5-4-2, without hyphens.
func ndc11(ndc string) string {
	p := strings.Split(ndc, "-")
	if len(p) != 3 {
		return ndc
	}
	pad := func(s string, n int) string { return strings.Repeat("0", max(n-len(s), 0)) + s }
	return pad(p[0], 5) + pad(p[1], 4) + pad(p[2], 2)
}
