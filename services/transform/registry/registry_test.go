package registry_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/services/transform/registry"
)

func TestCheck(t *testing.T) {
	batch := func(context.Context, *flows.Flow, registry.Env) (registry.Batch, error) { return nil, nil }
	gl := &flows.GL{Ledger: "L"}
	cases := []struct {
		name    string
		entries []registry.Entry
		flows   []flows.Flow
		want    string // substring of the error; "" for none
	}{
		{"declarative hl7 flow needs no package", nil, []flows.Flow{{ID: "a-hl7", HL7: &flows.HL7{}}}, ""},
		{"stock-count flow needs no package", nil, []flows.Flow{{ID: "counts", GL: gl, Reconcile: flows.Reconcile{Onhand: true}}}, ""},
		{"batch flow with its package", []registry.Entry{{ID: "gl", NewBatch: batch}}, []flows.Flow{{ID: "gl", GL: gl}}, ""},
		{"batch flow without a package", nil, []flows.Flow{{ID: "gl", GL: gl}}, "flow gl maps batch files"},
		{"package without a batch mapping", []registry.Entry{{ID: "gl"}}, []flows.Flow{{ID: "gl", GL: gl}}, "flow gl maps batch files"},
		{"package not declared", []registry.Entry{{ID: "gone"}}, nil, "flow package gone is registered"},
		{"journal import without gl settings", []registry.Entry{{ID: "x", Fusion: map[string]registry.Op{"import": registry.OpJournalImport}}},
			[]flows.Flow{{ID: "x"}}, "flow x posts import commands by Journal Import but has no gl settings"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := registry.New(c.entries...)
			if err != nil {
				t.Fatal(err)
			}
			err = r.Check(&flows.Inventory{Flows: c.flows})
			if c.want == "" && err != nil {
				t.Fatalf("Check: %v", err)
			}
			if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("Check = %v, want an error with %q", err, c.want)
			}
		})
	}
}

func TestRegisterRefusesTwiceAndEmpty(t *testing.T) {
	if _, err := registry.New(registry.Entry{ID: "x"}, registry.Entry{ID: "x"}); err == nil {
		t.Fatal("an id registered twice was accepted")
	}
	if _, err := registry.New(registry.Entry{}); err == nil {
		t.Fatal("an entry without an id was accepted")
	}
}

// Resolve joins each declared flow to its entry, in flows.yaml's order: a
// flow's own Fusion operations, the shared HL7 shapes' for an HL7 flow
// without an entry, none for a flow that posts nothing.
func TestResolve(t *testing.T) {
	batch := func(context.Context, *flows.Flow, registry.Env) (registry.Batch, error) { return nil, nil }
	r, err := registry.New(registry.Entry{ID: "gl-b", NewBatch: batch, Fusion: map[string]registry.Op{"import": registry.OpJournalImport}})
	if err != nil {
		t.Fatal(err)
	}
	inv := &flows.Inventory{Flows: []flows.Flow{{ID: "ward", HL7: &flows.HL7{}}, {ID: "gl-b", GL: &flows.GL{}}, {ID: "later"}}}
	fs, err := r.Resolve(inv)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, f := range fs.All() {
		order = append(order, f.ID)
	}
	if strings.Join(order, ",") != "ward,gl-b,later" {
		t.Fatalf("order %v", order)
	}
	if f, _ := fs.Get("ward"); f.Fusion["inventory"] != registry.OpInventory || f.Fusion["item"] != registry.OpItem || f.Fusion["supplier"] != registry.OpSupplier || f.Entry.ID != "ward" {
		t.Errorf("hl7 flow: %+v", f)
	}
	if f, _ := fs.Get("gl-b"); len(f.Fusion) != 1 || f.Fusion["import"] != registry.OpJournalImport || f.Entry.NewBatch == nil {
		t.Errorf("gl flow: %+v", f)
	}
	if f, _ := fs.Get("later"); len(f.Fusion) != 0 {
		t.Errorf("a flow that posts nothing: %+v", f.Fusion)
	}
	if _, ok := fs.Get("other"); ok {
		t.Error("an undeclared flow resolved")
	}
	if _, err := r.Resolve(&flows.Inventory{}); err == nil {
		t.Error("Resolve accepted an entry flows.yaml does not declare")
	}
}
