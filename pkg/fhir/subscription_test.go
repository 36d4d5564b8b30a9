package fhir_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/fhir"
)

func TestParseNotificationReadsStatusEventsAndFocus(t *testing.T) {
	raw, err := os.ReadFile("testdata/notification-event.json")
	if err != nil {
		t.Fatal(err)
	}
	n, err := fhir.ParseNotification(raw)
	if err != nil {
		t.Fatal(err)
	}
	if n.SubscriptionID() != "s1" || n.Type != fhir.NotificationEventType || n.EventsSinceStart != 7 || n.Status != "active" {
		t.Errorf("%+v", n)
	}
	if len(n.Events) != 1 || n.Events[0].Number != 7 || !n.Events[0].Timestamp.Equal(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("events %+v", n.Events)
	}
	if len(n.Resources) != 1 || n.Resources[0].Key() != "Encounter/e1" || n.Resources[0].VersionID != "3" {
		t.Errorf("resources %+v", n.Resources)
	}
}

func TestParseNotificationErrorsNamePaths(t *testing.T) {
	for _, tc := range []struct{ in, path string }{
		{`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Patient","id":"p"}}]}`, "Bundle.entry[0].resource"},
		{`{"resourceType":"Bundle","type":"collection"}`, "Bundle.type"},
		{`{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"Parameters","parameter":[{"name":"subscription","valueString":"Subscription/s"},{"name":"type","valueCode":"heartbeat"},{"name":"events-since-subscription-start","valueString":"x1"}]}}]}`, "Bundle.entry[0].resource.parameter[2]"},
	} {
		_, err := fhir.ParseNotification([]byte(tc.in))
		var fe *fhir.Error
		if !errors.As(err, &fe) || fe.Path != tc.path {
			t.Errorf("%s: %v, want path %s", tc.in, err, tc.path)
		}
	}
}

func TestSubscriptionRequestRoundTrips(t *testing.T) {
	req := fhir.SubscriptionRequest{Topic: "https://t/enc", Endpoint: "https://sinew/fhir/notify/enc", Header: "Authorization: Bearer x", Heartbeat: time.Minute, Content: fhir.PayloadIDOnly}
	sp, err := fhir.ParseSubscription(req.JSON())
	if err != nil {
		t.Fatal(err)
	}
	if sp.Topic != req.Topic || sp.Endpoint != req.Endpoint || len(sp.Headers) != 1 || sp.Heartbeat != time.Minute || sp.Content != fhir.PayloadIDOnly {
		t.Errorf("%+v", sp)
	}
}

func TestParseCapabilityStatementReadsSearchExportAndTopics(t *testing.T) {
	raw, err := os.ReadFile("testdata/capability-backport.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := fhir.ParseCapabilityStatement(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Searchable("Encounter", "date") || c.Searchable("Practitioner", "date") || c.Searchable("Encounter", "patient") {
		t.Errorf("searchable: %+v", c.Types)
	}
	if !c.Export || !c.SubscriptionEvents || !c.Topics["https://epic.example/SubscriptionTopic/encounter-update"] || len(c.Topics) != 1 {
		t.Errorf("export %v, $events %v, topics %v", c.Export, c.SubscriptionEvents, c.Topics)
	}
	if _, err := fhir.ParseCapabilityStatement([]byte(`{"resourceType":"Patient","id":"p"}`)); err == nil {
		t.Error("a Patient read as a CapabilityStatement")
	}
}
