package flows_test

import (
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/flows"
)

// TestEveryFlowDeclaresItsSourceReconciliationAndIntake: the project's
// inventory names each flow's Fusion source code, reconciliation kind and
// intake, and the lookups services use find them by declaration.
func TestEveryFlowDeclaresItsSourceReconciliationAndIntake(t *testing.T) {
	inv, err := flows.Load("../../flows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var inventory []string
	for _, f := range inv.ByReconcile(flows.ReconcileInventory) {
		inventory = append(inventory, f.ID)
	}
	if got := strings.Join(inventory, ","); got != "willow-inventory,optime-materials,beaker-inventory" {
		t.Errorf("inventory flows %s", got)
	}
	for id, want := range map[string]string{"willow-inventory": "EPIC-WILLOW", "optime-materials": "EPIC-OPTIME", "beaker-inventory": "EPIC-BEAKER"} {
		if got, ok := inv.SourceCode(id); !ok || got != want {
			t.Errorf("%s: source code %q, want %s", id, got, want)
		}
	}
	if f, ok := inv.GLFlow(); !ok || f.ID != "resolute-gl" || f.Reconcile.Kind != flows.ReconcileGLBatch {
		t.Errorf("GL flow %+v", f)
	}
	if f, ok := inv.Onhand(); !ok || f.ID != "beaker-inventory" {
		t.Errorf("on-hand flow %+v", f)
	}
	drops := inv.Drops()
	if drops["resolute"] != "resolute-gl" || drops["clarity"] != "resolute-gl" || drops["beaker-onhand"] != "beaker-inventory" || len(drops) != 3 {
		t.Errorf("drops %v", drops)
	}
	if dirs := inv.SFTPDirs(); dirs["resolute"] != "resolute-gl" || dirs["clarity"] != "resolute-gl" || len(dirs) != 2 {
		t.Errorf("sftp dirs %v", dirs)
	}
	if ids := strings.Join(inv.HL7IDs(), ","); ids != "willow-inventory,optime-materials,beaker-inventory,worker-sync" {
		t.Errorf("hl7 flows %s", ids)
	}
}

// TestConflictingDeclarationsRefused: two flows may not share a Fusion
// source code (a willow-returns flow would reconcile willow-inventory's
// rows), a drop folder or an SFTP directory.
func TestConflictingDeclarationsRefused(t *testing.T) {
	const tol = "tolerances: {absolute: '0', percent: '0'}"
	for name, in := range map[string]string{
		"shared source code":       "flows: [{id: willow-inventory, state: active, " + tol + ", fusion_source: EPIC-WILLOW}, {id: willow-returns, state: staged, " + tol + ", fusion_source: EPIC-WILLOW}]",
		"inventory without source": "flows: [{id: a-b, state: active, " + tol + ", reconcile: {kind: inventory}}]",
		"unknown reconcile kind":   "flows: [{id: a-b, state: active, " + tol + ", reconcile: {kind: daily}}]",
		"shared drop folder":       "flows: [{id: a-b, state: active, " + tol + ", intake: {drops: [x]}}, {id: c-d, state: active, " + tol + ", intake: {drops: [x]}}]",
		"shared sftp directory":    "flows: [{id: a-b, state: active, " + tol + ", intake: {sftp: [x]}}, {id: c-d, state: active, " + tol + ", intake: {sftp: [x]}}]",
		"conflict rule":            "flows: [{id: a-b, state: active, " + tol + ", conflicts: [{field: name, wins: both}]}]",
	} {
		if _, err := flows.Parse(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ok := "flows: [{id: willow-returns, state: staged, " + tol + ", fusion_source: EPIC-WILLOWRET, reconcile: {kind: inventory}, conflicts: [{field: name, wins: source}]}]"
	inv, err := flows.Parse(strings.NewReader(ok))
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := inv.Get("willow-returns"); f.Reconcile.Kind != flows.ReconcileInventory {
		t.Errorf("%+v", f)
	}
	if inv, _ := flows.Parse(strings.NewReader("flows: [{id: a-b, state: active, " + tol + "}]")); inv.Flows[0].Reconcile.Kind != flows.ReconcileNone {
		t.Errorf("no reconcile: kind %q, want none", inv.Flows[0].Reconcile.Kind)
	}
}

// TestFHIRIntakeDeclaredOncePerType: each FHIR type read feeds one
// declared flow; a type claimed twice or an unknown sync is refused.
func TestFHIRIntakeDeclaredOncePerType(t *testing.T) {
	inv, err := flows.Load("../../flows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range inv.FHIRTypes() {
		got[s.Type] = s.Flow + "/" + s.Sync
	}
	for typ, want := range map[string]string{
		"Practitioner": "worker-sync/export", "PractitionerRole": "worker-sync/export", "Medication": "formulary-check/export",
		"Encounter": "optime-encounters/search", "Observation": "beaker-expected-use/search",
	} {
		if got[typ] != want {
			t.Errorf("%s: %q, want %s", typ, got[typ], want)
		}
	}
	const tol = "tolerances: {absolute: '0', percent: '0'}"
	for name, in := range map[string]string{
		"type twice":   "flows: [{id: a-b, state: staged, " + tol + ", intake: {fhir: [{type: Medication, sync: export}]}}, {id: c-d, state: staged, " + tol + ", intake: {fhir: [{type: Medication, sync: search}]}}]",
		"unknown sync": "flows: [{id: a-b, state: staged, " + tol + ", intake: {fhir: [{type: Medication, sync: poll}]}}]",
		"no type":      "flows: [{id: a-b, state: staged, " + tol + ", intake: {fhir: [{sync: export}]}}]",
	} {
		if _, err := flows.Parse(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
