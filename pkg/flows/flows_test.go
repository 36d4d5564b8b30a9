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
		"transport":     "flows: [{id: a-b, state: active, tolerances: {absolute: '0', percent: '0'}, delivery: {transport: ftp}}]",
		"sftp no dir":   "flows: [{id: a-b, state: active, tolerances: {absolute: '0', percent: '0'}, delivery: {transport: sftp}}]",
		"delimiter":     "flows: [{id: a-b, state: active, tolerances: {absolute: '0', percent: '0'}, delivery: {transport: sftp, dir: x, delimiter: 'ab'}}]",
		"letter delim":  "flows: [{id: a-b, state: active, tolerances: {absolute: '0', percent: '0'}, delivery: {transport: sftp, dir: x, delimiter: 'x'}}]",
		"refund prefix": "flows: [{id: a-b, state: active, tolerances: {absolute: '0', percent: '0'}, refunds: {prefix: 'rf-'}}]",
	} {
		if _, err := flows.Parse(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestDeliveryAndRefundDefaults: a flow without delivery goes over MLLP,
// one without refunds matches the RF prefix; the project's flows declare
// both explicitly.
func TestDeliveryAndRefundDefaults(t *testing.T) {
	f := &flows.Flow{ID: "a-b"}
	if f.Transport() != flows.TransportMLLP || f.RefundPrefix() != "RF" {
		t.Fatalf("defaults %s %s", f.Transport(), f.RefundPrefix())
	}
	inv, err := flows.Load("../../flows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sup, _ := inv.Get("supplier-sync")
	ap, _ := inv.Get("ap-payment-status")
	if sup.Transport() != flows.TransportMLLP || sup.Delivery.Dir != "supplier-ref" || ap.RefundPrefix() != "RF" {
		t.Fatalf("supplier-sync %+v, ap-payment-status %+v", sup.Delivery, ap.Refunds)
	}
	sftp, err := flows.Parse(strings.NewReader("flows: [{id: a-b, state: active, tolerances: {absolute: '0', percent: '0'}, delivery: {transport: sftp, dir: in, delimiter: ';'}, refunds: {prefix: PR}}]"))
	if err != nil {
		t.Fatal(err)
	}
	if g := &sftp.Flows[0]; g.Transport() != flows.TransportSFTP || g.RefundPrefix() != "PR" {
		t.Fatalf("%+v", g)
	}
}
