package fhir

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// EpicOutcomeSystem is the code system of Epic's own OperationOutcome
// detail codes (issue.details.coding).
const EpicOutcomeSystem = "urn:oid:1.2.840.114350.1.13.0.1.7.2.657369"

// Epic's OperationOutcome detail codes Sinew acts on (Epic's published
// list; EpicResultCap is the simulator's code for a capped search, whose
// real number is not public).
const (
	EpicInvalidParameter = "4100"
	EpicNoResults        = "4101" // a warning: an empty result, not a failure
	EpicInvalidID        = "4102"
	EpicMerged           = "4107"
	EpicNoParameters     = "4110"
	EpicMissingParameter = "4111"
	EpicSessionExpired   = "4113" // cached search results (paging session) expired
	EpicInvalidValue     = "4115"
	EpicNotAuthorized    = "4118"
	EpicResultCap        = "59159"
)

// Issue severities.
const (
	SeverityFatal       = "fatal"
	SeverityError       = "error"
	SeverityWarning     = "warning"
	SeverityInformation = "information"
)

// OperationOutcome is R4's OperationOutcome, the fields Sinew reads.
type OperationOutcome struct {
	ResourceType string  `json:"resourceType"`
	ID           string  `json:"id,omitempty"`
	Issue        []Issue `json:"issue"`
}

// Issue is one OperationOutcome issue.
type Issue struct {
	Severity    string           `json:"severity"`
	Code        string           `json:"code"`
	Details     *CodeableConcept `json:"details,omitempty"`
	Diagnostics string           `json:"diagnostics,omitempty"`
	Location    []string         `json:"location,omitempty"`
	Expression  []string         `json:"expression,omitempty"`
}

// NewOutcome is an OperationOutcome with one issue.
func NewOutcome(severity, code, diagnostics string, expression ...string) *OperationOutcome {
	is := Issue{Severity: severity, Code: code, Diagnostics: diagnostics}
	for _, e := range expression {
		if e != "" {
			is.Expression = append(is.Expression, e)
		}
	}
	return &OperationOutcome{ResourceType: "OperationOutcome", Issue: []Issue{is}}
}

// WithEpicCode adds Epic's detail code to every issue.
func (o *OperationOutcome) WithEpicCode(code, text string) *OperationOutcome {
	for i := range o.Issue {
		o.Issue[i].Details = &CodeableConcept{Coding: []Coding{{System: EpicOutcomeSystem, Code: code, Display: text}}, Text: text}
	}
	return o
}

// JSON encodes the outcome.
func (o *OperationOutcome) JSON() []byte {
	b, _ := json.Marshal(o)
	return b
}

// ParseOutcome reads an OperationOutcome.
func ParseOutcome(b []byte) (*OperationOutcome, error) {
	var o OperationOutcome
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, &Error{Code: "structure", Path: "OperationOutcome", Msg: "malformed OperationOutcome"}
	}
	if o.ResourceType != "OperationOutcome" {
		return nil, &Error{Code: "invalid", Path: "resourceType", Msg: "not an OperationOutcome"}
	}
	return &o, nil
}

// EpicCodes lists the Epic detail codes of the outcome's issues.
func (o *OperationOutcome) EpicCodes() []string {
	var cs []string
	for _, is := range o.Issue {
		if is.Details == nil {
			continue
		}
		for _, c := range is.Details.Coding {
			if c.System == EpicOutcomeSystem {
				cs = append(cs, c.Code)
			}
		}
	}
	return cs
}

func (o *OperationOutcome) hasEpic(code string) bool {
	for _, c := range o.EpicCodes() {
		if c == code {
			return true
		}
	}
	return false
}

// SessionExpired reports whether the outcome says a paging session
// expired: the query must be run again from its start.
func (o *OperationOutcome) SessionExpired() bool { return o != nil && o.hasEpic(EpicSessionExpired) }

// Capped reports whether the search hit the server's result cap: the
// query must be split into narrower ones.
func (o *OperationOutcome) Capped() bool { return o != nil && o.hasEpic(EpicResultCap) }

// Failed reports whether any issue is an error or fatal.
func (o *OperationOutcome) Failed() bool {
	for _, is := range o.Issue {
		if is.Severity == SeverityError || is.Severity == SeverityFatal {
			return true
		}
	}
	return false
}

// Class is what a failed request's caller should do about it.
type Class int

const (
	// Retryable: try again later (throttled, transient, timeout).
	Retryable Class = iota + 1
	// Permanent: the request or data is wrong; retrying gives the same
	// answer (dead-letter it).
	Permanent
	// NeedsHuman: configuration or authorization on one side must change
	// (an unmapped client, a security refusal, a conflict).
	NeedsHuman
)

func (c Class) String() string {
	switch c {
	case Retryable:
		return "retryable"
	case Permanent:
		return "permanent"
	case NeedsHuman:
		return "needs-human"
	}
	return "unknown"
}

// issueClass maps R4's issue-type codes to a Class.
var issueClass = map[string]Class{
	"transient": Retryable, "lock-error": Retryable, "no-store": Retryable, "exception": Retryable,
	"timeout": Retryable, "incomplete": Retryable, "throttled": Retryable,
	"security": NeedsHuman, "login": NeedsHuman, "unknown": NeedsHuman, "expired": NeedsHuman,
	"forbidden": NeedsHuman, "suppressed": NeedsHuman, "business-rule": NeedsHuman, "conflict": NeedsHuman,
	"invalid": Permanent, "structure": Permanent, "required": Permanent, "value": Permanent,
	"invariant": Permanent, "processing": Permanent, "not-supported": Permanent, "duplicate": Permanent,
	"multiple-matches": Permanent, "not-found": Permanent, "deleted": Permanent, "too-long": Permanent,
	"code-invalid": Permanent, "extension": Permanent, "too-costly": Permanent, "informational": Permanent,
}

// Classify classes a failed response from its HTTP status and its
// OperationOutcome (nil when the body was not one). The status decides
// the clear cases (429 and 5xx retry, 401/403 need a person); otherwise
// the worst issue does, and an issue code R4 does not define is
// needs-human.
func Classify(status int, o *OperationOutcome) Class {
	switch {
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable ||
		status == http.StatusBadGateway || status == http.StatusGatewayTimeout || status == http.StatusRequestTimeout:
		return Retryable
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return NeedsHuman
	}
	worst := Class(0)
	if o != nil {
		if o.SessionExpired() || o.Capped() {
			return Permanent // for this request; the client restarts or splits the query
		}
		for _, is := range o.Issue {
			if is.Severity != SeverityError && is.Severity != SeverityFatal {
				continue
			}
			c, ok := issueClass[is.Code]
			if !ok {
				c = NeedsHuman
			}
			if c > worst {
				worst = c
			}
		}
	}
	if worst != 0 {
		return worst
	}
	if status >= 500 {
		return Retryable
	}
	return Permanent
}

// OutcomeError is a failed FHIR request: the HTTP status, the outcome
// (nil when the body was not one) and its class. Its text holds the issue
// codes and Epic's detail codes, never diagnostics (they may quote data).
type OutcomeError struct {
	Op      string // e.g. "search Encounter"
	Status  int
	Outcome *OperationOutcome
	Class   Class
	// RetryAfter is the server's Retry-After (0 when none).
	RetryAfter time.Duration
}

func (e *OutcomeError) Error() string {
	var codes []string
	if e.Outcome != nil {
		for _, is := range e.Outcome.Issue {
			codes = append(codes, is.Severity+":"+is.Code)
		}
		for _, c := range e.Outcome.EpicCodes() {
			codes = append(codes, "epic:"+c)
		}
	}
	return fmt.Sprintf("fhir: %s: HTTP %d [%s] (%s)", e.Op, e.Status, strings.Join(codes, " "), e.Class)
}

// Permanent reports whether a retry cannot help (pkg/bus dead-letters).
func (e *OutcomeError) Permanent() bool { return e.Class != Retryable }
