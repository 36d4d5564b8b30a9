package console

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/telemetry"
	"github.com/sinewhq/sinew/pkg/track"
	"github.com/sinewhq/sinew/pkg/triage"
)

// gauges are the backlog series the console exports: what no single
// service can see (each consumer's lag and oldest waiting message, stream
// depths, the triage queue). Labels are stream, consumer, flow, kind and
// state names: never a value from a message. A consumer's flow label is
// the flow whose own consumer it is ("none" for a shared one).
type gauges struct {
	pending, ackPending, oldest *prometheus.GaugeVec
	messages                    *prometheus.GaugeVec
	triage                      *prometheus.GaugeVec
	trackLag                    prometheus.Gauge
	// index is the console's tracking index, whose lag it reports (nil: none).
	index *track.Index
}

func newGauges(reg prometheus.Registerer) *gauges {
	g := &gauges{
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sinew_consumer_pending_messages",
			Help: "messages of the consumer's filter not yet delivered (consumer lag)"}, []string{"stream", "consumer", "flow"}),
		ackPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sinew_consumer_ack_pending_messages",
			Help: "messages delivered and not yet acknowledged"}, []string{"stream", "consumer", "flow"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sinew_consumer_oldest_unprocessed_seconds",
			Help: "age of the oldest message the consumer has not acknowledged (0: none)"}, []string{"stream", "consumer", "flow"}),
		messages: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sinew_stream_messages",
			Help: "messages in the stream (DLQ: dead letters kept)"}, []string{"stream"}),
		triage: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sinew_triage_items",
			Help: "triage items by flow, kind and state"}, []string{"flow", "kind", "state"}),
		trackLag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sinew_track_index_lag_records",
			Help: "audit records this console's tracking index has yet to read (AUDIT's last sequence minus the index's watermark)"}),
	}
	for _, c := range []prometheus.Collector{g.pending, g.ackPending, g.oldest, g.messages, g.triage, g.trackLag} {
		if reg != nil {
			_ = reg.Register(c)
		}
	}
	return g
}

// watched is a durable consumer to watch and the flow it belongs to.
type watched struct {
	streams.Consumer
	flow string // "none": shared by every flow
}

// consumers are the durable consumers to watch: the topology's and each
// flow's own (flows from flow_state): HL7, batch and loader.
func consumers(ctx context.Context, js jetstream.JetStream) []watched {
	var cs []watched
	for _, c := range streams.New(streams.DefaultOptions()).Consumers {
		cs = append(cs, watched{c, "none"})
	}
	kv, err := js.KeyValue(ctx, streams.KVFlowState)
	if err != nil {
		return cs
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return cs
	}
	for f := range keys.Keys() {
		flow := telemetry.SafeLabel(f)
		cs = append(cs, watched{streams.Consumer{Stream: streams.HL7In, Name: streams.TransformHL7Flow(f), Filter: []string{streams.HL7FlowFilter(f)}}, flow},
			watched{streams.Consumer{Stream: streams.BatchIn, Name: streams.TransformBatchFlow(f), Filter: []string{streams.BatchSubject(f)}}, flow},
			watched{streams.Consumer{Stream: streams.FusionCmd, Name: streams.LoaderFusionFlow(f), Filter: []string{streams.FusionCmdFlowFilter(f)}}, flow})
	}
	return cs
}

// update reads the server's state into the gauges once.
func (g *gauges) update(ctx context.Context, js jetstream.JetStream, st *triage.Store, now time.Time) {
	for _, name := range []string{streams.HL7In, streams.FHIRIn, streams.BatchIn, streams.FusionCmd, streams.EpicCmd, streams.Results,
		streams.Recon, streams.Audit, streams.DLQ} {
		if s, err := js.Stream(ctx, name); err == nil {
			g.messages.WithLabelValues(name).Set(float64(s.CachedInfo().State.Msgs))
		}
	}
	if g.index != nil {
		if st, err := track.StatusOf(ctx, js, g.index); err == nil {
			g.trackLag.Set(float64(st.Lag()))
		}
	}
	for _, c := range consumers(ctx, js) {
		cons, err := js.Consumer(ctx, c.Stream, c.Name)
		if err != nil {
			continue // a flow of another kind, or not provisioned
		}
		info := cons.CachedInfo()
		g.pending.WithLabelValues(c.Stream, c.Name, c.flow).Set(float64(info.NumPending))
		g.ackPending.WithLabelValues(c.Stream, c.Name, c.flow).Set(float64(info.NumAckPending))
		age := 0.0
		if info.NumPending+uint64(info.NumAckPending) > 0 {
			if s, err := js.Stream(ctx, c.Stream); err == nil {
				var opts []jetstream.GetMsgOpt
				if len(c.Filter) > 0 {
					opts = append(opts, jetstream.WithGetMsgSubject(c.Filter[0]))
				}
				if m, err := s.GetMsg(ctx, info.AckFloor.Stream+1, opts...); err == nil {
					age = max(0, now.Sub(m.Time).Seconds())
				}
			}
		}
		g.oldest.WithLabelValues(c.Stream, c.Name, c.flow).Set(age)
	}
	if items, err := st.List(ctx, triage.Filter{}); err == nil {
		g.triage.Reset()
		for _, it := range items {
			g.triage.WithLabelValues(it.Flow, it.Kind, it.State).Inc()
		}
	}
}

// run updates the gauges every interval until ctx ends.
func (g *gauges) run(ctx context.Context, js jetstream.JetStream, st *triage.Store, every time.Duration) error {
	for {
		g.update(ctx, js, st, time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}
