// Package mfn builds and reads the HL7 v2 master file messages Sinew sends
// to Epic and reads back from it: the staff / practitioner master
// (MFN^M02 with STF and PRA, one record per message) that keeps Epic's
// provider (SER) and user (EMP) records in line with Fusion HCM workers.
//
// Layout (v2.5.1): MFI-1 PRA, MFI-3 UPD, MFI-6 AL; MFE-1 the record event
// (MAD add, MUP update, MDC deactivate, MAC reactivate), MFE-2 the record's
// control id, MFE-3 its effective date, MFE-4 its primary key
// (<id>^^EPICSER when Epic's provider id is known, else
// <person number>^^FUSIONPN), MFE-5 CE. STF-1 the key again, STF-2 the
// identifiers (<id>^^^<authority>^<type>: EPIC SER, EPIC EMP, FUSION PN,
// FUSION AN), STF-3 family^given, STF-4 staff (provider) type, STF-7
// A/I, STF-8 department, STF-19 job code. PRA-1 the key, PRA-5 specialty,
// PRA-6 the practitioner ids: the NPI (<npi>^NPI) and one repetition per
// credential (<number>^<type>^<state>). A site segment ZWK|<manager person
// number> carries the manager, which STF has no field for.
package mfn

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
)

// Record events (MFE-1, HL7 table 0180).
const (
	Add        = "MAD"
	Update     = "MUP"
	Deactivate = "MDC"
	Reactivate = "MAC"
)

// Identifier authorities and types in STF-2 and MFE-4.
const (
	AuthEpic   = "EPIC"
	AuthFusion = "FUSION"
	KeyEpicSER = "EPICSER"  // MFE-4 coding system: Epic's provider id
	KeyFusion  = "FUSIONPN" // MFE-4 coding system: Fusion person number
)

// Provider is one staff / practitioner master record.
type Provider struct {
	SER, EMP                       string // Epic ids, empty until Epic assigned them
	PersonNumber, AssignmentNumber string // Fusion ids
	Family, Given                  string
	ProviderType                   string // STF-4
	Active                         bool   // STF-7
	Department                     string // STF-8
	Job                            string // STF-19
	Manager                        string // ZWK-1, the manager's person number
	NPI                            string
	Specialty                      string
	Credentials                    []Credential
}

// Credential is a clinical licence or certification (PRA-6).
type Credential struct{ Number, Type, State string }

func (c Credential) String() string { return c.Type + ":" + c.Number + ":" + c.State }

// CredentialsString is the credentials in a canonical text (sorted), for
// comparison and echo hashes.
func (p Provider) CredentialsString() string {
	s := make([]string, len(p.Credentials))
	for i, c := range p.Credentials {
		s[i] = c.String()
	}
	slices.Sort(s)
	return strings.Join(s, ";")
}

// ParseCredentials reads CredentialsString's text back.
func ParseCredentials(s string) []Credential {
	var out []Credential
	for _, c := range strings.Split(s, ";") {
		if c == "" {
			continue
		}
		parts := strings.SplitN(c, ":", 3)
		for len(parts) < 3 {
			parts = append(parts, "")
		}
		out = append(out, Credential{Type: parts[0], Number: parts[1], State: parts[2]})
	}
	return out
}

// Key is the record's primary key (MFE-4).
func (p Provider) Key() (id, system string) {
	if p.SER != "" {
		return p.SER, KeyEpicSER
	}
	return p.PersonNumber, KeyFusion
}

// Header says who sends a message.
type Header struct {
	SendingApp, SendingFacility     string
	ReceivingApp, ReceivingFacility string
	ControlID                       string
	Time                            time.Time
}

// Message is one MFN^M02 record.
type Message struct {
	Header    Header
	Event     string // MFE-1
	Effective time.Time
	Provider  Provider
}

var esc = func(s string) string {
	return string(hl7.Escape(nil, []byte(s), hl7.DefaultDelimiters))
}

// Build encodes m (CR segment terminators).
func Build(m Message) ([]byte, error) {
	p := m.Provider
	if p.PersonNumber == "" && p.SER == "" {
		return nil, errors.New("mfn: a provider needs a person number or an Epic SER id")
	}
	if !slices.Contains([]string{Add, Update, Deactivate, Reactivate}, m.Event) {
		return nil, fmt.Errorf("mfn: record event %q is not MAD, MUP, MDC or MAC", m.Event)
	}
	h := m.Header
	ts := h.Time.UTC().Format("20060102150405")
	eff := ts
	if !m.Effective.IsZero() {
		eff = m.Effective.UTC().Format("20060102")
	}
	id, sys := p.Key()
	key := esc(id) + "^^" + sys
	var ids []string
	for _, x := range []struct{ v, auth, typ string }{
		{p.SER, AuthEpic, "SER"}, {p.EMP, AuthEpic, "EMP"},
		{p.PersonNumber, AuthFusion, "PN"}, {p.AssignmentNumber, AuthFusion, "AN"},
	} {
		if x.v != "" {
			ids = append(ids, esc(x.v)+"^^^"+x.auth+"^"+x.typ)
		}
	}
	active := "I"
	if p.Active {
		active = "A"
	}
	stf := make([]string, 20)
	stf[0] = "STF"
	stf[1] = key
	stf[2] = strings.Join(ids, "~")
	stf[3] = esc(p.Family) + "^" + esc(p.Given)
	stf[4] = esc(p.ProviderType)
	stf[7] = active
	stf[8] = esc(p.Department)
	stf[19] = esc(p.Job)
	var pra6 []string
	if p.NPI != "" {
		pra6 = append(pra6, esc(p.NPI)+"^NPI")
	}
	for _, c := range p.Credentials {
		pra6 = append(pra6, esc(c.Number)+"^"+esc(c.Type)+"^"+esc(c.State))
	}
	segs := []string{
		"MSH|^~\\&|" + esc(h.SendingApp) + "|" + esc(h.SendingFacility) + "|" + esc(h.ReceivingApp) + "|" + esc(h.ReceivingFacility) + "|" + ts + "||MFN^M02^MFN_M02|" + esc(h.ControlID) + "|P|2.5.1",
		"MFI|PRA^Practitioner master file^HL70175||UPD|||AL",
		"MFE|" + m.Event + "|" + esc(h.ControlID) + "|" + eff + "|" + key + "|CE",
		strings.TrimRight(strings.Join(stf, "|"), "|"),
		"PRA|" + key + "||||" + esc(p.Specialty) + "|" + strings.Join(pra6, "~"),
	}
	if p.Manager != "" {
		segs = append(segs, "ZWK|"+esc(p.Manager))
	}
	return []byte(strings.Join(segs, "\r") + "\r"), nil
}

// FieldError is a record that cannot be read, naming the field (never its
// value): the receiver answers it with an AR naming the same field.
type FieldError struct {
	Path string
	Why  string
}

func (e *FieldError) Error() string { return "mfn: " + e.Path + ": " + e.Why }

// Parse reads one MFN^M02 record.
func Parse(raw []byte) (Message, error) {
	msg, err := hl7.Parse(raw)
	if err != nil {
		return Message{}, err
	}
	return Read(msg)
}

// Read reads one MFN^M02 record from a parsed message.
func Read(msg *hl7.Message) (Message, error) {
	if msg.Type() != "MFN" || msg.Event() != "M02" {
		return Message{}, &FieldError{Path: "MSH-9", Why: "not MFN^M02"}
	}
	if msg.Count("MFE") != 1 || msg.Count("STF") != 1 {
		return Message{}, &FieldError{Path: "MFE", Why: "exactly one MFE and one STF per message"}
	}
	var m Message
	m.Header = Header{
		SendingApp: msg.SendingApplication(), SendingFacility: msg.SendingFacility(),
		ReceivingApp: msg.ReceivingApplication(), ReceivingFacility: msg.ReceivingFacility(),
		ControlID: msg.ControlID(),
	}
	m.Event = msg.Get("MFE-1")
	if !slices.Contains([]string{Add, Update, Deactivate, Reactivate}, m.Event) {
		return Message{}, &FieldError{Path: "MFE-1", Why: "record event must be MAD, MUP, MDC or MAC"}
	}
	if eff := msg.Get("MFE-3"); eff != "" {
		t, ok := hl7.ParseDTM(eff)
		if !ok {
			return Message{}, &FieldError{Path: "MFE-3", Why: "not a date"}
		}
		m.Effective = t
	}
	p := &m.Provider
	stf2 := hl7.MustPath("STF-2")
	for i := range msg.Repetitions(stf2) {
		get := func(c int) string { return msg.Value(hl7.Path{Segment: "STF", Field: 2, Rep: i, Component: c}) }
		v, auth, typ := get(1), get(4), get(5)
		switch auth + "/" + typ {
		case AuthEpic + "/SER":
			p.SER = v
		case AuthEpic + "/EMP":
			p.EMP = v
		case AuthFusion + "/PN":
			p.PersonNumber = v
		case AuthFusion + "/AN":
			p.AssignmentNumber = v
		}
	}
	keyID, keySys := msg.Get("MFE-4-1"), msg.Get("MFE-4-3")
	switch keySys {
	case KeyEpicSER:
		if p.SER == "" {
			p.SER = keyID
		}
	case KeyFusion:
		if p.PersonNumber == "" {
			p.PersonNumber = keyID
		}
	default:
		return Message{}, &FieldError{Path: "MFE-4-3", Why: "primary key system must be " + KeyEpicSER + " or " + KeyFusion}
	}
	if keyID == "" {
		return Message{}, &FieldError{Path: "MFE-4-1", Why: "required"}
	}
	p.Family, p.Given = msg.Get("STF-3-1"), msg.Get("STF-3-2")
	if p.Family == "" {
		return Message{}, &FieldError{Path: "STF-3-1", Why: "required"}
	}
	p.ProviderType = msg.Get("STF-4")
	switch msg.Get("STF-7") {
	case "A":
		p.Active = true
	case "I":
	default:
		return Message{}, &FieldError{Path: "STF-7", Why: "must be A or I"}
	}
	p.Department = msg.Get("STF-8")
	p.Job = msg.Get("STF-19")
	p.Specialty = msg.Get("PRA-5")
	pra6 := hl7.MustPath("PRA-6")
	for i := range msg.Repetitions(pra6) {
		get := func(c int) string { return msg.Value(hl7.Path{Segment: "PRA", Field: 6, Rep: i, Component: c}) }
		num, typ := get(1), get(2)
		switch {
		case num == "":
		case typ == "NPI":
			if !ValidNPI(num) {
				return Message{}, &FieldError{Path: fmt.Sprintf("PRA-6(%d)-1", i), Why: "NPI fails its check digit"}
			}
			p.NPI = num
		default:
			p.Credentials = append(p.Credentials, Credential{Number: num, Type: typ, State: get(3)})
		}
	}
	p.Manager = msg.Get("ZWK-1")
	return m, nil
}

// ValidNPI reports whether s is a 10-digit NPI with a valid Luhn check
// digit (computed over the 80840 prefix, as CMS defines).
func ValidNPI(s string) bool {
	if len(s) != 10 {
		return false
	}
	sum := 24 // the 80840 prefix's contribution
	for i := 8; i >= 0; i-- {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if (8-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	c := s[9]
	return c >= '0' && c <= '9' && (10-sum%10)%10 == int(c-'0')
}
