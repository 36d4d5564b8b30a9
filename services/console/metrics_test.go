package console

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/triage"
)

func TestGaugesShowConsumerLagAndOldestUnprocessedAge(t *testing.T) {
	_, nc, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx := context.Background()
	for i := range 3 {
		m := nats.NewMsg(streams.HL7Subject("W", "RDS", "O13"))
		m.Data = []byte("x")
		m.Header.Set(nats.MsgIdHdr, "m"+string(rune('a'+i)))
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	_ = nc
	// The server counts a consumer's pending messages a moment after the publish.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := js.Consumer(ctx, streams.HL7In, streams.TransformHL7); err == nil && c.CachedInfo().NumPending == 3 {
			break
		}
	}
	st, _ := triage.Open(ctx, js, triage.Config{Audit: audit.NewWriter(js, "console@test")})
	if _, _, err := st.Raise(ctx, "t", triage.Item{Kind: triage.KindVariance, Flow: "resolute-gl", Source: "s"}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	g := newGauges(reg)
	g.update(ctx, js, st, time.Now().Add(time.Minute))
	if v := value(g.pending.WithLabelValues(streams.HL7In, streams.TransformHL7, "none")); v != 3 {
		t.Errorf("pending %v, want 3", v)
	}
	if v := value(g.oldest.WithLabelValues(streams.HL7In, streams.TransformHL7, "none")); v < 59 {
		t.Errorf("oldest %v s, want about 60", v)
	}
	if v := value(g.triage.WithLabelValues("resolute-gl", "variance", "open")); v != 1 {
		t.Errorf("triage %v", v)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "sinew_") {
			t.Errorf("series %s", mf.GetName())
		}
	}
}

func value(g prometheus.Gauge) float64 {
	var m dto.Metric
	_ = g.Write(&m)
	return m.GetGauge().GetValue()
}
