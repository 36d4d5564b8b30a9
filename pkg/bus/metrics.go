package bus

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sinewhq/sinew/pkg/telemetry"
)

type metrics struct {
	handled  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight *prometheus.GaugeVec
	dead     *prometheus.CounterVec
	flow     *prometheus.CounterVec

	consumers sync.Map // consumer name -> *consumerMetrics
	flows     sync.Map // flow + "\x00" + stage -> prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	var m metrics
	var err error
	if m.handled, err = telemetry.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sinew_bus_deliveries_total", Help: "Deliveries handled, by consumer and outcome.",
	}, []string{"consumer", "outcome"})); err != nil {
		return nil, err
	}
	if m.duration, err = telemetry.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sinew_bus_delivery_seconds", Help: "Time from delivery to settlement, by consumer.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
	}, []string{"consumer"})); err != nil {
		return nil, err
	}
	if m.inflight, err = telemetry.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sinew_bus_inflight", Help: "Deliveries being handled, by consumer.",
	}, []string{"consumer"})); err != nil {
		return nil, err
	}
	if m.dead, err = telemetry.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sinew_bus_dead_letters_total", Help: "Messages dead-lettered by the handler loop, by consumer and kind.",
	}, []string{"consumer", "kind"})); err != nil {
		return nil, err
	}
	if m.flow, err = telemetry.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sinew_flow_messages_total",
		Help: "Messages of each flow through this service's consumers, by stage: received (first delivery), processed, retried, dead_lettered.",
	}, []string{"flow", "stage"})); err != nil {
		return nil, err
	}
	return &m, nil
}

// Stages of sinew_flow_messages_total.
const (
	StageReceived     = "received"
	StageProcessed    = "processed"
	StageRetried      = "retried"
	StageDeadLettered = "dead_lettered"
)

// stageOf is the flow stage an outcome counts as ("" for none).
func stageOf(outcome string) string {
	switch outcome {
	case OutcomeOK:
		return StageProcessed
	case OutcomeRetry:
		return StageRetried
	case OutcomeDead:
		return StageDeadLettered
	}
	return ""
}

// flowToken is which dot-separated token of a subject names its flow, by
// the subject's first two tokens (pkg/streams' subject builders).
func flowToken(subject string) int {
	switch {
	case strings.HasPrefix(subject, "result."), strings.HasPrefix(subject, "recon."), strings.HasPrefix(subject, "audit."):
		return 1
	case strings.HasPrefix(subject, "fusion.cmd."), strings.HasPrefix(subject, "epic.cmd."), strings.HasPrefix(subject, "batch.in."):
		return 2
	case strings.HasPrefix(subject, "hl7.in."):
		return 5
	}
	return -1
}

// FlowOf is the flow a delivery belongs to, as a metric label: the decoded
// envelope's flow, else the flow token of its subject, else "none". The
// value passes telemetry.SafeLabel: never a value from a message.
func FlowOf(d *Delivery) string {
	if d.Envelope != nil && d.Envelope.Flow != "" {
		return telemetry.SafeLabel(d.Envelope.Flow)
	}
	i := flowToken(d.Subject)
	if i < 0 {
		return "none"
	}
	rest := d.Subject
	for ; i > 0; i-- {
		_, after, ok := strings.Cut(rest, ".")
		if !ok {
			return "none"
		}
		rest = after
	}
	tok, _, _ := strings.Cut(rest, ".")
	return telemetry.SafeLabel(tok)
}

// flowCounter is the counter of flow and stage, looked up once.
func (m *metrics) flowCounter(flow, stage string) prometheus.Counter {
	key := flow + "\x00" + stage
	if v, ok := m.flows.Load(key); ok {
		return v.(prometheus.Counter)
	}
	v, _ := m.flows.LoadOrStore(key, m.flow.WithLabelValues(flow, stage))
	return v.(prometheus.Counter)
}

// consumerMetrics are one consumer's metric children, looked up once.
type consumerMetrics struct {
	inflight prometheus.Gauge
	duration prometheus.Observer
	outcomes sync.Map // outcome -> prometheus.Counter
	vec      *prometheus.CounterVec
	name     string
}

func (c *consumerMetrics) handled(outcome string) prometheus.Counter {
	if v, ok := c.outcomes.Load(outcome); ok {
		return v.(prometheus.Counter)
	}
	v, _ := c.outcomes.LoadOrStore(outcome, c.vec.WithLabelValues(c.name, outcome))
	return v.(prometheus.Counter)
}

func (m *metrics) forConsumer(name string) *consumerMetrics {
	if v, ok := m.consumers.Load(name); ok {
		return v.(*consumerMetrics)
	}
	v, _ := m.consumers.LoadOrStore(name, &consumerMetrics{
		inflight: m.inflight.WithLabelValues(name),
		duration: m.duration.WithLabelValues(name),
		vec:      m.handled,
		name:     name,
	})
	return v.(*consumerMetrics)
}
