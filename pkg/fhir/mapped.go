package fhir

import (
	"encoding/json"
	"reflect"
	"strings"
)

// The structs below hold only the fields Sinew's mappers read; decode
// them from a Resource's Raw with Decode. Everything else stays in Raw.
// Quantities keep their decimal text (json.Number): amounts are exact.

// Coding is an R4 Coding.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// CodeableConcept is an R4 CodeableConcept.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Code returns the code of the first coding in system ("" for any system).
func (c CodeableConcept) Code(system string) string {
	for _, cd := range c.Coding {
		if system == "" || cd.System == system {
			return strings.TrimSpace(cd.Code)
		}
	}
	return ""
}

// Identifier is an R4 Identifier.
type Identifier struct {
	Use    string `json:"use,omitempty"`
	System string `json:"system,omitempty"`
	Value  string `json:"value,omitempty"`
}

// Reference is an R4 Reference.
type Reference struct {
	Reference  string      `json:"reference,omitempty"`
	Display    string      `json:"display,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
}

// ID is the id part of a relative reference "Type/id" ("" otherwise).
func (r Reference) ID() string {
	if i := strings.LastIndexByte(r.Reference, '/'); i >= 0 {
		return r.Reference[i+1:]
	}
	return ""
}

// Period is an R4 Period (dateTimes as given).
type Period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// Quantity is an R4 Quantity; Value keeps its decimal text.
type Quantity struct {
	Value  json.Number `json:"value,omitempty"`
	Unit   string      `json:"unit,omitempty"`
	System string      `json:"system,omitempty"`
	Code   string      `json:"code,omitempty"`
}

// Ratio is an R4 Ratio.
type Ratio struct {
	Numerator   Quantity `json:"numerator"`
	Denominator Quantity `json:"denominator"`
}

// HumanName is an R4 HumanName.
type HumanName struct {
	Use    string   `json:"use,omitempty"`
	Family string   `json:"family,omitempty"`
	Given  []string `json:"given,omitempty"`
}

// NPISystem is the US NPI identifier system.
const NPISystem = "http://hl7.org/fhir/sid/us-npi"

// IdentifierValue returns the trimmed value of the first identifier in
// system (Epic pads values with spaces).
func IdentifierValue(ids []Identifier, system string) string {
	for _, id := range ids {
		if id.System == system {
			return strings.TrimSpace(id.Value)
		}
	}
	return ""
}

// Medication is what the formulary cross-check reads.
type Medication struct {
	ID         string          `json:"id"`
	Status     string          `json:"status,omitempty"`
	Code       CodeableConcept `json:"code"`
	Form       CodeableConcept `json:"form"`
	Identifier []Identifier    `json:"identifier,omitempty"`
	Ingredient []struct {
		ItemCodeableConcept *CodeableConcept `json:"itemCodeableConcept,omitempty"`
		ItemReference       *Reference       `json:"itemReference,omitempty"`
		Strength            *Ratio           `json:"strength,omitempty"`
	} `json:"ingredient,omitempty"`
}

// Observation is what the Beaker expected-consumption reconciliation reads.
type Observation struct {
	ID                string          `json:"id"`
	Status            string          `json:"status"`
	Code              CodeableConcept `json:"code"`
	Subject           Reference       `json:"subject"`
	Encounter         Reference       `json:"encounter"`
	Device            Reference       `json:"device"`
	EffectiveDateTime string          `json:"effectiveDateTime,omitempty"`
	Issued            string          `json:"issued,omitempty"`
	ValueQuantity     *Quantity       `json:"valueQuantity,omitempty"`
}

// Encounter is what the OpTime case-cart reconciliation reads.
type Encounter struct {
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	Class       Coding            `json:"class"`
	Type        []CodeableConcept `json:"type,omitempty"`
	ServiceType CodeableConcept   `json:"serviceType"`
	Subject     Reference         `json:"subject"`
	Period      Period            `json:"period"`
	Identifier  []Identifier      `json:"identifier,omitempty"`
	Location    []struct {
		Location Reference `json:"location"`
	} `json:"location,omitempty"`
}

// Practitioner is what worker-sync reads (provider attributes).
type Practitioner struct {
	ID            string       `json:"id"`
	Active        *bool        `json:"active,omitempty"`
	Identifier    []Identifier `json:"identifier,omitempty"`
	Name          []HumanName  `json:"name,omitempty"`
	Qualification []struct {
		Identifier []Identifier    `json:"identifier,omitempty"`
		Code       CodeableConcept `json:"code"`
		Period     Period          `json:"period"`
	} `json:"qualification,omitempty"`
}

// NPI is the practitioner's NPI, trimmed ("" when none).
func (p *Practitioner) NPI() string { return IdentifierValue(p.Identifier, NPISystem) }

// PractitionerRole is what worker-sync reads (specialty, role).
type PractitionerRole struct {
	ID           string            `json:"id"`
	Active       *bool             `json:"active,omitempty"`
	Identifier   []Identifier      `json:"identifier,omitempty"`
	Practitioner Reference         `json:"practitioner"`
	Organization Reference         `json:"organization"`
	Code         []CodeableConcept `json:"code,omitempty"`
	Specialty    []CodeableConcept `json:"specialty,omitempty"`
	Location     []Reference       `json:"location,omitempty"`
}

// Decode reads the mapped fields of r into a T (Medication, Observation,
// ...) in one pass over r.Raw (decode.go), skipping what T does not name.
// An element of the wrong JSON type is an *Error naming it.
func Decode[T any](r *Resource) (*T, error) {
	var v T
	fn := planFor(reflect.TypeFor[T]())
	if fn == nil {
		return decodeJSON[T](r)
	}
	d := &decoder{s: scanner{b: r.Raw}}
	err := fn(d, reflect.ValueOf(&v).Elem())
	if err == nil {
		err = d.s.end()
	}
	switch {
	case err != nil:
		return nil, &Error{Code: "structure", Path: r.Type, Msg: "element of the wrong JSON type"}
	case d.typeErr == ".":
		return nil, &Error{Code: "structure", Path: r.Type, Msg: "element of the wrong JSON type"}
	case d.typeErr != "":
		return nil, &Error{Code: "structure", Path: r.Type + "." + d.typeErr, Msg: "element of the wrong JSON type"}
	}
	return &v, nil
}

// decodeJSON is Decode by encoding/json, for types without a plan.
func decodeJSON[T any](r *Resource) (*T, error) {
	var v T
	if err := json.Unmarshal(r.Raw, &v); err != nil {
		path := r.Type
		if te, ok := err.(*json.UnmarshalTypeError); ok && te.Field != "" {
			path += "." + te.Field
		}
		return nil, &Error{Code: "structure", Path: path, Msg: "element of the wrong JSON type"}
	}
	return &v, nil
}
