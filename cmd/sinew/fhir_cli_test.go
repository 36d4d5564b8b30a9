package main

import (
	"strings"
	"testing"
)

func TestFHIRCheck(t *testing.T) {
	for _, tc := range []struct {
		name, stdin string
		args        []string
		code        int
		want        []string
	}{
		{"resource with warnings", "", []string{"fhir", "check", "../../pkg/fhir/testdata/epic-practitioner.json"}, 0,
			[]string{"Practitioner/eSynthetic", "warning: id-too-long at Practitioner.id", "warning: identifier-padded at Practitioner.identifier[1].value"}},
		{"bundle entries", "", []string{"fhir", "check", "../../pkg/fhir/testdata/searchset-next-outcome.json"}, 0,
			[]string{"Bundle\n", "entry[0] Encounter/e1", "entry[1] Patient/p1", "entry[2] OperationOutcome"}},
		{"ndjson with a bad line", "", []string{"fhir", "check", "../../pkg/fhir/testdata/export-practitioner.ndjson"}, 1,
			[]string{"Practitioner/pr1", "Practitioner/pr3", `"resourceType":"OperationOutcome"`, "line 3: malformed JSON", "identifier-padded"}},
		{"stdin malformed", `{"resourceType":"Patient",`, []string{"fhir", "check"}, 1,
			[]string{`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"structure"`}},
		{"stdin dash unknown type", `{"resourceType":"Nope","id":"x"}`, []string{"fhir", "check", "-"}, 1,
			[]string{`"code":"not-supported"`, `"expression":["resourceType"]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := cli(t, tc.stdin, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
