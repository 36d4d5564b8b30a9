package hl7

import (
	"fmt"
	"strconv"

	"github.com/sinewhq/sinew/pkg/reason"
)

// Error codes from HL7 table 0357 (message error condition codes).
const (
	CodeAccepted          = 0
	CodeSegmentSequence   = 100
	CodeRequiredField     = 101
	CodeDataType          = 102
	CodeTableValue        = 103
	CodeValueTooLong      = 104
	CodeUnsupportedType   = 200
	CodeUnsupportedEvent  = 201
	CodeUnsupportedProcID = 202
	CodeUnsupportedVer    = 203
	CodeUnknownKey        = 204
	CodeDuplicateKey      = 205
	CodeRecordLocked      = 206
	CodeInternal          = 207
)

// CodeText is the table 0357 text of code.
func CodeText(code int) string {
	switch code {
	case CodeAccepted:
		return "Message accepted"
	case CodeSegmentSequence:
		return "Segment sequence error"
	case CodeRequiredField:
		return "Required field missing"
	case CodeDataType:
		return "Data type error"
	case CodeTableValue:
		return "Table value not found"
	case CodeValueTooLong:
		return "Value too long"
	case CodeUnsupportedType:
		return "Unsupported message type"
	case CodeUnsupportedEvent:
		return "Unsupported event code"
	case CodeUnsupportedProcID:
		return "Unsupported processing id"
	case CodeUnsupportedVer:
		return "Unsupported version id"
	case CodeUnknownKey:
		return "Unknown key identifier"
	case CodeDuplicateKey:
		return "Duplicate key identifier"
	case CodeRecordLocked:
		return "Application record locked"
	case CodeInternal:
		return "Application internal error"
	}
	return "Error " + strconv.Itoa(code)
}

// ParseError is a problem with a message, located as an ERR segment
// locates it (ERR-2): segment, its sequence, field, repetition, component.
type ParseError struct {
	Segment      string
	SegmentSeq   int // 1-based occurrence of the segment
	Field        int
	Rep          int // 1-based as in ERL; 0 = unspecified
	Component    int
	Subcomponent int
	Code         int    // table 0357
	Severity     string // E (default), W, I
	Msg          string // PHI-free explanation
}

func (e *ParseError) Error() string {
	loc := e.Location()
	if loc == "" {
		return "hl7: " + e.Msg
	}
	return fmt.Sprintf("hl7: %s: %s", loc, e.Msg)
}

// Location is the Terser-style place of the error, e.g. "PID-3" or "MSH".
// ReasonCode is the dead-letter code of e's table 0357 code.
func (e *ParseError) ReasonCode() reason.Code { return reason.HL7(e.Code) }

func (e *ParseError) Location() string {
	if e.Segment == "" {
		return ""
	}
	s := e.Segment
	if e.SegmentSeq > 1 {
		s += "(" + strconv.Itoa(e.SegmentSeq-1) + ")"
	}
	if e.Field > 0 {
		s += "-" + strconv.Itoa(e.Field)
		if e.Component > 0 {
			s += "-" + strconv.Itoa(e.Component)
		}
	}
	return s
}
