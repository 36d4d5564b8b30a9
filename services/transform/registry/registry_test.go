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
