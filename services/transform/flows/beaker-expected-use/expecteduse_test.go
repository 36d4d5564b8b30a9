package beakerexpecteduse_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/recon"
	beakerexpecteduse "github.com/sinewhq/sinew/services/transform/flows/beaker-expected-use"
	"github.com/sinewhq/sinew/services/transform/flows/fhircheck"
)

func obsJSON(id, loinc, device, status, at string) []byte {
	return fmt.Appendf(nil, `{"resourceType":"Observation","id":"%s","meta":{"versionId":"1"},"status":"%s","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"%s"}]},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"%s","device":{"display":"Analyzer","identifier":{"system":"urn:oid:dev","value":" %s "}},"valueQuantity":{"value":98.10,"unit":"mg/dL"}}`,
		id, status, loinc, at, device)
}

func TestFromEvent(t *testing.T) {
	got, err := beakerexpecteduse.FromEvent(&sinewv1.FhirResourceReceived{Json: obsJSON("o1", "2345-7", "CHEM-01", "final", "2026-11-26T09:00:00Z")})
	if err != nil {
		t.Fatal(err)
	}
	want := beakerexpecteduse.Test{Observation: "Observation/o1", Test: "2345-7", Device: "CHEM-01", Status: "final", Laboratory: true, At: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
	if got != want || !got.Counts() {
		t.Errorf("got %+v (counts %v), want %+v", got, got.Counts(), want)
	}
	if p, _ := beakerexpecteduse.FromEvent(&sinewv1.FhirResourceReceived{Json: obsJSON("o2", "2345-7", "CHEM-01", "preliminary", "2026-11-26T09:00:00Z")}); p.Counts() {
		t.Error("a preliminary result counted")
	}
	for name, raw := range map[string]string{
		"not an observation": `{"resourceType":"Encounter","id":"e1"}`,
		"wrong json type":    `{"resourceType":"Observation","id":"o1","device":"x"}`,
		"not json":           `{"resourceType":`,
	} {
		if _, err := beakerexpecteduse.FromEvent(&sinewv1.FhirResourceReceived{Json: []byte(raw)}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestUses(t *testing.T) {
	f := &flows.Flow{ID: "x", ExpectedUse: &flows.ExpectedUse{Use: []flows.ReagentUse{{Device: "D", Test: "T", Reagent: "R", PerTest: "0.5", UOM: "ML"}}}}
	if u, err := beakerexpecteduse.Uses(f); err != nil || u[0].PerTest != 5000 {
		t.Fatalf("%v %v", u, err)
	}
	for _, bad := range []flows.ReagentUse{{Device: "D", Test: "T", Reagent: "R", PerTest: "-1", UOM: "ML"}, {Device: "D", Test: "T", Reagent: "R", PerTest: "1"}, {Test: "T", Reagent: "R", PerTest: "1", UOM: "EA"}} {
		f.ExpectedUse.Use = []flows.ReagentUse{bad}
		if _, err := beakerexpecteduse.Uses(f); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := beakerexpecteduse.Uses(&flows.Flow{ID: "x"}); err == nil {
		t.Error("no expected_use accepted")
	}
}

func TestReconcile(t *testing.T) {
	day := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return day.Add(time.Duration(h) * time.Hour) }
	uses := []beakerexpecteduse.Use{{Device: "HEME", Test: "718-7", Reagent: "CBC-PK", UOM: "EA", PerTest: 10000}, {Device: "CHEM", Test: "2345-7", Reagent: "GLU-R1", UOM: "ML", PerTest: 250000}}
	tests := func(device, loinc string, n, h int) []beakerexpecteduse.Test {
		var out []beakerexpecteduse.Test
		for i := range n {
			out = append(out, beakerexpecteduse.Test{Observation: fmt.Sprintf("Observation/%s%d-%d", device, h, i), Test: loinc, Device: device, Status: "final", Laboratory: true, At: at(h)})
		}
		return out
	}
	post := func(code, qty, uom, outcome string, h int) fhircheck.Posting {
		q, err := recon.ParseQty(qty)
		if err != nil {
			t.Fatal(err)
		}
		return fhircheck.Posting{Key: code + qty + fmt.Sprint(h), Code: code, Quantity: q, UOM: uom, Outcome: outcome, Date: at(h)}
	}
	join := func(ts ...[]beakerexpecteduse.Test) []beakerexpecteduse.Test {
		var out []beakerexpecteduse.Test
		for _, t := range ts {
			out = append(out, t...)
		}
		return out
	}
	tol := recon.Tolerance{BasisPoints: 500}
	for _, tc := range []struct {
		name     string
		tests    []beakerexpecteduse.Test
		postings []fhircheck.Posting
		verdict  string
		want     []string
	}{
		{"clean day", join(tests("HEME", "718-7", 4, 9), tests("CHEM", "2345-7", 2, 9)),
			[]fhircheck.Posting{post("CBC-PK", "-4", "EA", "accepted", 9), post("GLU-R1", "-50", "ML", "accepted", 9)}, recon.VerdictPass, nil},
		{"within 5%", tests("CHEM", "2345-7", 20, 9), []fhircheck.Posting{post("GLU-R1", "-524", "ML", "accepted", 9)}, recon.VerdictPass, nil},
		{"over-consuming instrument", join(tests("HEME", "718-7", 4, 9), tests("CHEM", "2345-7", 20, 9)),
			[]fhircheck.Posting{post("CBC-PK", "-4", "EA", "accepted", 9), post("GLU-R1", "-600", "ML", "accepted", 9)}, recon.VerdictVariance, []string{"reagent|GLU-R1"}},
		{"consumption without tests", nil, []fhircheck.Posting{post("CBC-PK", "-1", "EA", "accepted", 9)}, recon.VerdictVariance, []string{"reagent|CBC-PK"}},
		{"a return nets out", tests("HEME", "718-7", 2, 9), []fhircheck.Posting{post("CBC-PK", "-3", "EA", "accepted", 9), post("CBC-PK", "1", "EA", "accepted", 10)}, recon.VerdictPass, nil},
		{"after the cut and in flight are the next run's", tests("HEME", "718-7", 2, 9),
			[]fhircheck.Posting{post("CBC-PK", "-2", "EA", "accepted", 9), post("CBC-PK", "-5", "EA", "accepted", 13), post("CBC-PK", "-1", "EA", "", 11)}, recon.VerdictPass, nil},
		{"another unit", tests("HEME", "718-7", 1, 9), []fhircheck.Posting{post("CBC-PK", "-1", "EA", "accepted", 9), post("CBC-PK", "-1", "PK", "accepted", 9)}, recon.VerdictVariance, []string{"unit|CBC-PK|CBC-PK-19 in PK"}},
		{"undeclared test expects nothing", tests("COAG", "5902-2", 3, 9), nil, recon.VerdictPass, nil},
		{"nothing that day", nil, []fhircheck.Posting{post("OTHER", "-1", "EA", "accepted", 9)}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := beakerexpecteduse.Reconcile(beakerexpecteduse.Input{Scope: "2026-11-26", Day: day, Cut: at(12), Uses: uses, Tests: tc.tests, Postings: tc.postings, Tolerance: tol})
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
			if res.Summary.Verdict != tc.verdict || strings.Join(got, ",") != strings.Join(tc.want, ",") {
				for _, r := range res.Rows {
					t.Log(r)
				}
				t.Errorf("verdict %s variances %v, want %s %v", res.Summary.Verdict, got, tc.verdict, tc.want)
			}
		})
	}
}

func FuzzFromEvent(f *testing.F) {
	f.Add(obsJSON("o1", "2345-7", "CHEM-01", "final", "2026-11-26T09:00:00Z"))
	f.Add([]byte(`{"resourceType":"Observation","id":"o1","device":{"reference":"Device/1"},"issued":"2026-11-26"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tt, err := beakerexpecteduse.FromEvent(&sinewv1.FhirResourceReceived{Json: b})
		if err == nil && tt.Counts() && (tt.Device == "" || tt.At.IsZero()) {
			t.Fatalf("counted a test without instrument or date: %+v", tt)
		}
	})
}
