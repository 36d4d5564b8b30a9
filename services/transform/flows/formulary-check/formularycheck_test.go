package formularycheck_test

import (
	"testing"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	formularycheck "github.com/sinewhq/sinew/services/transform/flows/formulary-check"
)

func TestNDC11(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0143-9634-01", "00143963401"},   // 4-4-2
		{"0409-4888-10", "00409488810"},   // 4-4-2
		{"12345-678-90", "12345067890"},   // 5-3-2
		{"12345-6789-0", "12345678900"},   // 5-4-1
		{"00143963401", "00143963401"},    // already 11 digits
		{"  00143963401 ", "00143963401"}, // Epic's padding
		{"PHM1001", "PHM1001"},            // not an NDC: as it is
		{"", ""},
	} {
		if got := formularycheck.NDC11(tc.in); got != tc.want {
			t.Errorf("NDC11(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func med(json string) *sinewv1.FhirResourceReceived {
	return &sinewv1.FhirResourceReceived{ResourceType: "Medication", Json: []byte(json)}
}

func TestFromEvent(t *testing.T) {
	d, err := formularycheck.FromEvent(med(`{"resourceType":"Medication","id":"m1","code":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"1807627"},{"system":"http://hl7.org/fhir/sid/ndc","code":"0409-4888-10"}]},` +
		`"form":{"coding":[{"system":"http://snomed.info/sct","code":"385219001","display":"Solution for injection"}]},"ingredient":[{"strength":{"numerator":{"value":5000,"unit":"[iU]"},"denominator":{"value":1,"unit":"mL"}}}],"contained":[{"resourceType":"Substance"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := formularycheck.Drug{Code: "00409488810", Form: "Solution for injection", Strength: "5000 [iU]/mL", Source: "Medication/m1"}
	if d != want {
		t.Errorf("got %+v, want %+v", d, want)
	}
	for name, raw := range map[string]string{
		"not a medication": `{"resourceType":"Practitioner","id":"p1"}`,
		"wrong json type":  `{"resourceType":"Medication","id":"m1","code":"x"}`,
		"not json":         `{"resourceType":`,
	} {
		if _, err := formularycheck.FromEvent(med(raw)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestFromItem(t *testing.T) {
	it := &sinewv1.ItemUpsert{Envelope: &sinewv1.Envelope{IdempotencyKey: "k1"}, ItemNumber: "RX-1001",
		Attributes: map[string]string{"epic_code": "0143-9634-01", "epic_source": "ndc", "strength": "2 mg/mL"}}
	d, ok := formularycheck.FromItem(it)
	if !ok || d != (formularycheck.Drug{Code: "00143963401", Strength: "2 mg/mL", Source: "k1"}) {
		t.Errorf("got %+v %v", d, ok)
	}
	it.Attributes["epic_source"] = "supply"
	if _, ok := formularycheck.FromItem(it); ok {
		t.Error("a supply item is not a formulary drug")
	}
}

func TestCompare(t *testing.T) {
	w := func(code, form, strength string) formularycheck.Drug {
		return formularycheck.Drug{Code: code, Form: form, Strength: strength, Source: "mfn:" + code}
	}
	e := func(code, form, strength string) formularycheck.Drug {
		return formularycheck.Drug{Code: code, Form: form, Strength: strength, Source: "Medication/" + code}
	}
	for _, tc := range []struct {
		name        string
		willow, epc []formularycheck.Drug
		want        []string // kind:code
	}{
		{"clean day", []formularycheck.Drug{w("1", "Tablet", "5 mg"), w("2", "", "")}, []formularycheck.Drug{e("1", "tablet", "5mg"), e("2", "Capsule", "250 mg")}, nil},
		{"strength drift", []formularycheck.Drug{w("1", "Tablet", "5 mg")}, []formularycheck.Drug{e("1", "Tablet", "10 mg")}, []string{"strength:1"}},
		{"form drift", []formularycheck.Drug{w("1", "Tablet", "")}, []formularycheck.Drug{e("1", "Capsule", "5 mg")}, []string{"form:1"}},
		{"missing both ways", []formularycheck.Drug{w("1", "", ""), w("2", "", "")}, []formularycheck.Drug{e("2", "", ""), e("3", "", "")}, []string{"not-in-epic:1", "not-in-formulary:3"}},
		{"later record wins", []formularycheck.Drug{w("1", "", "5 mg"), w("1", "", "10 mg")}, []formularycheck.Drug{e("1", "", "10 mg")}, nil},
		{"no code ignored", []formularycheck.Drug{w("", "", "")}, []formularycheck.Drug{e("", "", "")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, v := range formularycheck.Compare(tc.willow, tc.epc) {
				got = append(got, v.Kind+":"+v.Code)
				if v.String() == "" {
					t.Error("empty text")
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}
