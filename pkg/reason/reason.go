// Package reason is the catalogue of dead-letter reason codes: each code
// has a text and what the operator should do, from reasons.json (the one
// source; catalogue.go is generated from it, see catalogue_test.go).
// Errors carry a code with New or Wrap; the runtime records it in the dead
// letter (sinew.v1.DeadLetter.reason_code). Pure: no I/O, no runtime.
//
// A detail names field paths, codes, lengths and keyed hashes, never a
// field's value (PHI).
package reason

import (
	"errors"
	"strconv"
)

// Header carries a code on a message kept although it was refused (ingest
// sets it beside ingest.RejectedHeader; transform records it).
const Header = "sinew-reason-code"

// Code identifies a reason: SINEW-<AREA>-<number>.
type Code string

// Entry is one catalogue entry.
type Entry struct {
	Code      Code
	Constant  string // the Go constant's name
	Text      string // what happened
	Action    string // what the operator should do
	Permanent bool   // no retry can fix it: dead-lettered at once
}

// Lookup returns the entry of c.
func Lookup(c Code) (Entry, bool) {
	for _, e := range catalogue {
		if e.Code == c {
			return e, true
		}
	}
	return Entry{}, false
}

// All returns the catalogue in its order (a copy).
func All() []Entry { return append([]Entry(nil), catalogue[:]...) }

// HL7 is the code of an HL7 table 0357 error code (101 → SINEW-HL7-101);
// codes outside the table are HL7ApplicationError.
func HL7(code int) Code {
	c := Code("SINEW-HL7-" + strconv.Itoa(code))
	if _, ok := Lookup(c); ok {
		return c
	}
	return HL7ApplicationError
}

// Error is a failure with its reason code. Its text is the detail (and the
// wrapped error's text), without the code: the code travels beside it.
type Error struct {
	Code   Code
	Detail string // PHI-free
	Err    error  // optional cause
}

// New is an error with code c and a PHI-free detail.
func New(c Code, detail string) *Error { return &Error{Code: c, Detail: detail} }

// Wrap gives err the code c; nil stays nil.
func Wrap(c Code, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: c, Err: err}
}

func (e *Error) Error() string {
	switch {
	case e.Err == nil:
		return e.Detail
	case e.Detail == "":
		return e.Err.Error()
	default:
		return e.Detail + ": " + e.Err.Error()
	}
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonCode is e's code.
func (e *Error) ReasonCode() Code { return e.Code }

// Permanent reports whether e's code is permanent in the catalogue, for
// the runtime (pkg/bus recognises any error with this method).
func (e *Error) Permanent() bool {
	en, ok := Lookup(e.Code)
	return ok && en.Permanent
}

// Coded is an error that carries a reason code.
type Coded interface {
	error
	ReasonCode() Code
}

// Of is the code of the first error in err's chain that carries one, or "".
func Of(err error) Code {
	var c Coded
	if errors.As(err, &c) {
		return c.ReasonCode()
	}
	return ""
}
