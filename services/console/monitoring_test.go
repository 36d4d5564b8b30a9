package console

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/sinewhq/sinew/pkg/fusion"
)

// TestDashboardAndAlertsNameSeriesThatExist: every sinew_* series the
// Grafana dashboard and the alert rules in deploy/monitoring query is one
// Sinew exports (the console's gauges here; the bus's and MLLP's by name).
func TestDashboardAndAlertsNameSeriesThatExist(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := newGauges(reg)
	g.pending.WithLabelValues("s", "c", "f")
	g.ackPending.WithLabelValues("s", "c", "f")
	g.oldest.WithLabelValues("s", "c", "f")
	g.messages.WithLabelValues("s")
	g.triage.WithLabelValues("f", "k", "s")
	known := map[string]bool{
		// pkg/bus and pkg/mllp
		"sinew_bus_deliveries_total": true, "sinew_bus_delivery_seconds": true, "sinew_bus_inflight": true,
		"sinew_bus_dead_letters_total": true, "sinew_mllp_connections_total": true, "sinew_mllp_open_connections": true,
		"sinew_flow_messages_total": true,
		// pkg/fusion
		fusion.MetricRequestSeconds: true, fusion.MetricResponses: true,
		// services/ingest, loader (MetricESSJobSeconds) and reconciler
		// (Metric*): other modules, so by name here; the e2e test
		// TestOneTraceFromMLLPToFusionAndSeriesPerFlow checks every one of
		// them on a running system's /metrics.
		"sinew_ingest_hl7_messages_total": true, "sinew_fusion_ess_job_seconds": true,
		"sinew_recon_verdicts_total": true, "sinew_recon_rows_total": true, "sinew_recon_variance": true,
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		known[mf.GetName()] = true
	}
	var rules struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	b, err := os.ReadFile("../../deploy/monitoring/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, gr := range rules.Groups {
		for _, r := range gr.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string }
		}
	}
	b, err = os.ReadFile("../../deploy/monitoring/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	if len(exprs) < 10 {
		t.Fatalf("only %d expressions", len(exprs))
	}
	series := regexp.MustCompile(`sinew_[a-z0-9_]+`)
	for _, e := range exprs {
		for _, name := range series.FindAllString(e, -1) {
			base := strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count")
			if !known[name] && !known[base] {
				t.Errorf("%q queries %s, which Sinew does not export", e, name)
			}
		}
	}
}
