// Package beakerexpecteduse is the beaker-expected-use flow: Epic's lab
// Observations (FHIR_IN, fhir.in.Observation, category laboratory, with
// their device) counted per instrument and test per day, times the
// reagent one test uses (flows.yaml expected_use), give the day's
// expected reagent consumption; it is compared with the consumption the
// Beaker flow posted to Fusion (its inventory commands Fusion accepted).
// Beyond the flow's tolerance (5 %) it is a variance and a triage item
// (docs/flows/beaker-expected-use.md). Quantities are exact (recon.Qty).
package beakerexpecteduse

import (
	"context"
	"fmt"
	"strings"
	"time"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/fhir"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/services/transform/flows/fhircheck"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// Flow is the flow id.
const Flow = "beaker-expected-use"

// LOINC is the code system of the tests.
const LOINC = "http://loinc.org"

// Entry registers the flow (registry/all).
func Entry() registry.Entry {
	return registry.Entry{ID: Flow, Check: Check, NewFHIR: func(_ context.Context, f *flows.Flow, _ registry.Env) (registry.FHIR, error) {
		if _, err := Uses(f); err != nil {
			return nil, err
		}
		return observations{}, nil
	}}
}

// Use is one declared test on one instrument and the reagent it uses.
type Use struct {
	Device, Test, Reagent, UOM string
	PerTest                    recon.Qty
}

// Uses reads flows.yaml's expected_use of f.
func Uses(f *flows.Flow) ([]Use, error) {
	if f.ExpectedUse == nil || len(f.ExpectedUse.Use) == 0 {
		return nil, fmt.Errorf("flow %s: flows.yaml has no expected_use.use (reagent use per test and instrument)", f.ID)
	}
	var out []Use
	seen := map[[2]string]bool{}
	for i, u := range f.ExpectedUse.Use {
		q, err := recon.ParseQty(u.PerTest)
		if err != nil || q <= 0 || u.Device == "" || u.Test == "" || u.Reagent == "" || u.UOM == "" {
			return nil, fmt.Errorf("flow %s: expected_use.use[%d]: want device, test, reagent, uom and a positive per_test quantity", f.ID, i)
		}
		k := [2]string{u.Device, u.Test}
		if seen[k] {
			return nil, fmt.Errorf("flow %s: expected_use.use[%d]: test %s on %s declared twice", f.ID, i, u.Test, u.Device)
		}
		seen[k] = true
		out = append(out, Use{Device: u.Device, Test: u.Test, Reagent: u.Reagent, UOM: u.UOM, PerTest: q})
	}
	return out, nil
}

// observations is the flow's FHIR handling in transform.
type observations struct{}

// Resource reads an Observation's mapped fields; one that cannot be read
// is dead-lettered (its bytes are in the event).
func (observations) Resource(_ context.Context, d *bus.Delivery, ev *sinewv1.FhirResourceReceived) error {
	t, err := FromEvent(ev)
	if err != nil {
		return bus.Permanent(reason.Wrap(reason.FHIRResourceUnreadable, err))
	}
	if !t.Counts() {
		d.AuditDetail = "Observation not a resulted lab test with an instrument: not counted"
		return nil
	}
	d.AuditDetail = fmt.Sprintf("lab test %s on instrument %s for the expected-use check", t.Test, t.Device)
	return nil
}

// Test is a lab Observation as the check reads it.
type Test struct {
	// Observation is Observation/<id>: a test is counted once, whatever
	// versions (amendments) follow.
	Observation string
	Test        string // the LOINC code
	Device      string // device.identifier.value, else device.display (trimmed)
	Status      string
	Laboratory  bool
	// At is effectiveDateTime, else issued (zero when neither reads).
	At time.Time
}

// Counts reports whether t is a resulted lab test with an instrument.
func (t Test) Counts() bool {
	switch t.Status {
	case "final", "amended", "corrected":
	default:
		return false
	}
	return t.Laboratory && t.Device != "" && t.Test != "" && !t.At.IsZero()
}

// observation is fhir.Observation and its category.
type observation struct {
	fhir.Observation
	Category []fhir.CodeableConcept `json:"category,omitempty"`
}

// FromEvent reads the Test of an Observation event.
func FromEvent(ev *sinewv1.FhirResourceReceived) (Test, error) {
	r, err := fhir.Parse(ev.GetJson(), fhir.ParseOptions{})
	if err != nil {
		return Test{}, err
	}
	if r.Type != "Observation" {
		return Test{}, fmt.Errorf("%s: not an Observation", r.Type)
	}
	o, err := fhir.Decode[observation](r)
	if err != nil {
		return Test{}, err
	}
	t := Test{Observation: "Observation/" + r.ID, Test: o.Code.Code(LOINC), Status: o.Status}
	for _, c := range o.Category {
		if c.Code("http://terminology.hl7.org/CodeSystem/observation-category") == "laboratory" {
			t.Laboratory = true
		}
	}
	if id := o.Device.Identifier; id != nil && strings.TrimSpace(id.Value) != "" {
		t.Device = strings.TrimSpace(id.Value)
	} else {
		t.Device = strings.TrimSpace(o.Device.Display)
	}
	if at, ok := fhircheck.ParseTime(o.EffectiveDateTime); ok {
		t.At = at
	} else if at, ok := fhircheck.ParseTime(o.Issued); ok {
		t.At = at
	}
	return t, nil
}
