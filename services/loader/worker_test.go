package loader_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/fusionsim"
)

// TestReadAnswered503IsTriedAgainInPlace: Fusion answers the read before
// a worker change's write 503 twice; the loader reads again in place and
// applies the change on its first delivery, so a short outage of reads
// costs none of the command's three deliveries (the drill under
// fusion.5xx=0.1 dead-lettered Epic's specialty changes that way).
func TestReadAnswered503IsTriedAgainInPlace(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	hire := `{"PersonNumber":"P7001","names":[{"LastName":"DOE","FirstName":"JANE","LegislationCode":"US"}],
	 "workRelationships":[{"LegalEmployerName":"St Marys","WorkerType":"E","StartDate":"2026-03-01",
	  "assignments":[{"DepartmentName":"CARDIOLOGY","JobCode":"PHYS","assignmentsDFF":[{"npi":"1234567893","specialty":"Cardiology","providerType":"MD"}]}]}]}`
	req, err := http.NewRequest(http.MethodPost, e.url+fusion.HCMPath+"/workers", strings.NewReader(hire))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("sinew", "sinew")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("hire: %s", resp.Status)
	}
	if err := e.sim.SetFaults(fusionsim.Faults{HTTP: []fusionsim.HTTPFault{{Status: 503, Method: http.MethodGet, Path: "/workers", Count: 2, RetryAfter: fusionsim.Duration(100 * time.Millisecond)}}}); err != nil {
		t.Fatal(err)
	}
	key := "worker-sync:epic:ser-E7001:1"
	cmd := &sinewv1.WorkerChange{Envelope: &sinewv1.Envelope{EventId: bus.EventID(key), Flow: "worker-sync", SourceId: "E7001", IdempotencyKey: key},
		Origin: "epic", PersonNumber: "P7001", EpicProviderId: "E7001", Npi: "1234567893", Action: "update",
		Attributes: map[string]string{"specialty": "Oncology"}}
	if _, err := e.pub.Publish(ctx, streams.FusionCmdSubject("worker-sync", "worker"), key, cmd); err != nil {
		t.Fatal(err)
	}
	_, got := e.resultWhere(t, "result.worker-sync.*", func(r *sinewv1.LoadResult) bool { return r.GetEnvelope().GetIdempotencyKey() == key })
	if got == nil || got.Outcome != "accepted" {
		t.Fatalf("result %v, want accepted", got)
	}
	if got.Attempts != 1 {
		t.Errorf("applied on delivery %d, want 1: a read's 503 used up a delivery", got.Attempts)
	}
	if hits := e.sim.Faults().HTTP[0].Hits; hits != 2 {
		t.Errorf("fusionsim injected %d faults, want 2", hits)
	}
	for _, w := range e.sim.Workers() {
		if w.PersonNumber == "P7001" {
			if n := len(w.Versions); n == 0 || w.Versions[n-1].Specialty != "Oncology" {
				t.Errorf("P7001's specialty: %+v", w.Versions)
			}
		}
	}
}
