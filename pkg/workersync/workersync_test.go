package workersync

import (
	"slices"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/flows"
)

func defaultRules(t *testing.T) Rules {
	t.Helper()
	r, err := RulesOf(flows.Flow{ID: "w", Conflicts: []flows.Conflict{
		{Field: "hr_attributes", Wins: "source"}, {Field: "clinical_attributes", Wins: "target"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRulesOf(t *testing.T) {
	r := defaultRules(t)
	for _, a := range []Attr{Name, Status, Department, Job, Manager} {
		if r[a] != Fusion {
			t.Errorf("%s owned by %s, want fusion", a, r[a])
		}
	}
	for _, a := range []Attr{NPI, Specialty, Credentials, ProviderType} {
		if r[a] != Epic {
			t.Errorf("%s owned by %s, want epic", a, r[a])
		}
	}
	// An attribute's own rule beats its group's, whatever the order.
	r2, err := RulesOf(flows.Flow{ID: "w", Conflicts: []flows.Conflict{
		{Field: "department", Wins: "target"},
		{Field: "hr_attributes", Wins: "source"}, {Field: "clinical_attributes", Wins: "target"},
	}})
	if err != nil || r2[Department] != Epic || r2[Name] != Fusion {
		t.Fatalf("override: %v %v", r2, err)
	}
	for name, cs := range map[string][]flows.Conflict{
		"unknown field": {{Field: "shoe_size", Wins: "source"}},
		"uncovered":     {{Field: "hr_attributes", Wins: "source"}},
	} {
		if _, err := RulesOf(flows.Flow{ID: "w", Conflicts: cs}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestResolve(t *testing.T) {
	r := defaultRules(t)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	fus := Change{Side: Fusion, Worker: "P1", At: t0, Seq: 1, Values: map[Attr]string{Name: "DOE^JANE", Specialty: "Cardiology"}}
	epi := Change{Side: Epic, Worker: "P1", At: t0.Add(time.Second), Seq: 2, Values: map[Attr]string{Name: "DOE^J", Specialty: "Oncology"}}
	later := Change{Side: Fusion, Worker: "P1", At: t0.Add(2 * time.Second), Seq: 3, Values: map[Attr]string{Name: "DOE-SMITH^JANE"}}
	tests := []struct {
		name    string
		in      []Change
		toEpic  map[Attr]string
		toFus   map[Attr]string
		nLosses int
	}{
		{"both sides, by the rules", []Change{fus, epi}, map[Attr]string{Name: "DOE^JANE"}, map[Attr]string{Specialty: "Oncology"}, 2},
		{"order does not matter", []Change{epi, fus}, map[Attr]string{Name: "DOE^JANE"}, map[Attr]string{Specialty: "Oncology"}, 2},
		{"owner's latest wins", []Change{later, epi, fus}, map[Attr]string{Name: "DOE-SMITH^JANE"}, map[Attr]string{Specialty: "Oncology"}, 3},
		{"one side only", []Change{epi}, nil, map[Attr]string{Specialty: "Oncology"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apply, losses := Resolve(r, tt.in)
			if !equalMap(apply[Epic], tt.toEpic) || !equalMap(apply[Fusion], tt.toFus) {
				t.Fatalf("apply = %v", apply)
			}
			if len(losses) != tt.nLosses {
				t.Fatalf("losses = %+v", losses)
			}
			// Deterministic: the same changes in reverse give the same losses.
			rev := slices.Clone(tt.in)
			slices.Reverse(rev)
			_, l2 := Resolve(r, rev)
			if !slices.Equal(losses, l2) {
				t.Fatalf("losses depend on order: %+v vs %+v", losses, l2)
			}
		})
	}
}

func equalMap(a, b map[Attr]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestEcho(t *testing.T) {
	h := Hasher{Key: []byte("k")}
	w := h.Record(nil, map[Attr]string{Name: "DOE^JANE", Department: "Cardiology"})
	echo := Change{Side: Epic, Values: map[Attr]string{Name: "DOE^JANE", Department: " Cardiology"}}
	if got := h.Unechoed(w, echo); len(got.Values) != 0 {
		t.Fatalf("echo not suppressed: %v", got.Values)
	}
	mixed := Change{Side: Epic, Values: map[Attr]string{Name: "DOE^JANE", Specialty: "Oncology"}}
	if got := h.Unechoed(w, mixed); len(got.Values) != 1 || got.Values[Specialty] != "Oncology" {
		t.Fatalf("real change lost: %v", got.Values)
	}
	for _, v := range w {
		if v == "DOE^JANE" {
			t.Fatal("written record keeps a value")
		}
	}
}

func TestDiff(t *testing.T) {
	d := Diff(map[Attr]string{Name: "A", Job: "RN"}, map[Attr]string{Name: "A", Job: "MD", Status: "A"})
	if !equalMap(d, map[Attr]string{Job: "MD", Status: "A"}) {
		t.Fatal(d)
	}
}

func TestMatchWorker(t *testing.T) {
	provs := []Provider{
		{SER: "S1", EMP: "E1", NPI: "1111111111"},
		{SER: "S2", EMP: "E2", NPI: "2222222222"},
		{SER: "S3", EMP: "E3", NPI: "2222222222"}, // a duplicate NPI in Epic
		{SER: "S4", EMP: "E4", PersonNumber: "P4"},
	}
	links := []Link{{PersonNumber: "P9", SER: "S1"}}
	tests := []struct {
		name string
		w    Worker
		kind MatchKind
		ser  string
	}{
		{"crosswalk row", Worker{PersonNumber: "P9"}, Matched, "S1"},
		{"unique npi, but linked to another worker", Worker{PersonNumber: "P1", NPI: "1111111111"}, Ambiguous, ""},
		{"duplicate npi", Worker{PersonNumber: "P2", NPI: "2222222222"}, Ambiguous, ""},
		{"npi and ser disagree", Worker{PersonNumber: "P2", NPI: "2222222222", SER: "S4"}, Ambiguous, ""},
		{"by fusion id kept in epic", Worker{PersonNumber: "P4"}, Matched, "S4"},
		{"by emp", Worker{PersonNumber: "P5", EMP: "E4"}, Matched, "S4"},
		{"none", Worker{PersonNumber: "P6", NPI: "6666666666"}, New, ""},
		{"found by ser with another npi", Worker{PersonNumber: "P7", SER: "S2", NPI: "7777777777"}, Ambiguous, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := MatchWorker(tt.w, links, provs)
			if m.Kind != tt.kind || m.Provider.SER != tt.ser {
				t.Fatalf("got %+v", m)
			}
			if m.Kind == Ambiguous && m.Why == "" {
				t.Fatal("ambiguous without a reason")
			}
		})
	}
}

func TestMatchProvider(t *testing.T) {
	workers := []Worker{
		{PersonNumber: "P1", NPI: "1111111111", SER: "S1"},
		{PersonNumber: "P2", NPI: "2222222222"},
		{PersonNumber: "P3", NPI: "2222222222"}, // a duplicate NPI in Fusion
		{PersonNumber: "P4", NPI: "4444444444"},
	}
	tests := []struct {
		name string
		p    Provider
		kind MatchKind
		idx  int
	}{
		{"by person number", Provider{SER: "S1", PersonNumber: "P1"}, Matched, 0},
		{"person number linked elsewhere", Provider{SER: "S9", PersonNumber: "P1"}, Ambiguous, 0},
		{"by npi", Provider{SER: "S4", NPI: "4444444444"}, Matched, 3},
		{"duplicate npi", Provider{SER: "S5", NPI: "2222222222"}, Ambiguous, 0},
		{"by ser", Provider{SER: "S1"}, Matched, 0},
		{"npi of a worker linked elsewhere", Provider{SER: "S7", NPI: "1111111111"}, Ambiguous, 0},
		{"none", Provider{SER: "S8", NPI: "8888888888"}, New, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := MatchProvider(tt.p, workers)
			if m.Kind != tt.kind || (m.Kind == Matched && m.Index != tt.idx) || (m.Kind == Ambiguous && m.Why == "") {
				t.Fatalf("got %+v", m)
			}
		})
	}
}
