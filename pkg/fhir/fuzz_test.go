package fhir_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sinewhq/sinew/pkg/fhir"
)

func seeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.*json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"resourceType":"Patient","id":"a"}`))
}

// FuzzReadDocument: any input is read without panicking; every resource
// keeps bytes of the input; every failure is an *fhir.Error.
func FuzzReadDocument(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		fhir.ReadDocument(b, func(it fhir.Item) bool {
			if it.Err != nil {
				var fe *fhir.Error
				if !errors.As(it.Err, &fe) {
					t.Fatalf("not an *fhir.Error: %v", it.Err)
				}
				_ = fe.Outcome().JSON()
				return true
			}
			if it.Resource.Type != "OperationOutcome" && !bytes.Contains(b, it.Resource.Raw) {
				t.Fatal("resource bytes not from the input")
			}
			return true
		})
	})
}

// FuzzParseOutcome: classification never panics and always gives a class.
func FuzzParseOutcome(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		oo, err := fhir.ParseOutcome(b)
		if err != nil {
			return
		}
		for _, st := range []int{200, 400, 429, 500} {
			if fhir.Classify(st, oo) == 0 {
				t.Fatal("no class")
			}
		}
	})
}
