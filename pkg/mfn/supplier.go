package mfn

import (
	"errors"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
)

// SupplierFile is MFI-1-1 of the supplier reference master file Epic's
// Willow and Beaker keep: MFN^M01, one supplier per message, one ZSU per
// site (the same site segment Beaker sends Sinew its suppliers with):
// ZSU|<name>|<A/I>|<site>|<procurement BU>|<address>|<city>|<postal code>|<country>.
// MFE-4 is <supplier number>^<name>^FUSION.
const SupplierFile = "SUPPLIER"

// Supplier is one supplier reference record.
type Supplier struct {
	Number, Name string
	Active       bool
	Sites        []SupplierSite
}

// SupplierSite is one of a supplier's sites.
type SupplierSite struct {
	Site, ProcurementBU, Address, City, PostalCode, Country string
}

// BuildSupplier encodes one supplier reference record (MFE-1 MUP: Epic
// adds or updates by the supplier number).
func BuildSupplier(h Header, effective time.Time, s Supplier) ([]byte, error) {
	if s.Number == "" || s.Name == "" {
		return nil, errors.New("mfn: a supplier needs a number and a name")
	}
	ts := h.Time.UTC().Format("20060102150405")
	status := "I"
	if s.Active {
		status = "A"
	}
	segs := []string{
		"MSH|^~\\&|" + esc(h.SendingApp) + "|" + esc(h.SendingFacility) + "|" + esc(h.ReceivingApp) + "|" + esc(h.ReceivingFacility) + "|" + ts + "||MFN^M01^MFN_M01|" + esc(h.ControlID) + "|P|2.5.1",
		"MFI|" + SupplierFile + "^Supplier reference^L||UPD|||AL",
		"MFE|" + Update + "|" + esc(h.ControlID) + "|" + effective.UTC().Format("20060102") + "|" + esc(s.Number) + "^" + esc(s.Name) + "^FUSION|CE",
	}
	for _, st := range s.Sites {
		segs = append(segs, strings.Join([]string{"ZSU", esc(s.Name), status, esc(st.Site), esc(st.ProcurementBU), esc(st.Address), esc(st.City), esc(st.PostalCode), esc(st.Country)}, "|"))
	}
	if len(s.Sites) == 0 {
		segs = append(segs, "ZSU|"+esc(s.Name)+"|"+status)
	}
	return []byte(strings.Join(segs, "\r") + "\r"), nil
}

// IsSupplier reports whether msg is a supplier reference record.
func IsSupplier(msg *hl7.Message) bool {
	return msg.Type() == "MFN" && msg.Event() == "M01" && msg.Get("MFI-1-1") == SupplierFile
}

// ReadSupplier reads one supplier reference record.
func ReadSupplier(msg *hl7.Message) (Supplier, error) {
	if !IsSupplier(msg) {
		return Supplier{}, &FieldError{Path: "MFI-1", Why: "not a " + SupplierFile + " master file"}
	}
	if msg.Count("MFE") != 1 {
		return Supplier{}, &FieldError{Path: "MFE", Why: "exactly one MFE per message"}
	}
	s := Supplier{Number: msg.Get("MFE-4-1"), Name: msg.Get("MFE-4-2")}
	if s.Number == "" {
		return Supplier{}, &FieldError{Path: "MFE-4-1", Why: "required"}
	}
	n := msg.Count("ZSU")
	if n == 0 {
		return Supplier{}, &FieldError{Path: "ZSU", Why: "required"}
	}
	for i := range n {
		get := func(f int) string { return msg.Value(hl7.Path{Segment: "ZSU", SegRep: i, Field: f}) }
		switch get(2) {
		case "A":
			s.Active = true
		case "I":
			s.Active = false
		default:
			return Supplier{}, &FieldError{Path: "ZSU-2", Why: "must be A or I"}
		}
		if get(3) != "" {
			s.Sites = append(s.Sites, SupplierSite{Site: get(3), ProcurementBU: get(4), Address: get(5), City: get(6), PostalCode: get(7), Country: get(8)})
		}
	}
	return s, nil
}
