package hl7flow

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/reason"
)

// Error texts of the mapper end up in warn logs, DLQ reasons and audit
// details, which are kept for years and cannot be deleted. A field may
// carry anything (a name in ZRX-1, a birth date in RXD-4, an MRN in RXD-2),
// so a text names the field's path and the HL7 table 0357 code and shows a
// value only as a Value: its length and, with a secret, its keyed hash.

// valueRefSystem is the audit.PatientRef system of field value references.
const valueRefSystem = "hl7-field-value"

// Value describes a field value without showing it.
type Value struct {
	Len int    // bytes
	Ref string // audit.PatientRef of the value under the mapper's secret; "" without one
}

func (v Value) String() string {
	if v.Len == 0 {
		return "empty"
	}
	s := strconv.Itoa(v.Len) + " bytes"
	if v.Ref != "" {
		s += ", " + v.Ref
	}
	return s
}

// describe is v's Value: an operator finds the value itself in the
// message (sinew dlq show --payload), and matches it by its reference.
func (mp *Mapper) describe(v string) Value {
	d := Value{Len: len(v)}
	if v != "" && len(mp.Secret) > 0 {
		d.Ref = audit.PatientRef(mp.Secret, valueRefSystem, v)
	}
	return d
}

// FieldError is a field the message cannot be mapped with (permanent).
type FieldError struct {
	Flow, MessageType, ControlID string
	Record                       string // "line 2", "record 1"; "" for the message
	Field, Path                  string // the mapper's field name and its Terser path
	Code                         int    // HL7 table 0357
	Value                        Value
	Problem                      string // PHI-free
}

func (e *FieldError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "flow %s, %s control id %s: ", e.Flow, e.MessageType, e.ControlID)
	if e.Record != "" {
		b.WriteString(e.Record + ": ")
	}
	fmt.Fprintf(&b, "%s (%s): HL7 error %d %s: %s", e.Field, e.Path, e.Code, hl7.CodeText(e.Code), e.Problem)
	if e.Value.Len > 0 {
		fmt.Fprintf(&b, " (value: %s)", e.Value)
	}
	return b.String()
}

// Permanent reports true: no retry maps the message (pkg/bus dead-letters
// it at once).
func (e *FieldError) Permanent() bool { return true }

// ReasonCode is the dead-letter code of e's table 0357 code.
func (e *FieldError) ReasonCode() reason.Code { return reason.HL7(e.Code) }

// Permanent reports true: the message waits in the DLQ for the crosswalk.
func (e *UnmappedError) Permanent() bool { return true }

// ReasonCode is table 0357's 103, table value not found.
func (e *UnmappedError) ReasonCode() reason.Code { return reason.HL7TableValueNotFound }

// fieldErr is a permanent FieldError of the current record.
func (mc *mapping) fieldErr(name, path string, code int, value, problem string) error {
	rec := ""
	if mc.recKind != "" {
		rec = mc.recKind + " " + strconv.Itoa(mc.recN)
	}
	return &FieldError{Flow: mc.mp.Flow, MessageType: mc.ev.GetMessageType() + "^" + mc.ev.GetTriggerEvent(),
		ControlID: mc.ev.GetControlId(), Record: rec, Field: name, Path: path, Code: code,
		Value: mc.mp.describe(value), Problem: problem}
}

// unmapped is a permanent UnmappedError for code read from path.
func (mc *mapping) unmapped(kind, version, source, path, code string) error {
	return &UnmappedError{Kind: kind, Version: version, Code: code, Value: mc.mp.describe(code), Source: source,
		Path: path, ControlID: mc.ev.GetControlId(), Flow: mc.mp.Flow}
}
