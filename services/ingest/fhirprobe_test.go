package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/services/epicsim"
	"github.com/sinewhq/sinew/services/ingest"
)

// TestFHIRProbeChoosesSyncModePerType: the CapabilityStatement and the
// probes decide each declared type's mode: a searchable type keeps its
// search, a type without a date search parameter moves to $export, a
// type with an offered topic and a configured subscription is notified,
// a subscription on a topic the server lacks is not made, and _since is
// kept because the probe kick-off was accepted (its job deleted).
func TestFHIRProbeChoosesSyncModePerType(t *testing.T) {
	simCfg := epicsim.DefaultFHIRConfig()
	simCfg.Subscriptions = epicsim.SubscriptionsConfig{Enabled: true, Events: true}
	e := startFHIR(t, simCfg)
	t.Cleanup(e.sim.Close)
	e.cfg.Search = []ingest.SearchSync{{Type: "Encounter"}, {Type: "Practitioner"}, {Type: "Observation", Params: "category=laboratory"}}
	e.cfg.Export = ingest.ExportSync{Group: "g", Types: []string{"Medication"}, Since: true, MaxWait: time.Second}
	e.cfg.Notify = ingest.NotifyConfig{PublicURL: "http://127.0.0.1:1", Subscriptions: []ingest.SubscriptionSync{
		{Name: "obs", Type: "Observation", Topic: epicsim.TopicURL("Observation"), Secret: notifySecret},
		{Name: "loc", Type: "Location", Topic: "https://elsewhere.example/topic/location", Secret: notifySecret},
	}}
	f := e.sync(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	choices, err := f.Probe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range choices {
		got[c.Type+" "+c.Declared] = c.Chosen
		if c.Reason == "" {
			t.Errorf("%+v: no reason", c)
		}
	}
	want := map[string]string{
		"Encounter search":      ingest.ModeSearch,
		"Practitioner search":   ingest.ModeExport,
		"Observation search":    ingest.ModeNotification,
		"Medication export":     ingest.ModeExport,
		"Location notification": ingest.ModeNone,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: chose %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("choices %v", got)
	}
	if e.sim.Kickoffs() != 1 || e.sim.Jobs() != 0 {
		t.Errorf("_since probe: %d kick-offs, %d jobs left", e.sim.Kickoffs(), e.sim.Jobs())
	}
}

// TestFHIRProbeKeepsFlowsYAMLModesAgainstEpicsim: the types flows.yaml
// declares (what sinew up reads from epicsim) keep their declared modes:
// the probe overrides nothing there.
func TestFHIRProbeKeepsFlowsYAMLModesAgainstEpicsim(t *testing.T) {
	inv, err := flows.Load("../../flows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := startFHIR(t, epicsim.DefaultFHIRConfig())
	e.cfg.Export.Group = "sinew"
	for _, s := range inv.FHIRTypes() {
		switch s.Sync {
		case flows.FHIRSearch:
			e.cfg.Search = append(e.cfg.Search, ingest.SearchSync{Type: s.Type, Params: s.Params})
		case flows.FHIRExport:
			e.cfg.Export.Types = append(e.cfg.Export.Types, s.Type)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	choices, err := e.sync(t).Probe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(choices) != len(inv.FHIRTypes()) {
		t.Errorf("%d choices for %d declared types", len(choices), len(inv.FHIRTypes()))
	}
	for _, c := range choices {
		if c.Chosen != c.Declared {
			t.Errorf("%+v: the declaration was overridden", c)
		}
	}
}
