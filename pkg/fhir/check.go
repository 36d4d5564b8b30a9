package fhir

import (
	"bytes"
	"errors"
	"io"
)

// Item is one resource read from a document (or the error in its place).
type Item struct {
	Resource *Resource // nil when Err is set
	Raw      []byte    // the bytes read (the NDJSON line, the document)
	Err      error     // an *Error, Line set for NDJSON
	Entry    int       // index in the enclosing Bundle, -1 for a top-level resource
}

// ReadDocument reads b as one resource, a Bundle (the Bundle, then each
// entry's resource) or NDJSON (each line). It calls fn for each item in
// order and stops early when fn returns false. The bytes are not copied.
func ReadDocument(b []byte, fn func(Item) bool) {
	if IsNDJSON(b) {
		n := NewNDJSONReader(bytes.NewReader(b), ParseOptions{})
		for {
			r, raw, err := n.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if !fn(Item{Resource: r, Raw: raw, Err: err, Entry: -1}) {
				return
			}
		}
	}
	r, err := Parse(b, ParseOptions{})
	if err != nil || r.Type != "Bundle" {
		fn(Item{Resource: r, Raw: b, Err: err, Entry: -1})
		return
	}
	bun, err := bundleOf(r)
	if err != nil {
		fn(Item{Raw: b, Err: err, Entry: -1})
		return
	}
	if !fn(Item{Resource: r, Raw: b, Entry: -1}) {
		return
	}
	for i, e := range bun.Entries {
		switch {
		case e.Resource != nil:
			if !fn(Item{Resource: e.Resource, Raw: e.Resource.Raw, Entry: i}) {
				return
			}
		case e.Outcome != nil:
			// A search.mode outcome entry: shown as what it is.
			if !fn(Item{Resource: &Resource{Type: "OperationOutcome", Raw: e.Outcome.JSON()}, Entry: i}) {
				return
			}
		}
	}
}
