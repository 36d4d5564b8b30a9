package flows_test

import (
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/flows"
)

func TestProjectInventory(t *testing.T) {
	inv, err := flows.Load("../../flows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"resolute-gl", "willow-inventory", "optime-materials", "beaker-inventory", "worker-sync", "supplier-sync", "ap-payment-status", "nightly-catchup", "formulary-check", "optime-encounters", "beaker-expected-use"}
	if len(inv.Flows) != len(want) {
		t.Fatalf("%d flows", len(inv.Flows))
	}
	for i, id := range want {
		if inv.Flows[i].ID != id {
			t.Errorf("flow %d is %s, want %s", i, inv.Flows[i].ID, id)
		}
	}
	gl, ok := inv.Get("resolute-gl")
	if !ok || gl.Resolute == nil || gl.Resolute.Delimiter != "|" || gl.GL == nil || gl.GL.Source != "Epic Resolute" {
		t.Errorf("resolute-gl: %+v", gl)
	}
}

func TestInvalidInventories(t *testing.T) {
	for name, in := range map[string]string{
		"bad id":        "flows: [{id: Resolute_GL, state: active, tolerances: {absolute: '0', percent: '0'}}]",
		"duplicate":     "flows: [{id: a-b, state: active, tolerances: {absolute: '0', percent: '0'}}, {id: a-b, state: active, tolerances: {absolute: '0', percent: '0'}}]",
		"state":         "flows: [{id: a-b, state: live, tolerances: {absolute: '0', percent: '0'}}]",
		"tolerance":     "flows: [{id: a-b, state: active, tolerances: {absolute: '0.001', percent: '0'}}]",
		"unknown field": "flows: [{id: a-b, state: active, colour: red, tolerances: {absolute: '0', percent: '0'}}]",
	} {
		if _, err := flows.Parse(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
