package workersync

import (
	"errors"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/mfn"
)

// Actions of a worker change.
const (
	ActionHire      = "hire"
	ActionUpdate    = "update"
	ActionTerminate = "terminate"
	ActionRehire    = "rehire"
)

// Identifier keys a change carries beside its attributes.
const (
	IDAssignment = "id.assignment_number"
	IDEMP        = "id.emp"
)

// FusionValues are a Fusion worker's attributes in Sinew's terms.
func FusionValues(w fusion.Worker) map[Attr]string {
	status := "A"
	if w.Status != "" && w.Status != "ACTIVE" {
		status = "I"
	}
	return map[Attr]string{
		Name: w.LastName + "^" + w.FirstName, Status: status, Department: w.Department, Job: w.Job, Manager: w.Manager,
		NPI: w.NPI, Specialty: w.Specialty, Credentials: w.Credentials, ProviderType: w.ProviderType,
	}
}

// EpicValues are an Epic provider's attributes in Sinew's terms.
func EpicValues(p mfn.Provider) map[Attr]string {
	status := "I"
	if p.Active {
		status = "A"
	}
	return map[Attr]string{
		Name: p.Family + "^" + p.Given, Status: status, Department: p.Department, Job: p.Job, Manager: p.Manager,
		NPI: p.NPI, Specialty: p.Specialty, Credentials: p.CredentialsString(), ProviderType: p.ProviderType,
	}
}

// Owned keeps the attributes side owns under r.
func Owned(r Rules, side Side, values map[Attr]string) map[Attr]string {
	out := map[Attr]string{}
	for a, v := range values {
		if r[a] == side {
			out[a] = v
		}
	}
	return out
}

// ProviderMessage is the MFN^M02 record for a Fusion → Epic change: the
// attributes given (attrs; others left empty, which Epic leaves as they
// are), keyed by Epic's SER id when known, else the person number.
func ProviderMessage(action, personNumber, ser string, ids, attrs map[string]string, effective time.Time, h mfn.Header) (mfn.Message, error) {
	p := mfn.Provider{PersonNumber: personNumber, SER: ser, AssignmentNumber: ids[IDAssignment], EMP: ids[IDEMP]}
	st, ok := attrs[string(Status)]
	if !ok {
		return mfn.Message{}, errors.New("workersync: a change to Epic needs the worker's status")
	}
	p.Active = st == "A"
	if n := attrs[string(Name)]; n != "" {
		p.Family, p.Given, _ = strings.Cut(n, "^")
	}
	p.Department, p.Job, p.Manager = attrs[string(Department)], attrs[string(Job)], attrs[string(Manager)]
	p.NPI, p.Specialty, p.ProviderType = attrs[string(NPI)], attrs[string(Specialty)], attrs[string(ProviderType)]
	p.Credentials = mfn.ParseCredentials(attrs[string(Credentials)])
	ev := mfn.Update
	switch action {
	case ActionHire:
		ev = mfn.Add
	case ActionTerminate:
		ev = mfn.Deactivate
	case ActionRehire:
		ev = mfn.Reactivate
	}
	return mfn.Message{Header: h, Event: ev, Effective: effective, Provider: p}, nil
}
