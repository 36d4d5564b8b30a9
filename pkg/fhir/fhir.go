// Package fhir reads FHIR R4 JSON as Epic sends it, losslessly: a
// Resource is its original bytes plus the few head fields Sinew routes
// and deduplicates by (resourceType, id, meta.versionId, meta.lastUpdated).
// Mappers decode the fields they use into the small hand-written structs
// of mapped.go from those bytes; nothing is re-encoded, so unknown
// elements, contained resources and (primitive) extensions reach every
// consumer exactly as Epic wrote them.
//
// Epic ships a few deviations from R4 (ids longer than 64 characters,
// identifier values padded with spaces); they are Warnings, never
// rejections. What cannot be read at all (not JSON, not an object, no or
// an unknown resourceType, a read payload without id) is an *Error that
// names the path and an OperationOutcome issue code, never a value.
package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Resource is one FHIR resource: its original bytes and its head fields.
type Resource struct {
	// Raw is the resource exactly as received (a Bundle entry's resource
	// or an NDJSON line without its line ending).
	Raw         []byte
	Type        string
	ID          string
	VersionID   string
	LastUpdated time.Time // zero when meta.lastUpdated is absent or unreadable
	Warnings    []Warning
}

// Key is resourceType/id, the resource's identity on the server.
func (r *Resource) Key() string { return r.Type + "/" + r.ID }

// Warning is a deviation from R4 that Sinew accepts (Epic ships it).
type Warning struct {
	Code string // e.g. WarnIDTooLong
	Path string // FHIRPath-like location, e.g. identifier[2].value
}

func (w Warning) String() string { return w.Code + " at " + w.Path }

// Warning codes.
const (
	// WarnIDTooLong: an id longer than R4's 64 characters (Epic's ids are).
	WarnIDTooLong = "id-too-long"
	// WarnPadded: an identifier value with leading or trailing spaces
	// (Epic pads INTERNAL and EXTERNAL ids); mappers trim it.
	WarnPadded = "identifier-padded"
	// WarnLastUpdated: meta.lastUpdated present but not an R4 instant.
	WarnLastUpdated = "lastupdated-unreadable"
	// WarnNoID: a resource without id where one is allowed (a
	// transaction or batch Bundle entry to be created).
	WarnNoID = "no-id"
)

// Error is input that is not a readable R4 resource. Code is an
// OperationOutcome issue type (structure, required, invalid, value);
// Path names where, Line the NDJSON line (0 when not NDJSON). It never
// carries a value from the input.
type Error struct {
	Code string
	Path string
	Msg  string
	Line int
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("fhir: ")
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	b.WriteString(e.Msg)
	if e.Path != "" {
		b.WriteString(" at ")
		b.WriteString(e.Path)
	}
	b.WriteString(" (" + e.Code + ")")
	return b.String()
}

// Permanent marks the error as one a retry cannot cure (pkg/bus
// dead-letters it at once).
func (e *Error) Permanent() bool { return true }

// Outcome is the OperationOutcome that answers the error.
func (e *Error) Outcome() *OperationOutcome {
	msg := e.Msg
	if e.Line > 0 {
		msg = fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return NewOutcome(SeverityError, e.Code, msg, e.Path)
}

// ParseOptions chooses how strict Parse is.
type ParseOptions struct {
	// AllowNoID accepts a resource without id with a WarnNoID (a
	// transaction entry to be created); a read or sync payload must have one.
	AllowNoID bool
}

// head is what Parse decodes (scanHead); everything else stays in Raw.
type head struct {
	ResourceType *string
	ID           *string
	Meta         *struct {
		VersionID   string
		LastUpdated string
	}
	Identifier []struct {
		Value *string
	}
}

// scanHead reads the head fields in one validating pass over b. A
// syntax error anywhere is err; else typePath names the first head
// element of the wrong JSON type (as encoding/json's UnmarshalTypeError
// Field would: "meta.versionId", "identifier.value").
func scanHead(b []byte) (h head, typePath string, err error) {
	s := &scanner{b: b}
	wrong := func(path string) error {
		if typePath == "" {
			typePath = path
		}
		return s.skip()
	}
	optString := func(dst **string, path string) error {
		switch s.peek() {
		case '"':
			v, err := s.stringValue()
			*dst = &v
			return err
		case 'n':
			if s.null() {
				*dst = nil
				return nil
			}
		}
		return wrong(path)
	}
	plainString := func(dst *string, path string) error {
		var p *string
		if s.peek() == 'n' {
			if s.null() {
				return nil
			}
		}
		if err := optString(&p, path); err != nil || p == nil {
			return err
		}
		*dst = *p
		return nil
	}
	err = s.object(func(key []byte) error {
		switch string(key) {
		case "resourceType":
			return optString(&h.ResourceType, "resourceType")
		case "id":
			return optString(&h.ID, "id")
		case "meta":
			switch s.peek() {
			case 'n':
				if s.null() {
					h.Meta = nil
					return nil
				}
			case '{':
				if h.Meta == nil {
					h.Meta = &struct{ VersionID, LastUpdated string }{}
				}
				return s.object(func(k []byte) error {
					switch string(k) {
					case "versionId":
						return plainString(&h.Meta.VersionID, "meta.versionId")
					case "lastUpdated":
						return plainString(&h.Meta.LastUpdated, "meta.lastUpdated")
					}
					return s.skip()
				})
			}
			return wrong("meta")
		case "identifier":
			switch s.peek() {
			case 'n':
				if s.null() {
					h.Identifier = nil
					return nil
				}
			case '[':
				h.Identifier = h.Identifier[:0]
				return s.array(func(int) error {
					h.Identifier = append(h.Identifier, struct{ Value *string }{})
					id := &h.Identifier[len(h.Identifier)-1]
					switch s.peek() {
					case 'n':
						if s.null() {
							return nil
						}
					case '{':
						return s.object(func(k []byte) error {
							if string(k) == "value" {
								return optString(&id.Value, "identifier.value")
							}
							return s.skip()
						})
					}
					return wrong("identifier")
				})
			}
			return wrong("identifier")
		}
		return s.skip()
	})
	if err == nil {
		err = s.end()
	}
	return h, typePath, err
}

// Parse reads one resource from b (b is kept, not copied: the caller must
// not change it afterwards).
func Parse(b []byte, o ParseOptions) (*Resource, error) {
	t := bytes.TrimLeft(b, " \t\r\n")
	if len(t) == 0 {
		return nil, &Error{Code: "structure", Msg: "empty input"}
	}
	if t[0] != '{' {
		if !json.Valid(b) {
			return nil, syntaxError(b)
		}
		return nil, &Error{Code: "structure", Msg: "not a JSON object"}
	}
	h, typePath, err := scanHead(b)
	if err != nil {
		return nil, syntaxError(b)
	}
	if typePath != "" {
		return nil, &Error{Code: "structure", Path: typePath, Msg: "wrong JSON type"}
	}
	r := &Resource{Raw: b}
	switch {
	case h.ResourceType == nil:
		return nil, &Error{Code: "required", Path: "resourceType", Msg: "no resourceType"}
	case !IsR4Type(*h.ResourceType):
		return nil, &Error{Code: "not-supported", Path: "resourceType", Msg: "not an R4 resource type"}
	}
	r.Type = *h.ResourceType
	switch {
	case h.ID == nil || *h.ID == "":
		if !o.AllowNoID && !envelopeType(r.Type) {
			return nil, &Error{Code: "required", Path: r.Type + ".id", Msg: "no id"}
		}
		r.Warnings = append(r.Warnings, Warning{Code: WarnNoID, Path: r.Type + ".id"})
	default:
		r.ID = *h.ID
		if !validID(r.ID) {
			return nil, &Error{Code: "value", Path: r.Type + ".id", Msg: "id holds characters R4 does not allow"}
		}
		if len(r.ID) > 64 {
			r.Warnings = append(r.Warnings, Warning{Code: WarnIDTooLong, Path: r.Type + ".id"})
		}
	}
	if h.Meta != nil {
		r.VersionID = h.Meta.VersionID
		if h.Meta.LastUpdated != "" {
			ts, err := time.Parse(time.RFC3339Nano, h.Meta.LastUpdated)
			if err != nil {
				r.Warnings = append(r.Warnings, Warning{Code: WarnLastUpdated, Path: r.Type + ".meta.lastUpdated"})
			} else {
				r.LastUpdated = ts
			}
		}
	}
	for i, id := range h.Identifier {
		if id.Value != nil && strings.TrimSpace(*id.Value) != *id.Value {
			r.Warnings = append(r.Warnings, Warning{Code: WarnPadded, Path: fmt.Sprintf("%s.identifier[%d].value", r.Type, i)})
		}
	}
	return r, nil
}

// envelopeType: types that carry or answer resources rather than being
// stored ones; a searchset Bundle or an OperationOutcome has no id.
func envelopeType(t string) bool {
	return t == "Bundle" || t == "OperationOutcome" || t == "Parameters"
}

// validID: R4's id characters [A-Za-z0-9\-\.], any length (the 64 limit
// is a warning: Epic exceeds it).
func validID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// syntaxError names the byte offset of a JSON syntax error (an offset,
// not the text around it: the text may be PHI).
func syntaxError(b []byte) *Error {
	var v any
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &Error{Code: "structure", Path: fmt.Sprintf("offset %d", se.Offset), Msg: "malformed JSON"}
	}
	return &Error{Code: "structure", Msg: "malformed JSON"}
}
