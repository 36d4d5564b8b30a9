package workersync

import (
	"fmt"
	"slices"
	"strings"
)

// Link is one crosswalk row: a Fusion worker and the Epic provider it is.
type Link struct {
	PersonNumber     string `json:"person_number"`     // Fusion PersonNumber
	AssignmentNumber string `json:"assignment_number"` // Fusion AssignmentNumber
	SER              string `json:"ser,omitempty"`     // Epic provider (SER) id
	EMP              string `json:"emp,omitempty"`     // Epic user (EMP) id
}

// Provider is what the matcher knows of one Epic provider.
type Provider struct {
	SER, EMP string
	NPI      string
	// External are the other systems' ids Epic keeps for it (STF-2), such
	// as a Fusion person number.
	PersonNumber string
}

// Worker is what the matcher knows of one Fusion worker.
type Worker struct {
	PersonNumber, AssignmentNumber string
	NPI                            string
	// SER / EMP are the Epic ids recorded on the worker in Fusion, if any.
	SER, EMP string
}

// MatchKind is the outcome of matching.
type MatchKind string

// Outcomes: one provider found; none (a new provider is created in Epic);
// more than one candidate, or candidates that disagree (triage, never
// guessed).
const (
	Matched   MatchKind = "matched"
	New       MatchKind = "new"
	Ambiguous MatchKind = "ambiguous"
)

// Match is a matching outcome. Why names the identifiers that disagree
// (their kinds, never their values).
type Match struct {
	Kind     MatchKind
	Provider Provider
	Why      string
}

// MatchWorker finds the Epic provider a Fusion worker is. The crosswalk
// row for the worker wins when there is one; otherwise the worker's NPI and
// the Epic ids recorded on it must all point to the same single provider,
// and that provider must not already be linked to another worker. Anything
// else is Ambiguous.
func MatchWorker(w Worker, links []Link, providers []Provider) Match {
	for _, l := range links {
		if l.PersonNumber == w.PersonNumber && l.SER != "" {
			for _, p := range providers {
				if p.SER == l.SER {
					return Match{Kind: Matched, Provider: p}
				}
			}
			return Match{Kind: Ambiguous, Why: "crosswalk names a provider Epic does not have"}
		}
	}
	cand := map[string]Provider{}
	var kinds []string
	add := func(kind string, f func(Provider) bool) {
		n := 0
		for _, p := range providers {
			if f(p) {
				cand[p.SER] = p
				n++
			}
		}
		if n > 0 {
			kinds = append(kinds, fmt.Sprintf("%s(%d)", kind, n))
		}
	}
	if w.NPI != "" {
		add("npi", func(p Provider) bool { return p.NPI == w.NPI })
	}
	if w.SER != "" {
		add("ser", func(p Provider) bool { return p.SER == w.SER })
	}
	if w.EMP != "" {
		add("emp", func(p Provider) bool { return p.EMP == w.EMP })
	}
	add("person_number", func(p Provider) bool { return p.PersonNumber != "" && p.PersonNumber == w.PersonNumber })
	switch len(cand) {
	case 0:
		return Match{Kind: New}
	case 1:
	default:
		return Match{Kind: Ambiguous, Why: fmt.Sprintf("%d providers match on %s", len(cand), strings.Join(kinds, ", "))}
	}
	var p Provider
	for _, v := range cand {
		p = v
	}
	if p.NPI != "" && w.NPI != "" && p.NPI != w.NPI {
		return Match{Kind: Ambiguous, Why: "provider found by an Epic id has another npi"}
	}
	if i := slices.IndexFunc(links, func(l Link) bool { return l.SER == p.SER && l.PersonNumber != w.PersonNumber }); i >= 0 {
		return Match{Kind: Ambiguous, Why: "provider is already linked to another worker"}
	}
	return Match{Kind: Matched, Provider: p}
}

// WorkerMatch is the outcome of finding the Fusion worker of an Epic
// provider: Index into the workers given when Kind is Matched.
type WorkerMatch struct {
	Kind  MatchKind
	Index int
	Why   string
}

// MatchProvider finds the Fusion worker an Epic provider is: the worker
// with the person number Epic keeps for it, else the single worker whose
// NPI or recorded SER is the provider's. A worker already linked to
// another SER, or more than one candidate, is Ambiguous; none is New (a
// provider that is no Fusion worker).
func MatchProvider(p Provider, workers []Worker) WorkerMatch {
	if p.PersonNumber != "" {
		for i, w := range workers {
			if w.PersonNumber == p.PersonNumber {
				if w.SER != "" && p.SER != "" && w.SER != p.SER {
					return WorkerMatch{Kind: Ambiguous, Why: "worker is linked to another provider"}
				}
				return WorkerMatch{Kind: Matched, Index: i}
			}
		}
	}
	var idx []int
	for i, w := range workers {
		if (p.NPI != "" && w.NPI == p.NPI) || (p.SER != "" && w.SER == p.SER) {
			idx = append(idx, i)
		}
	}
	switch {
	case len(idx) == 0:
		return WorkerMatch{Kind: New}
	case len(idx) > 1:
		return WorkerMatch{Kind: Ambiguous, Why: fmt.Sprintf("%d workers match on npi or ser", len(idx))}
	}
	w := workers[idx[0]]
	if w.SER != "" && p.SER != "" && w.SER != p.SER {
		return WorkerMatch{Kind: Ambiguous, Why: "worker with this npi is linked to another provider"}
	}
	return WorkerMatch{Kind: Matched, Index: idx[0]}
}
