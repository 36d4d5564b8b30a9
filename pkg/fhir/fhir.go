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

// head is what Parse decodes; everything else stays in Raw.
type head struct {
	ResourceType *string `json:"resourceType"`
	ID           *string `json:"id"`
	Meta         *struct {
		VersionID   string `json:"versionId"`
		LastUpdated string `json:"lastUpdated"`
	} `json:"meta"`
	Identifier []struct {
		Value *string `json:"value"`
	} `json:"identifier"`
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
	var h head
	if err := json.Unmarshal(b, &h); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, &Error{Code: "structure", Path: te.Field, Msg: "wrong JSON type"}
		}
		return nil, syntaxError(b)
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
