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

// FuzzParseNotification: any input is read without panicking; a
// failure is an *fhir.Error; a notification read names its subscription.
func FuzzParseNotification(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"Parameters","parameter":[{"name":"subscription","valueReference":{"reference":"Subscription/s1"}},{"name":"type","valueCode":"event-notification"},{"name":"events-since-subscription-start","valueString":"2"},{"name":"notification-event","part":[{"name":"event-number","valueString":"2"},{"name":"focus","valueReference":{"reference":"Encounter/e1"}}]}]}},{"resource":{"resourceType":"Encounter","id":"e1"}}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"history"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := fhir.ParseNotification(b)
		if err != nil {
			var fe *fhir.Error
			if !errors.As(err, &fe) {
				t.Fatalf("%T %v", err, err)
			}
			return
		}
		if n.Subscription == "" || n.Type == "" {
			t.Fatalf("%+v", n)
		}
	})
}

// FuzzParseCapabilityStatement: any input is read without panicking; a
// failure is an *fhir.Error.
func FuzzParseCapabilityStatement(f *testing.F) {
	f.Add([]byte(`{"resourceType":"CapabilityStatement","rest":[{"mode":"server","resource":[{"type":"Encounter","interaction":[{"code":"search-type"}],"searchParam":[{"name":"date","type":"date"}]},{"type":"Subscription","extension":[{"url":"` + fhir.ExtTopicCanonical + `","valueCanonical":"t"}]}],"operation":[{"name":"export"}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := fhir.ParseCapabilityStatement(b)
		if err != nil {
			var fe *fhir.Error
			if !errors.As(err, &fe) {
				t.Fatalf("%T %v", err, err)
			}
			return
		}
		if c.Types == nil || c.Topics == nil {
			t.Fatal("nil maps")
		}
	})
}
