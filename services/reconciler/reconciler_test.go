package reconciler_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/batchstate"
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/fbdi"
	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/fusionsim"
	"github.com/sinewhq/sinew/services/loader"
	"github.com/sinewhq/sinew/services/reconciler"
)

// env is a pipeline's back half on a real embedded NATS: the loader and
// the reconciler in-process against fusionsim over HTTP.
type env struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	pub *bus.Bus
	sim *fusionsim.Server
	url string
	rc  *reconciler.Service
	// reg holds every bus's series, each under its service label.
	reg *prometheus.Registry
	// maxAnswer is the largest journalBatches answer fusionsim sent.
	maxAnswer       atomic.Int64
	startReconciler func()
}

type tuning struct {
	sim        func(*fusionsim.SimConfig)
	reconciler func(*reconciler.Config)
	noLoader   bool
	// noReconciler leaves the reconciler to env.startReconciler.
	noReconciler bool
}

func start(t testing.TB, tu tuning) *env {
	t.Helper()
	opts := streams.DefaultOptions()
	opts.RetryBase, opts.LoadRetryBase = 20*time.Millisecond, 20*time.Millisecond
	_, nc, js := natstest.StartWithTopology(t, opts)
	reg := prometheus.NewRegistry()
	newBus := func(name string) *bus.Bus {
		b, err := bus.New(nc, bus.Config{}, bus.Options{Service: name, Logger: zerolog.Nop(), AuditSecret: []byte("test"),
			Metrics: prometheus.WrapRegistererWith(prometheus.Labels{"service": name}, reg)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sc := fusionsim.DefaultSimConfig()
	sc.Step = 2 * time.Millisecond
	if tu.sim != nil {
		tu.sim(&sc)
	}
	sim, err := fusionsim.NewServer(sc)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{reg: reg}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: w}
		sim.Handler().ServeHTTP(cw, r)
		if strings.Contains(r.URL.Path, "/journalBatches") {
			for cur := e.maxAnswer.Load(); cw.n > cur && !e.maxAnswer.CompareAndSwap(cur, cw.n); cur = e.maxAnswer.Load() {
			}
		}
	})
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	t.Cleanup(sim.Close)
	if !tu.noLoader {
		lc := loader.DefaultConfig()
		lc.Topology = opts
		lc.FlowsFile = "../../flows.yaml"
		lc.Fusion.BaseURL = hs.URL
		lc.CallbackAddr = ""
		lc.PollInterval, lc.MaxPollInterval = 5*time.Millisecond, 50*time.Millisecond
		lc.ReadLag, lc.SettleTime = 100*time.Millisecond, 100*time.Millisecond
		ld, err := loader.New(lc, newBus("loader"))
		if err != nil {
			t.Fatal(err)
		}
		natstest.Run(t, ld)
	}
	e.nc, e.js, e.pub, e.sim, e.url = nc, js, newBus("transform"), sim, hs.URL
	e.startReconciler = func() {
		rcfg := reconciler.DefaultConfig()
		rcfg.Topology = opts
		rcfg.FlowsFile = "../../flows.yaml"
		rcfg.Fusion.BaseURL = hs.URL
		rcfg.HTTPAddr = ""
		rcfg.ReadLag, rcfg.PollInterval = 300*time.Millisecond, 20*time.Millisecond
		rcfg.InventoryEvery, rcfg.OnhandEvery = 0, 0 // the tests run them
		if tu.reconciler != nil {
			tu.reconciler(&rcfg)
		}
		rc, err := reconciler.New(rcfg, newBus("reconciler"))
		if err != nil {
			t.Fatal(err)
		}
		natstest.Run(t, rc)
		e.rc = rc
	}
	if !tu.noReconciler {
		e.startReconciler()
	}
	return e
}

// countingWriter counts an answer's bytes.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// glLine is one line of a test batch.
type glLine struct {
	journal  string
	group    int64
	segments string // "101-1000-11010-000-000"
	dr, cr   money.Amount
}

// glBatch stores the batch's GlInterface zip and publishes its journal-batch
// command, as transform does.
func (e *env) glBatch(t testing.TB, batch string, lines []glLine) {
	t.Helper()
	ctx := context.Background()
	var zb bytes.Buffer
	w, err := fbdi.NewWriter(&zb, fbdi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	var dr, cr money.Amount
	journals := map[int64]string{}
	var order []int64
	for i, gl := range lines {
		l := fbdi.Line{LedgerName: "US Primary Ledger", AccountingDate: day, DateCreated: day, Source: "Epic Resolute", Category: "Revenue",
			Currency: "USD", Segments: strings.Split(gl.segments, "-"), BatchName: batch, JournalName: gl.journal,
			Reference21: fmt.Sprintf("%s:L%06d", batch, i+1), GroupID: gl.group}
		if gl.dr != 0 {
			l.EnteredDR, l.HasDR = gl.dr, true
		} else {
			l.EnteredCR, l.HasCR = gl.cr, true
		}
		dr, cr = dr+gl.dr, cr+gl.cr
		if err := w.Write(&l); err != nil {
			t.Fatal(err)
		}
		if _, ok := journals[gl.group]; !ok {
			journals[gl.group] = gl.journal
			order = append(order, gl.group)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	store, err := e.js.ObjectStore(ctx, streams.ObjFBDI)
	if err != nil {
		t.Fatal(err)
	}
	key := batch + ".zip"
	if _, err := store.Put(ctx, jetstream.ObjectMeta{Name: key}, &zb); err != nil {
		t.Fatal(err)
	}
	cmd := &sinewv1.JournalBatch{
		Envelope: &sinewv1.Envelope{EventId: bus.EventID(batch), Flow: "resolute-gl", SourceId: batch, IdempotencyKey: "resolute-gl:" + batch,
			BusinessKeys: sinewv1.Keys(map[string]string{"sha256": strings.Repeat("ab", 32), "lines": fmt.Sprint(len(lines)),
				"debit": dr.String(), "credit": cr.String()})},
		BatchId: batch, Ledger: "US Primary Ledger", JeSource: "Epic Resolute", JeCategory: "Revenue", AccountingDate: "2026-01-15", ObjectKey: key,
	}
	for _, g := range order {
		cmd.Journals = append(cmd.Journals, &sinewv1.Journal{GroupId: g, Name: journals[g]})
	}
	if _, err := e.pub.Publish(ctx, streams.FusionCmdSubject("resolute-gl", "import"), "fbdi:"+batch, cmd); err != nil {
		t.Fatal(err)
	}
}

// balanced is n balanced lines in journal group g: debits to the AR
// account, credits to lab revenue.
func balanced(g int64, n int) []glLine {
	var out []glLine
	for i := range n {
		l := glLine{journal: fmt.Sprintf("J%d", g), group: g}
		if i%2 == 0 {
			l.segments, l.dr = "101-1000-11010-000-000", money.Amount(100+i)
		} else {
			l.segments, l.cr = "101-6010-40100-300-000", money.Amount(100+i-1)
		}
		out = append(out, l)
	}
	return out
}

// waitState waits until the batch's state satisfies ok.
func (e *env) waitState(t testing.TB, batch string, d time.Duration, ok func(*batchstate.State) bool) *batchstate.State {
	t.Helper()
	st, err := batchstate.Open(context.Background(), e.js)
	if err != nil {
		t.Fatal(err)
	}
	var s *batchstate.State
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if s, err = st.Get(context.Background(), "resolute-gl", batch); err == nil && ok(s) {
			return s
		}
	}
	t.Fatalf("batch %s: state %+v", batch, s)
	return nil
}

// summary returns the latest summary row RECON holds for flow's scope.
func (e *env) summary(t testing.TB, flow, scope string) *sinewv1.ReconRow {
	t.Helper()
	var last *sinewv1.ReconRow
	err := streams.Scan(context.Background(), e.js, streams.Recon, recon.SubjectFilter(flow), time.Time{}, func(m jetstream.Msg) error {
		var r sinewv1.ReconRow
		if proto.Unmarshal(m.Data(), &r) == nil && r.GetScope() == scope && r.GetKey() == recon.SummaryKey {
			last = &r
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return last
}

func TestReconcileGLBatch(t *testing.T) {
	tests := []struct {
		name    string
		tune    tuning
		lines   []glLine
		verdict string
		explain string
	}{
		{name: "two journals pass", lines: append(balanced(700001, 4), balanced(700002, 6)...), verdict: recon.VerdictPass,
			explain: "10 lines: 10 matched"},
		{name: "read back page by page", lines: append(balanced(700011, 30), balanced(700012, 8)...), verdict: recon.VerdictPass,
			explain: "38 lines: 38 matched",
			tune:    tuning{sim: func(c *fusionsim.SimConfig) { c.ExpandLimit = 2 }, reconciler: func(c *reconciler.Config) { c.Fusion.PageSize = 4 }}},
		{name: "a line Fusion rejects holds its journal", verdict: recon.VerdictRejected, explain: "1 rejected, 1 held",
			lines: append(balanced(700021, 4), glLine{journal: "J9", group: 700022, segments: "999-1000-11010-000-000", dr: 500},
				glLine{journal: "J9", group: 700022, segments: "101-6010-40100-300-000", cr: 500})},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, tc.tune)
			batch := fmt.Sprintf("HB-T%d", i)
			e.glBatch(t, batch, tc.lines)
			s := e.waitState(t, batch, 30*time.Second, func(s *batchstate.State) bool { return s.Step == batchstate.Reconciled })
			if s.Verdict != tc.verdict || !strings.Contains(s.Detail, tc.explain) {
				t.Errorf("state %s %q: want %s with %q", s.Verdict, s.Detail, tc.verdict, tc.explain)
			}
			if sum := e.summary(t, "resolute-gl", batch); sum == nil || sum.GetVerdict() != tc.verdict {
				t.Errorf("RECON summary %v, want %s", sum, tc.verdict)
			}
		})
	}
}

// TestReconciliationFailureIsRecorded: a read-back that keeps failing is
// counted in batch_state and, after the consumer's last delivery, marked
// dead-lettered (it used to leave the batch at "imported" unnoticed).
func TestReconciliationFailureIsRecorded(t *testing.T) {
	e := start(t, tuning{})
	if err := e.sim.SetFaults(fusionsim.Faults{HTTP: []fusionsim.HTTPFault{{Status: 503, Rate: 1, Path: "/journalBatches"}}}); err != nil {
		t.Fatal(err)
	}
	e.glBatch(t, "HB-FAIL", balanced(700031, 2))
	s := e.waitState(t, "HB-FAIL", 60*time.Second, func(s *batchstate.State) bool { return s.Recon != nil && s.Recon.DeadLettered })
	if s.Step == batchstate.Reconciled || s.Recon.Attempts != streams.MaxDeliver || !strings.Contains(s.Recon.LastError, "journalBatches") {
		t.Fatalf("state %s, recon %+v", s.Step, s.Recon)
	}
	p := batchstate.Review([]*batchstate.State{s}, batchstate.ReviewOptions{Now: time.Now()})
	if len(p) != 1 || p[0].Kind != batchstate.ProblemDeadLettered {
		t.Fatalf("review: %+v", p)
	}
}

// TestReadBackAnswersStayBounded is issue 9 item 2: Fusion's read-back of
// a batch came as one answer holding every line (138 MB for 500,000
// lines, over the client's 64 MiB cap). Read page by page, no answer
// grows with the batch: 6,000 lines, no answer over 256 KiB.
func TestReadBackAnswersStayBounded(t *testing.T) {
	e := start(t, tuning{})
	var lines []glLine
	for g := range int64(3) {
		lines = append(lines, balanced(700041+g, 2000)...)
	}
	e.glBatch(t, "HB-BIG", lines)
	s := e.waitState(t, "HB-BIG", 60*time.Second, func(s *batchstate.State) bool { return s.Step == batchstate.Reconciled })
	if s.Verdict != recon.VerdictPass || !strings.Contains(s.Detail, "6000 lines: 6000 matched") {
		t.Fatalf("%s: %s", s.Verdict, s.Detail)
	}
	if n := e.maxAnswer.Load(); n > 256<<10 {
		t.Errorf("largest journalBatches answer %d bytes: the read-back is not paged", n)
	}
}

// gatherText is reg's series in Prometheus' text format, sinew_* only.
func gatherText(t testing.TB, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "sinew_") {
			if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
				t.Fatal(err)
			}
		}
	}
	return b.String()
}
