package fhir

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/corpus"
)

// mappedNames are the json names of every mapped struct's fields,
// exactly and lowercased.
var mappedNames, mappedLower = func() (map[string]bool, map[string]bool) {
	exact, lower := map[string]bool{}, map[string]bool{}
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			exact[name], lower[strings.ToLower(name)] = true, true
			walk(t.Field(i).Type)
		}
	}
	for _, v := range []any{Encounter{}, Observation{}, Practitioner{}, PractitionerRole{}, Medication{}} {
		walk(reflect.TypeOf(v))
	}
	return exact, lower
}()

// keysDiffer: a key that encoding/json would match to a mapped field and
// the plan would not (another case, or escapes).
func keysDiffer(raw []byte) bool {
	if bytes.IndexByte(raw, '\\') >= 0 {
		return true
	}
	s := &scanner{b: raw}
	differ := false
	var walk func() error
	walk = func() error {
		switch s.peek() {
		case '{':
			return s.object(func(k []byte) error {
				if mappedLower[strings.ToLower(string(k))] && !mappedNames[string(k)] {
					differ = true
				}
				return walk()
			})
		case '[':
			return s.array(func(int) error { return walk() })
		}
		return s.skip()
	}
	_ = walk()
	return differ
}

// sameAsEncodingJSON: Decode's plan gives what encoding/json gives (value
// or the wrongly typed element's path), for input both read alike
// (exact-case keys, no escapes in keys).
func sameAsEncodingJSON[T any](t *testing.T, raw []byte) {
	t.Helper()
	if keysDiffer(raw) {
		return
	}
	r := &Resource{Raw: raw, Type: "X"}
	got, gerr := Decode[T](r)
	want, werr := decodeJSON[T](r)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("%T: plan error %v, encoding/json error %v: %q", *new(T), gerr, werr, raw)
	}
	if gerr != nil {
		// encoding/json names no element for a json.Number string that is
		// not a number; the plan does.
		gp, wp := gerr.(*Error).Path, werr.(*Error).Path
		if gp != wp && wp != "X" {
			t.Fatalf("%T: plan error at %s, encoding/json at %s: %q", *new(T), gp, wp, raw)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%T: plan %+v, encoding/json %+v: %q", *new(T), got, want, raw)
	}
}

func allMapped(t *testing.T, raw []byte) {
	sameAsEncodingJSON[Encounter](t, raw)
	sameAsEncodingJSON[Observation](t, raw)
	sameAsEncodingJSON[Practitioner](t, raw)
	sameAsEncodingJSON[PractitionerRole](t, raw)
	sameAsEncodingJSON[Medication](t, raw)
}

func TestDecodePlanAgreesWithEncodingJSON(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.*json")
	// The conformance corpus only adds breadth (required in CI).
	for _, p := range append(files, corpus.Seeds(t, "fhir", "*.json")...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		allMapped(t, b)
	}
	for _, in := range []string{
		`{"id":"a","status":null,"class":{"code":5}}`,
		`{"valueQuantity":{"value":"98.50"}}`, `{"valueQuantity":{"value":"x"}}`, `{"valueQuantity":{"value":1e400}}`,
		`{"identifier":[],"name":[{"given":["A",null,"B"]}]}`, `{"active":"yes"}`, `{"active":null,"identifier":null}`,
		`{"code":{"coding":[{"system":1,"code":"c"}]},"form":[]}`, `[]`, `"x"`, `{"ingredient":[{"strength":{"numerator":{"value":-0.5e-3}}}]}`,
		`{"id":"a\u00e9\n"}`, `{"type":[{"coding":{}}]}`,
	} {
		allMapped(t, []byte(in))
	}
}

// FuzzDecodePlan: Decode's plans agree with encoding/json on every mapped type.
func FuzzDecodePlan(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.*json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"resourceType":"Observation","id":"o","valueQuantity":{"value":98.5},"device":{"identifier":{"value":"D"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) { allMapped(t, b) })
}

// TestDecodeLeavesSelfDecodingTypesToEncodingJSON: a struct with a
// time.Time (its own UnmarshalJSON) or a map is decoded by encoding/json.
func TestDecodeLeavesSelfDecodingTypesToEncodingJSON(t *testing.T) {
	type withTime struct {
		At   time.Time         `json:"at"`
		Tags map[string]string `json:"tags"`
		ID   string            `json:"id"`
	}
	if planFor(reflect.TypeFor[withTime]()) != nil {
		t.Fatal("a plan for a struct with time.Time and a map")
	}
	v, err := Decode[withTime](&Resource{Type: "X", Raw: []byte(`{"at":"2026-03-02T10:00:00Z","tags":{"a":"b"},"id":"x"}`)})
	if err != nil || v.At.IsZero() || v.Tags["a"] != "b" || v.ID != "x" {
		t.Fatalf("%+v %v", v, err)
	}
}
