// Package formularycheck is the formulary-check flow: Willow's formulary
// (the MFN items Sinew posts to Fusion's item master) cross-checked
// against Epic's Medication resources (FHIR_IN, fhir.in.Medication) on
// code, form and strength. Drift is a reconciliation variance, never an
// update: nothing is posted to Fusion or Epic (docs/flows/formulary-check.md).
//
// In transform the flow takes each Medication (registry.Entry.NewFHIR):
// it reads the mapped fields and acknowledges, a Medication whose mapped
// fields cannot be read is dead-lettered with its bytes. Compare is the
// cross-check itself.
package formularycheck

import (
	"context"
	"fmt"
	"strings"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/fhir"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// Flow is the flow id.
const Flow = "formulary-check"

// NDCSystem is the FHIR code system of National Drug Codes, the key
// Willow's formulary and Epic's Medication share.
const NDCSystem = "http://hl7.org/fhir/sid/ndc"

// Entry registers the flow (registry/all): it reads Medication resources
// in transform, and the reconciler runs its Check.
func Entry() registry.Entry {
	return registry.Entry{ID: Flow, Check: Check, NewFHIR: func(context.Context, *flows.Flow, registry.Env) (registry.FHIR, error) {
		return medications{}, nil
	}}
}

// medications is the flow's FHIR handling in transform.
type medications struct{}

// Resource reads a Medication's mapped fields; one that cannot be read is
// dead-lettered (its bytes are in the event).
func (medications) Resource(_ context.Context, d *bus.Delivery, ev *sinewv1.FhirResourceReceived) error {
	drug, err := FromEvent(ev)
	if err != nil {
		return bus.Permanent(reason.Wrap(reason.FHIRResourceUnreadable, err))
	}
	if drug.Code == "" {
		d.AuditDetail = "Medication without an NDC coding: not comparable with the formulary"
		return nil
	}
	d.AuditDetail = fmt.Sprintf("Medication NDC %s (form %q, strength %q) for the formulary check", drug.Code, drug.Form, drug.Strength)
	return nil
}

// Drug is one formulary entry as both sides describe it: NDC (11 digits
// when it can be normalized), form and strength. An empty Form or
// Strength means the side did not say, and it is not compared.
type Drug struct {
	Code     string
	Form     string
	Strength string
	// Source names the record: Medication/<id>, or the item's idempotency key.
	Source string
}

// FromEvent reads the Drug of a Medication event.
func FromEvent(ev *sinewv1.FhirResourceReceived) (Drug, error) {
	r, err := fhir.Parse(ev.GetJson(), fhir.ParseOptions{})
	if err != nil {
		return Drug{}, err
	}
	if r.Type != "Medication" {
		return Drug{}, fmt.Errorf("%s: not a Medication", r.Type)
	}
	m, err := fhir.Decode[fhir.Medication](r)
	if err != nil {
		return Drug{}, err
	}
	return FromMedication(m), nil
}

// FromMedication is a Medication's Drug: code.coding in the NDC system,
// form (its first coding's display, else its text) and the first
// ingredient's strength as "<value> <unit>/<denominator unit>".
func FromMedication(m *fhir.Medication) Drug {
	d := Drug{Code: NDC11(m.Code.Code(NDCSystem)), Source: "Medication/" + m.ID}
	d.Form = conceptText(m.Form)
	for _, in := range m.Ingredient {
		if s := in.Strength; s != nil && s.Numerator.Value != "" {
			d.Strength = strings.TrimSpace(string(s.Numerator.Value) + " " + s.Numerator.Unit)
			if u := s.Denominator.Unit; u != "" {
				d.Strength += "/" + u
			}
			break
		}
	}
	return d
}

func conceptText(c fhir.CodeableConcept) string {
	for _, cd := range c.Coding {
		if cd.Display != "" {
			return cd.Display
		}
	}
	return c.Text
}

// Item attributes the formulary side carries (ItemUpsert.attributes):
// epic_code is the NDC (hl7flow's item-master shape); form and strength
// when the site's MFN carries them (flows.yaml item-master fields).
const (
	AttrCode     = "epic_code"
	AttrForm     = "form"
	AttrStrength = "strength"
)

// FromItem is the Drug of a formulary item Sinew posted to Fusion's item
// master; ok is false for an item of another source than NDC.
func FromItem(it *sinewv1.ItemUpsert) (Drug, bool) {
	a := it.GetAttributes()
	if a["epic_source"] != "" && a["epic_source"] != "ndc" {
		return Drug{}, false
	}
	code := NDC11(a[AttrCode])
	if code == "" {
		return Drug{}, false
	}
	return Drug{Code: code, Form: a[AttrForm], Strength: a[AttrStrength], Source: it.GetEnvelope().GetIdempotencyKey()}, true
}

// NDC11 normalizes an NDC to its 11-digit form: a hyphenated 10-digit
// code (4-4-2, 5-3-2, 5-4-1) is zero-padded to 5-4-2; 11 digits stay.
// Anything else is returned trimmed, compared as it is.
func NDC11(s string) string {
	s = strings.TrimSpace(s)
	parts := strings.Split(s, "-")
	if len(parts) == 3 && digits(parts[0]) && digits(parts[1]) && digits(parts[2]) &&
		len(parts[0]) <= 5 && len(parts[1]) <= 4 && len(parts[2]) <= 2 {
		return pad(parts[0], 5) + pad(parts[1], 4) + pad(parts[2], 2)
	}
	return s
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func pad(s string, n int) string { return strings.Repeat("0", n-len(s)) + s }

// Variance kinds.
const (
	// NotInEpic: a formulary item with no Medication of its NDC.
	NotInEpic = "not-in-epic"
	// NotInFormulary: a Medication whose NDC is not in the formulary.
	NotInFormulary = "not-in-formulary"
	// FormDrift and StrengthDrift: both sides know the drug and disagree.
	FormDrift     = "form"
	StrengthDrift = "strength"
)

// Variance is one disagreement between the formulary and Epic.
type Variance struct {
	Kind string
	Code string // the NDC
	// Willow and Epic are the two sides' values (form or strength), and
	// the records they come from.
	Willow, Epic             string
	WillowSource, EpicSource string
}

func (v Variance) String() string {
	switch v.Kind {
	case NotInEpic:
		return fmt.Sprintf("NDC %s: in the formulary (%s), no Epic Medication", v.Code, v.WillowSource)
	case NotInFormulary:
		return fmt.Sprintf("NDC %s: Epic %s, not in the formulary", v.Code, v.EpicSource)
	}
	return fmt.Sprintf("NDC %s: %s %q in the formulary, %q in Epic %s", v.Code, v.Kind, v.Willow, v.Epic, v.EpicSource)
}

// Compare cross-checks the formulary against Epic's Medications, keyed
// by NDC. The last record of an NDC on a side wins (a later MFN update or
// Medication version). Form and strength are compared case- and
// space-insensitively, and only when both sides state them. Variances
// come in formulary order, then Epic's.
func Compare(willow, epic []Drug) []Variance {
	ep := map[string]Drug{}
	var epOrder []string
	for _, d := range epic {
		if d.Code == "" {
			continue
		}
		if _, ok := ep[d.Code]; !ok {
			epOrder = append(epOrder, d.Code)
		}
		ep[d.Code] = d
	}
	wl := map[string]Drug{}
	var wlOrder []string
	for _, d := range willow {
		if d.Code == "" {
			continue
		}
		if _, ok := wl[d.Code]; !ok {
			wlOrder = append(wlOrder, d.Code)
		}
		wl[d.Code] = d
	}
	var out []Variance
	for _, code := range wlOrder {
		w := wl[code]
		e, ok := ep[code]
		if !ok {
			out = append(out, Variance{Kind: NotInEpic, Code: code, WillowSource: w.Source})
			continue
		}
		if w.Form != "" && e.Form != "" && !same(w.Form, e.Form) {
			out = append(out, Variance{Kind: FormDrift, Code: code, Willow: w.Form, Epic: e.Form, WillowSource: w.Source, EpicSource: e.Source})
		}
		if w.Strength != "" && e.Strength != "" && !same(w.Strength, e.Strength) {
			out = append(out, Variance{Kind: StrengthDrift, Code: code, Willow: w.Strength, Epic: e.Strength, WillowSource: w.Source, EpicSource: e.Source})
		}
	}
	for _, code := range epOrder {
		if _, ok := wl[code]; !ok {
			e := ep[code]
			out = append(out, Variance{Kind: NotInFormulary, Code: code, EpicSource: e.Source})
		}
	}
	return out
}

func same(a, b string) bool {
	return strings.EqualFold(strings.Join(strings.Fields(a), ""), strings.Join(strings.Fields(b), ""))
}
