package fhir_test

import (
	"os"
	"testing"

	"github.com/sinewhq/sinew/pkg/fhir"
)

// BenchmarkDecodeMapped: head fields (Parse) plus the mapper's struct
// (Decode) of one resource, as a consumer of FHIR_IN does for each event.
// Run with -cpu 1 for the per-core figure.
func BenchmarkDecodeMapped(b *testing.B) {
	enc := []byte(`{"resourceType":"Encounter","id":"eA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v2W3x4Y5z6A7b8C9d0E1f2G3h4I5","meta":{"versionId":"1","lastUpdated":"2026-03-02T10:15:00Z"},"identifier":[{"use":"usual","system":"urn:oid:1.2.840.114350.1.13.0.1.7.3.698084.8","value":"  9000001"}],"status":"finished","class":{"system":"urn:oid:1.2.840.114350.1.72.1.7.7.10.696784.13260","code":"IMP"},"type":[{"coding":[{"system":"urn:oid:1.2.840.114350.1.13.0.1.7.10.698084.10110","code":"51","display":"Surgery"}],"text":"Surgery"}],"subject":{"reference":"Patient/eSyntheticPatient000000001"},"period":{"start":"2026-03-02T08:00:00Z","end":"2026-03-02T09:30:00Z"},"location":[{"location":{"reference":"Location/eOR1","display":"OR 1"}}]}`)
	obs := []byte(`{"resourceType":"Observation","id":"eObs0000000000000000000000000000000000000000000000000000000000000000001","meta":{"versionId":"1","lastUpdated":"2026-03-02T10:15:00Z"},"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2345-7","display":"Glucose"}],"text":"Glucose"},"subject":{"reference":"Patient/eP1"},"encounter":{"reference":"Encounter/eE1"},"effectiveDateTime":"2026-03-02T07:00:00Z","issued":"2026-03-02T08:00:00Z","device":{"display":"BEAKER-CHEM-01","identifier":{"system":"urn:oid:1.2.840.114350.1.13.0.1.7.2.768076","value":"BEAKER-CHEM-01"}},"valueQuantity":{"value":98.5,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}`)
	prac, err := os.ReadFile("testdata/epic-practitioner.json")
	if err != nil {
		b.Fatal(err)
	}
	med, err := os.ReadFile("testdata/medication-contained.json")
	if err != nil {
		b.Fatal(err)
	}
	run := func(name string, raw []byte, decode func(*fhir.Resource) error) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := fhir.Parse(raw, fhir.ParseOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if err := decode(r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resources/s")
		})
	}
	run("Encounter", enc, func(r *fhir.Resource) error { _, err := fhir.Decode[fhir.Encounter](r); return err })
	run("Observation", obs, func(r *fhir.Resource) error { _, err := fhir.Decode[fhir.Observation](r); return err })
	run("Practitioner", prac, func(r *fhir.Resource) error { _, err := fhir.Decode[fhir.Practitioner](r); return err })
	run("Medication", med, func(r *fhir.Resource) error { _, err := fhir.Decode[fhir.Medication](r); return err })
}
