package bus_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/telemetry"
)

// TestFlowSeriesCountReceivedProcessedRetriedDeadLettered: a message that
// fails once then succeeds, and one that always fails, counted per flow
// (the envelope's) and stage, under the service label sinew up adds; no
// label value comes from the message.
func TestFlowSeriesCountReceivedProcessedRetriedDeadLettered(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	b, err := bus.New(e.nc, bus.Config{}, bus.Options{Service: "loader", Logger: zerolog.Nop(),
		Metrics: prometheus.WrapRegistererWith(prometheus.Labels{"service": "loader"}, reg)})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	e.run(t, b, bus.Proto(func(ctx context.Context, d *bus.Delivery, ev *sinewv1.InventoryTransaction) error {
		calls.Add(1)
		if ev.ItemNumber == "ITEM-bad" || d.NumDelivered == 1 {
			return errors.New("fusion: 503")
		}
		return nil
	}))
	e.publish(t, "good")
	e.publish(t, "bad")
	want := map[string]float64{"received": 2, "processed": 1, "retried": 3, "dead_lettered": 1}
	waitFor(t, "every stage counted", 15*time.Second, func() bool {
		for stage, n := range want {
			if stageTotal(reg, stage) != n {
				return false
			}
		}
		return true
	})
	var out strings.Builder
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "sinew_flow_messages_total" {
			for _, m := range mf.GetMetric() {
				out.WriteString(m.String() + "\n")
			}
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.Contains(line, `value:"willow-inventory"`) || !strings.Contains(line, `value:"loader"`) {
			t.Errorf("series %s: want flow willow-inventory and service loader", line)
		}
		if strings.Contains(line, "ITEM-") || strings.Contains(line, "epic.willow") {
			t.Errorf("series %s carries a value from the message", line)
		}
	}
}

// stageTotal sums sinew_flow_messages_total over the series of stage.
func stageTotal(reg prometheus.Gatherer, stage string) float64 {
	mfs, _ := reg.Gather()
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != "sinew_flow_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" && l.GetValue() == stage {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

func TestFlowOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		subject, envFlow, want string
	}{
		{"fusion.cmd.resolute-gl.journal", "", "resolute-gl"},
		{"epic.cmd.worker-sync.provider", "", "worker-sync"},
		{"batch.in.resolute-gl", "", "resolute-gl"},
		{"hl7.in.STMARYS.RDS.O13.willow-inventory", "", "willow-inventory"},
		{"hl7.in.STMARYS.RDS.O13", "", "none"},
		{"result.optime-materials.accepted", "", "optime-materials"},
		{"fhir.in.Practitioner", "worker-sync", "worker-sync"},
		{"fhir.in.Practitioner", "", "none"},
		{"fusion.cmd.x.y", "DOE^JANE 1970", "other"},
		{"x", "", "none"},
	}
	for _, tt := range tests {
		d := &bus.Delivery{Subject: tt.subject}
		if tt.envFlow != "" {
			d.Envelope = &sinewv1.Envelope{Flow: tt.envFlow}
		}
		if got := bus.FlowOf(d); got != tt.want {
			t.Errorf("FlowOf(%s, %q) = %q, want %q", tt.subject, tt.envFlow, got, tt.want)
		}
	}
}

// FuzzFlowOf: whatever the subject, the label is a safe name.
func FuzzFlowOf(f *testing.F) {
	for _, s := range []string{"fusion.cmd.resolute-gl.journal", "hl7.in.A.B.C.willow-inventory", "hl7.in.A.B", "result..x", "batch.in.", "", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		got := bus.FlowOf(&bus.Delivery{Subject: subject})
		if got != "none" && got != "other" && !strings.Contains(subject, got) {
			t.Fatalf("FlowOf(%q) = %q, not a token of the subject", subject, got)
		}
		if telemetry.SafeLabel(got) != got {
			t.Fatalf("FlowOf(%q) = %q, not a safe label", subject, got)
		}
	})
}
