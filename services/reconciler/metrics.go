package reconciler

import (
	"math"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/telemetry"
)

// Reconciliation series. Labels are the flow id, the tier (0 is a run's
// summary), the verdict and the unit's class (lines, amount, quantity):
// never a key, an account, an item or a currency read from the data.
const (
	MetricVerdicts = "sinew_recon_verdicts_total"
	MetricRows     = "sinew_recon_rows_total"
	MetricVariance = "sinew_recon_variance"
)

type metrics struct {
	verdicts *prometheus.CounterVec
	rows     *prometheus.CounterVec
	variance *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	var m metrics
	var err error
	if m.verdicts, err = telemetry.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricVerdicts, Help: "Reconciliation runs (a batch, a flow's day) by flow and final verdict.",
	}, []string{"flow", "verdict"})); err != nil {
		return nil, err
	}
	if m.rows, err = telemetry.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRows, Help: "Reconciliation rows published, by flow, tier and verdict.",
	}, []string{"flow", "tier", "verdict"})); err != nil {
		return nil, err
	}
	if m.variance, err = telemetry.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricVariance, Help: "Sum of absolute variances (target - source) of the flow's latest run, by tier and unit class (lines, amount, quantity); 0 when it reconciled.",
	}, []string{"flow", "tier", "unit"})); err != nil {
		return nil, err
	}
	return &m, nil
}

// unitClass is a row's unit as a label: its class, not the currency or
// unit of measure itself.
func unitClass(unit string) string {
	switch {
	case unit == recon.UnitLines:
		return "lines"
	case strings.HasPrefix(unit, recon.UnitQtyPrefix):
		return "quantity"
	}
	return "amount"
}

// observe counts one published run. Variances become floats here, for the
// gauge only: the rows on RECON keep their exact values.
func (m *metrics) observe(flow string, res *recon.Result) {
	if m == nil {
		return
	}
	flow = telemetry.SafeLabel(flow)
	type tierUnit struct{ tier, unit string }
	sums := map[tierUnit]float64{}
	counts := map[[2]string]float64{}
	for _, row := range res.Publishable() {
		tier := strconv.Itoa(row.Tier)
		counts[[2]string{tier, telemetry.SafeLabel(row.Verdict)}]++
		if row.Tier == recon.SummaryTier {
			continue
		}
		k := tierUnit{tier, unitClass(row.Unit)}
		v, _ := strconv.ParseFloat(row.FormatValue(row.Variance), 64)
		sums[k] += math.Abs(v)
	}
	for k, n := range counts {
		m.rows.WithLabelValues(flow, k[0], k[1]).Add(n)
	}
	// The latest run's variance replaces the last one's for every tier it
	// covers; a tier it reconciled clean shows 0.
	for _, tier := range []string{"1", "2", "3"} {
		for _, unit := range []string{"lines", "amount", "quantity"} {
			if v, ok := sums[tierUnit{tier, unit}]; ok {
				m.variance.WithLabelValues(flow, tier, unit).Set(v)
			} else if g, err := m.variance.GetMetricWithLabelValues(flow, tier, unit); err == nil {
				g.Set(0)
			}
		}
	}
	m.verdicts.WithLabelValues(flow, telemetry.SafeLabel(res.Summary.Verdict)).Inc()
}
