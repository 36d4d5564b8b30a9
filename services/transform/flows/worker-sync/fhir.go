package workersync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/fhir"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/ids"
	"github.com/sinewhq/sinew/pkg/mfn"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/streams"
	ws "github.com/sinewhq/sinew/pkg/workersync"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// The Epic side from FHIR: Practitioner and PractitionerRole resources
// (fhir.in.Practitioner, fhir.in.PractitionerRole; intake.fhir of the
// flow) become the same WorkerChange from Epic that the MFN^M02 provider
// shape makes, on fusion.cmd.<flow>.worker, so the loader applies both by
// one set of rules: the flow's conflicts, the match on NPI and Epic ids
// (ambiguous: SINEW-WORKER-001, never guessed), and no write of a value
// Fusion already holds (Epic's echo of Sinew's own write changes nothing).
//
// A Practitioner carries the identifiers, name, status and credentials; a
// PractitionerRole the specialty and provider type, and names its
// Practitioner only by FHIR id. The Practitioner's ids (SER, NPI) are kept
// under that id (hashed: Epic ids pass R4's 64 characters) in fusion_poll,
// so a role can be matched; a role read before its Practitioner is
// retried.

// Epic's identifier systems on a Practitioner end in the master file's
// OID: .7.2.697780 is the provider (SER) record, .7.2.836982 the user
// (EMP) record; each comes twice, typed INTERNAL (padded with spaces) and
// EXTERNAL, with the same id.
const (
	serOID = ".7.2.697780"
	empOID = ".7.2.836982"
)

// practitioner is what the flow reads of a Practitioner.
type practitioner struct {
	ID         string `json:"id"`
	Active     *bool  `json:"active,omitempty"`
	Identifier []struct {
		System string               `json:"system"`
		Value  string               `json:"value"`
		Type   fhir.CodeableConcept `json:"type"`
	} `json:"identifier"`
	Name []struct {
		Use    string   `json:"use"`
		Family string   `json:"family"`
		Given  []string `json:"given"`
	} `json:"name"`
	Qualification []struct {
		Identifier []fhir.Identifier    `json:"identifier"`
		Code       fhir.CodeableConcept `json:"code"`
		Issuer     fhir.Reference       `json:"issuer"`
	} `json:"qualification"`
}

// Provider is what one Practitioner says of an Epic provider.
type Provider struct {
	FHIRID string
	SER    string
	EMP    string
	NPI    string
	Values map[ws.Attr]string
	// Warnings name elements not used (an NPI failing its check digit).
	Warnings []string
}

// ProviderIDError is a Practitioner whose identifiers cannot name one
// provider: none of the ids worker-sync matches on, or two that disagree.
// Path names the element, never a value. Ambiguous: ids that disagree
// (triage, never guessed), else none to match on.
type ProviderIDError struct {
	Path, Why string
	Ambiguous bool
}

func (e *ProviderIDError) Error() string { return e.Path + ": " + e.Why }

// ReadPractitioner reads a Practitioner's provider attributes. Values are
// trimmed (Epic pads identifier values with spaces); an NPI must pass its
// check digit.
func ReadPractitioner(raw []byte) (Provider, error) {
	var p practitioner
	if err := json.Unmarshal(raw, &p); err != nil {
		return Provider{}, &fhir.Error{Code: "structure", Path: "Practitioner", Msg: "element of the wrong JSON type"}
	}
	out := Provider{FHIRID: p.ID, Values: map[ws.Attr]string{}}
	for i, id := range p.Identifier {
		v := strings.TrimSpace(id.Value)
		path := fmt.Sprintf("Practitioner.identifier[%d]", i)
		var dst *string
		switch {
		case id.System == fhir.NPISystem:
			if v != "" && !mfn.ValidNPI(v) {
				// A deviation Epic may ship: warned, not matched on or written.
				out.Warnings = append(out.Warnings, path+".value: NPI fails its check digit")
				continue
			}
			dst = &out.NPI
		case strings.HasSuffix(id.System, serOID):
			dst = &out.SER
		case strings.HasSuffix(id.System, empOID):
			dst = &out.EMP
		default:
			continue
		}
		if v == "" {
			continue
		}
		if *dst != "" && *dst != v {
			return Provider{}, &ProviderIDError{Path: path, Why: "a second, different id of the same kind", Ambiguous: true}
		}
		*dst = v
	}
	if out.SER == "" && out.NPI == "" {
		return Provider{}, &ProviderIDError{Path: "Practitioner.identifier", Why: "no Epic SER id (system …" + serOID + ") and no valid NPI (" + fhir.NPISystem + ")"}
	}
	if out.NPI != "" {
		out.Values[ws.NPI] = out.NPI
	}
	if n := officialName(p); n != "" {
		out.Values[ws.Name] = n
	}
	if p.Active != nil {
		out.Values[ws.Status] = "I"
		if *p.Active {
			out.Values[ws.Status] = "A"
		}
	}
	if len(p.Qualification) > 0 {
		var cs mfn.Provider
		for _, q := range p.Qualification {
			c := mfn.Credential{Type: q.Code.Code(""), State: strings.TrimSpace(q.Issuer.Display)}
			if c.Type == "" {
				c.Type = strings.TrimSpace(q.Code.Text)
			}
			if len(q.Identifier) > 0 {
				c.Number = strings.TrimSpace(q.Identifier[0].Value)
			}
			cs.Credentials = append(cs.Credentials, c)
		}
		out.Values[ws.Credentials] = cs.CredentialsString()
	}
	return out, nil
}

// officialName is family^given of the usual (else official, else first) name.
func officialName(p practitioner) string {
	best := -1
	for i, n := range p.Name {
		if n.Use == "usual" || (n.Use == "official" && best < 0) {
			best = i
			if n.Use == "usual" {
				break
			}
		}
	}
	if best < 0 && len(p.Name) > 0 {
		best = 0
	}
	if best < 0 || p.Name[best].Family == "" {
		return ""
	}
	n := p.Name[best]
	given := ""
	if len(n.Given) > 0 {
		given = strings.TrimSpace(n.Given[0])
	}
	return strings.TrimSpace(n.Family) + "^" + given
}

// Role is what one PractitionerRole says: its Practitioner's FHIR id and
// the clinical attributes it carries.
type Role struct {
	Practitioner string
	Values       map[ws.Attr]string
}

// ReadRole reads a PractitionerRole's specialty (the first one's text,
// else its first coding's display) and provider type (the first code's
// text, else its code).
func ReadRole(raw []byte) (Role, error) {
	var r fhir.PractitionerRole
	if err := json.Unmarshal(raw, &r); err != nil {
		return Role{}, &fhir.Error{Code: "structure", Path: "PractitionerRole", Msg: "element of the wrong JSON type"}
	}
	out := Role{Practitioner: r.Practitioner.ID(), Values: map[ws.Attr]string{}}
	if out.Practitioner == "" {
		return Role{}, &ProviderIDError{Path: "PractitionerRole.practitioner.reference", Why: "names no Practitioner"}
	}
	if len(r.Specialty) > 0 {
		if v := conceptText(r.Specialty[0]); v != "" {
			out.Values[ws.Specialty] = v
		}
	}
	if len(r.Code) > 0 {
		if v := strings.TrimSpace(r.Code[0].Text); v != "" {
			out.Values[ws.ProviderType] = v
		} else if v := r.Code[0].Code(""); v != "" {
			out.Values[ws.ProviderType] = v
		}
	}
	return out, nil
}

func conceptText(c fhir.CodeableConcept) string {
	if t := strings.TrimSpace(c.Text); t != "" {
		return t
	}
	for _, cd := range c.Coding {
		if d := strings.TrimSpace(cd.Display); d != "" {
			return d
		}
	}
	return ""
}

// providerIDs is a Practitioner's ids kept for its roles.
type providerIDs struct {
	SER string `json:"ser,omitempty"`
	EMP string `json:"emp,omitempty"`
	NPI string `json:"npi,omitempty"`
}

// practitioners is the flow's FHIR handling in transform.
type practitioners struct {
	flow *flows.Flow
	pub  registry.Publisher
	kv   jetstream.KeyValue
}

// NewFHIR builds the flow's handling of Practitioner and PractitionerRole.
func NewFHIR(ctx context.Context, f *flows.Flow, env registry.Env) (registry.FHIR, error) {
	if _, err := ws.RulesOf(*f); err != nil {
		return nil, err
	}
	if env.JS == nil || env.Publisher == nil {
		return nil, errors.New("worker-sync: FHIR needs JetStream and a publisher")
	}
	kv, err := env.JS.KeyValue(ctx, streams.KVFusionPoll)
	if err != nil {
		return nil, fmt.Errorf("worker-sync: bucket %s: %w", streams.KVFusionPoll, err)
	}
	return &practitioners{flow: f, pub: env.Publisher, kv: kv}, nil
}

// idsKey is the KV key of a Practitioner's ids: a hash of its FHIR id.
func (h *practitioners) idsKey(fhirID string) string {
	sum := sha256.Sum256([]byte(fhirID))
	return h.flow.ID + ".fhir.practitioner." + hex.EncodeToString(sum[:16])
}

// Resource maps one Practitioner or PractitionerRole.
func (h *practitioners) Resource(ctx context.Context, d *bus.Delivery, ev *sinewv1.FhirResourceReceived) error {
	switch ev.GetResourceType() {
	case "Practitioner":
		return h.practitioner(ctx, d, ev)
	case "PractitionerRole":
		return h.role(ctx, d, ev)
	}
	return bus.Permanent(reason.Wrap(reason.TransformNoMapper, fmt.Errorf("worker-sync maps Practitioner and PractitionerRole, not %s", ev.GetResourceType())))
}

func (h *practitioners) practitioner(ctx context.Context, d *bus.Delivery, ev *sinewv1.FhirResourceReceived) error {
	p, err := ReadPractitioner(ev.GetJson())
	if err != nil {
		return bus.Permanent(classify(err))
	}
	pid := providerIDs{SER: p.SER, EMP: p.EMP, NPI: p.NPI}
	b, _ := json.Marshal(pid)
	if _, err := h.kv.Put(ctx, h.idsKey(p.FHIRID), b); err != nil {
		return fmt.Errorf("practitioner ids: %w", err)
	}
	if err := h.publish(ctx, ev, pid, p.Values); err != nil {
		return err
	}
	d.AuditDetail = "Practitioner of provider " + orNone(p.SER) + ": " + attrNames(p.Values) + " to Fusion by the flow's rules"
	if len(p.Warnings) > 0 {
		d.AuditDetail += "; warnings: " + strings.Join(p.Warnings, "; ")
	}
	return nil
}

func (h *practitioners) role(ctx context.Context, d *bus.Delivery, ev *sinewv1.FhirResourceReceived) error {
	r, err := ReadRole(ev.GetJson())
	if err != nil {
		return bus.Permanent(classify(err))
	}
	e, err := h.kv.Get(ctx, h.idsKey(r.Practitioner))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		// Its Practitioner is on its way (same export): retried.
		return errors.New("PractitionerRole.practitioner: its Practitioner has not been read yet")
	}
	if err != nil {
		return fmt.Errorf("practitioner ids: %w", err)
	}
	var pid providerIDs
	if err := json.Unmarshal(e.Value(), &pid); err != nil {
		return fmt.Errorf("practitioner ids: %w", err)
	}
	if len(r.Values) == 0 {
		d.AuditDetail = "PractitionerRole without specialty or provider type: nothing to map"
		return nil
	}
	if err := h.publish(ctx, ev, pid, r.Values); err != nil {
		return err
	}
	d.AuditDetail = "PractitionerRole of provider " + orNone(pid.SER) + ": " + attrNames(r.Values) + " to Fusion by the flow's rules"
	return nil
}

// publish sends Epic's values as a WorkerChange from Epic, keyed by the
// resource and its version: a re-read of the same version is one command.
func (h *practitioners) publish(ctx context.Context, ev *sinewv1.FhirResourceReceived, pid providerIDs, values map[ws.Attr]string) error {
	ser := pid.SER
	sum := sha256.Sum256([]byte(ev.GetResourceType() + "/" + ev.GetResourceId()))
	ver := ev.GetVersionId()
	if ver == "" {
		c := sha256.Sum256(ev.GetJson())
		ver = "h" + hex.EncodeToString(c[:8])
	}
	key := h.flow.ID + "/epic-fhir/" + ev.GetResourceType() + "/" + hex.EncodeToString(sum[:12]) + "/" + ver
	attrs := map[string]string{}
	if pid.EMP != "" {
		attrs[ws.IDEMP] = pid.EMP
	}
	for a, v := range values {
		attrs[string(a)] = v
	}
	in := ev.GetEnvelope()
	ch := &sinewv1.WorkerChange{
		Envelope: &sinewv1.Envelope{
			EventId: ids.EventID(key), Flow: h.flow.ID, SourceSystem: in.GetSourceSystem(), SourceId: ser,
			IdempotencyKey: key, ReceivedAt: in.GetReceivedAt(), CausedBy: in.GetEventId(),
			BusinessKeys: sinewv1.KeysOf("provider", ser, "resource_type", ev.GetResourceType()),
		},
		Origin: string(ws.Epic), EpicProviderId: ser, Npi: pid.NPI, Action: ws.ActionUpdate, Attributes: attrs,
	}
	if t := ev.GetLastUpdated(); t != nil {
		ch.EffectiveAt = timestamppb.New(t.AsTime())
	}
	if _, err := h.pub.Publish(ctx, streams.FusionCmdSubject(h.flow.ID, hl7flow.OpWorker), key, ch); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// classify gives a mapping error its reason code: ids that cannot name
// one provider are the worker flow's, the rest an unreadable resource.
func classify(err error) error {
	var pe *ProviderIDError
	if errors.As(err, &pe) && pe.Ambiguous {
		return reason.Wrap(reason.WorkerMatchAmbiguous, err)
	}
	if errors.As(err, &pe) {
		return reason.Wrap(reason.WorkerNoProviderID, err)
	}
	return reason.Wrap(reason.FHIRResourceUnreadable, err)
}

func orNone(s string) string {
	if s == "" {
		return "(no SER)"
	}
	return s
}

func attrNames(m map[ws.Attr]string) string {
	names := make([]string, 0, len(m))
	for _, a := range ws.Attrs {
		if _, ok := m[a]; ok {
			names = append(names, string(a))
		}
	}
	return strings.Join(names, ", ")
}
