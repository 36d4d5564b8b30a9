package fhir

import (
	"encoding/json"
	"fmt"
)

// Bundle is a searchset (or any) Bundle: its links and entries, each
// entry's resource kept as the exact bytes inside the Bundle.
type Bundle struct {
	Type    string
	Total   *int
	Links   map[string]string // relation → url, exactly as given
	Entries []Entry
}

// Entry is one Bundle entry. Resource is nil for an entry without one (a
// DELETE in a transaction); Outcome is set for a search.mode "outcome"
// entry (Epic's warnings and errors inside a searchset).
type Entry struct {
	FullURL    string
	SearchMode string // match, include, outcome
	Resource   *Resource
	Outcome    *OperationOutcome
}

type bundleJSON struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Total        *int   `json:"total"`
	Link         []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
	Entry []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Search   *struct {
			Mode string `json:"mode"`
		} `json:"search"`
	} `json:"entry"`
}

// Next is the next-page link, or "".
func (b *Bundle) Next() string { return b.Links["next"] }

// Matches returns the resources of the search.mode "match" entries (and
// of entries without a mode, as in a transaction), not includes or outcomes.
func (b *Bundle) Matches() []*Resource {
	var rs []*Resource
	for _, e := range b.Entries {
		if e.Resource != nil && (e.SearchMode == "match" || e.SearchMode == "") {
			rs = append(rs, e.Resource)
		}
	}
	return rs
}

// Outcomes returns the OperationOutcomes of the search.mode "outcome"
// entries.
func (b *Bundle) Outcomes() []*OperationOutcome {
	var os []*OperationOutcome
	for _, e := range b.Entries {
		if e.Outcome != nil {
			os = append(os, e.Outcome)
		}
	}
	return os
}

// ParseBundle reads a Bundle from raw. Entries of a transaction or batch
// Bundle may lack ids (they are to be created); every other entry must be
// a readable resource. An entry's error names its index.
func ParseBundle(raw []byte) (*Bundle, error) {
	r, err := Parse(raw, ParseOptions{})
	if err != nil {
		return nil, err
	}
	return bundleOf(r)
}

func bundleOf(r *Resource) (*Bundle, error) {
	if r.Type != "Bundle" {
		return nil, &Error{Code: "invalid", Path: "resourceType", Msg: "not a Bundle"}
	}
	var bj bundleJSON
	if err := json.Unmarshal(r.Raw, &bj); err != nil {
		return nil, &Error{Code: "structure", Path: "Bundle", Msg: "Bundle elements of the wrong JSON type"}
	}
	b := &Bundle{Type: bj.Type, Total: bj.Total, Links: map[string]string{}}
	for _, l := range bj.Link {
		b.Links[l.Relation] = l.URL
	}
	opts := ParseOptions{AllowNoID: bj.Type == "transaction" || bj.Type == "batch" || bj.Type == "transaction-response" || bj.Type == "batch-response"}
	for i, e := range bj.Entry {
		ent := Entry{FullURL: e.FullURL}
		if e.Search != nil {
			ent.SearchMode = e.Search.Mode
		}
		if len(e.Resource) > 0 && string(e.Resource) != "null" {
			res, err := Parse(e.Resource, opts)
			if err != nil {
				if fe, ok := err.(*Error); ok {
					fe.Path = fmt.Sprintf("Bundle.entry[%d].resource", i) + suffix(fe.Path)
				}
				return nil, err
			}
			for j := range res.Warnings {
				res.Warnings[j].Path = fmt.Sprintf("Bundle.entry[%d].resource.", i) + res.Warnings[j].Path
			}
			ent.Resource = res
			if res.Type == "OperationOutcome" && ent.SearchMode == "outcome" {
				oo, err := ParseOutcome(res.Raw)
				if err != nil {
					return nil, err
				}
				ent.Outcome = oo
				ent.Resource = nil
			}
		}
		b.Entries = append(b.Entries, ent)
	}
	return b, nil
}

func suffix(p string) string {
	if p == "" {
		return ""
	}
	return "." + p
}
