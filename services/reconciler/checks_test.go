package reconciler_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/streams"
)

// TestFormularyCheckCleanThenDrift: the formulary-check flow's own
// reconciliation (registry Check) on a real NATS: Willow's formulary
// items (item-master commands on FUSION_CMD) against Epic's Medications
// (FHIR_IN). Equal on code and strength the day passes; a new Medication
// version with another strength is a variance naming the NDC and both
// strengths, with the flow's tolerance.
func TestFormularyCheckCleanThenDrift(t *testing.T) {
	e := start(t, tuning{noLoader: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const flow = "formulary-check"
	item := func(ndc, strength string) {
		key := "willow-inventory:test:" + ndc
		it := &sinewv1.ItemUpsert{Envelope: &sinewv1.Envelope{EventId: bus.EventID(key), Flow: "willow-inventory", IdempotencyKey: key},
			ItemNumber: "RX-" + ndc, Action: "update", Attributes: map[string]string{"epic_code": ndc, "epic_source": "ndc", "strength": strength}}
		if _, err := e.pub.Publish(ctx, streams.FusionCmdSubject("willow-inventory", "item"), key, it); err != nil {
			t.Fatal(err)
		}
	}
	med := func(id, version, ndc, value, unit string) {
		key := fmt.Sprintf("fhir:Medication/%s/_history/%s", id, version)
		ev := &sinewv1.FhirResourceReceived{Envelope: &sinewv1.Envelope{EventId: bus.EventID(key), Flow: flow, IdempotencyKey: key},
			ResourceType: "Medication", ResourceId: id, VersionId: version,
			Json: fmt.Appendf(nil, `{"resourceType":"Medication","id":"%s","meta":{"versionId":"%s"},"code":{"coding":[{"system":"http://hl7.org/fhir/sid/ndc","code":"%s"}]},"ingredient":[{"strength":{"numerator":{"value":%s,"unit":"%s"},"denominator":{"value":1,"unit":"mL"}}}]}`, id, version, ndc, value, unit)}
		if _, err := e.pub.Publish(ctx, streams.FHIRSubject("Medication"), key, ev); err != nil {
			t.Fatal(err)
		}
	}
	item("0409-4888-10", "5000 [iU]/mL")
	item("0143-9634-01", "2 mg/mL")
	med("m1", "1", "00409488810", "5000", "[iU]")
	med("m2", "1", "0143-9634-01", "2", "mg")
	today := time.Now().UTC().Truncate(24 * time.Hour)
	scope := today.Format(time.DateOnly)
	summary := func(since time.Time) (*sinewv1.ReconRow, []string) {
		t.Helper()
		rows := e.reconRows(t, flow, scope, since)
		var sum *sinewv1.ReconRow
		var lines []*sinewv1.ReconRow
		for _, r := range rows {
			switch r.GetTier() {
			case recon.SummaryTier:
				sum = r // the summary, then the triage event's copy
			case recon.TierLines:
				lines = append(lines, r)
			}
		}
		if sum == nil {
			t.Fatalf("no summary among %d rows", len(rows))
		}
		return sum, variances(lines)
	}
	t0 := time.Now()
	if err := e.rc.ReconcileCheck(ctx, flow, today); err != nil {
		t.Fatal(err)
	}
	if sum, vs := summary(t0); sum.GetVerdict() != recon.VerdictPass || len(vs) != 0 {
		t.Fatalf("clean day: %s %v", sum.GetVerdict(), vs)
	}
	// Epic changes the heparin's strength: drift, not an update.
	med("m1", "2", "00409488810", "1000", "[iU]")
	t1 := time.Now()
	if err := e.rc.ReconcileCheck(ctx, flow, today); err != nil {
		t.Fatal(err)
	}
	sum, vs := summary(t1)
	if sum.GetVerdict() != recon.VerdictVariance || len(vs) != 1 {
		t.Fatalf("drift: %s %v", sum.GetVerdict(), vs)
	}
	if !strings.Contains(vs[0], "00409488810/strength") || !strings.Contains(vs[0], `"5000 [iU]/mL" in the formulary, "1000 [iU]/mL" in Epic`) || !strings.Contains(vs[0], "tolerance") {
		t.Errorf("variance %q", vs[0])
	}
}
