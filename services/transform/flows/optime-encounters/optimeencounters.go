// Package optimeencounters is the optime-encounters flow: every OpTime
// case cart Sinew posted to Fusion (the optime-materials flow's inventory
// commands and what Fusion answered) belongs to a surgical Encounter in
// Epic (FHIR_IN, fhir.in.Encounter), linked by the OpTime case id Epic
// keeps as an Encounter identifier; a cart without an encounter, or an
// encounter that logged implants and has no cart, is a variance
// (docs/flows/optime-encounters.md). Nothing is posted to either side.
//
// In transform the flow reads each Encounter's mapped fields
// (registry.Entry.NewFHIR) and dead-letters one it cannot read; the
// reconciler runs Check.
package optimeencounters

import (
	"context"
	"fmt"
	"time"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/fhir"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/services/transform/flows/fhircheck"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// Flow is the flow id.
const Flow = "optime-encounters"

// Entry registers the flow (registry/all).
func Entry() registry.Entry {
	return registry.Entry{ID: Flow, Check: Check, NewFHIR: func(_ context.Context, f *flows.Flow, _ registry.Env) (registry.FHIR, error) {
		cfg, err := settings(f)
		if err != nil {
			return nil, err
		}
		return encounters{cfg: cfg}, nil
	}}
}

func settings(f *flows.Flow) (flows.EncounterCheck, error) {
	if f.Encounters == nil || f.Encounters.CaseIdentifier == "" {
		return flows.EncounterCheck{}, fmt.Errorf("flow %s: flows.yaml has no encounters.case_identifier (the Encounter identifier system of the OpTime case id)", f.ID)
	}
	return *f.Encounters, nil
}

// encounters is the flow's FHIR handling in transform.
type encounters struct{ cfg flows.EncounterCheck }

// Resource reads an Encounter's mapped fields; one that cannot be read is
// dead-lettered (its bytes are in the event). No patient reference is
// kept or written: the check links by case id.
func (e encounters) Resource(_ context.Context, d *bus.Delivery, ev *sinewv1.FhirResourceReceived) error {
	c, err := FromEvent(ev, e.cfg)
	if err != nil {
		return bus.Permanent(reason.Wrap(reason.FHIRResourceUnreadable, err))
	}
	if c.Case == "" {
		d.AuditDetail = "Encounter without an OpTime case id: not a surgical case"
		return nil
	}
	d.AuditDetail = fmt.Sprintf("Encounter of OpTime case %s (%d implants logged) for the case-cart check", c.Case, c.Implants)
	return nil
}

// Case is a surgical Encounter as the check reads it.
type Case struct {
	// Encounter is Encounter/<id>; Version its meta.versionId.
	Encounter, Version string
	// Case is the OpTime case id (the case identifier's value, trimmed).
	Case string
	// Implants is the site extension's count (0 when absent).
	Implants int64
	Status   string
	// At dates the case: period.end (when the cart is charged), else
	// period.start; zero when neither reads.
	At time.Time
}

// encounter is fhir.Encounter and the extensions the check reads.
type encounter struct {
	fhir.Encounter
	Extension []struct {
		URL          string `json:"url"`
		ValueInteger *int64 `json:"valueInteger,omitempty"`
	} `json:"extension,omitempty"`
}

// FromEvent reads the Case of an Encounter event.
func FromEvent(ev *sinewv1.FhirResourceReceived, cfg flows.EncounterCheck) (Case, error) {
	r, err := fhir.Parse(ev.GetJson(), fhir.ParseOptions{})
	if err != nil {
		return Case{}, err
	}
	if r.Type != "Encounter" {
		return Case{}, fmt.Errorf("%s: not an Encounter", r.Type)
	}
	e, err := fhir.Decode[encounter](r)
	if err != nil {
		return Case{}, err
	}
	c := Case{Encounter: "Encounter/" + r.ID, Version: r.VersionID, Status: e.Status,
		Case: fhir.IdentifierValue(e.Identifier, cfg.CaseIdentifier)}
	for i, x := range e.Extension {
		if x.URL == cfg.ImplantsExtension && cfg.ImplantsExtension != "" {
			if x.ValueInteger == nil || *x.ValueInteger < 0 {
				return Case{}, &fhir.Error{Code: "value", Path: fmt.Sprintf("Encounter.extension[%d].valueInteger", i), Msg: "implant count is not a whole number of zero or more"}
			}
			c.Implants = *x.ValueInteger
		}
	}
	if t, ok := fhircheck.ParseTime(e.Period.End); ok {
		c.At = t
	} else if t, ok := fhircheck.ParseTime(e.Period.Start); ok {
		c.At = t
	}
	return c, nil
}
