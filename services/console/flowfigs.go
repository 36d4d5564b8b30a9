package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/flowstate"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/streams"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// The per-flow figures of the flows dashboard and the cutover page, read
// from the server on demand (GET /api/flows, polled by the pages) and
// shared by every viewer for figuresTTL, so that many open pages cost the
// server what one does.

const (
	// figuresTTL is how long one reading of every flow's figures serves.
	figuresTTL = time.Second
	// rateWindow is the span the received and processed rates average over.
	rateWindow = 10 * time.Second
)

// flowFigures is one flow's row. Cells are the texts the pages show, by
// the data-k of their cell: the server renders them into the page and
// the script copies them in when they change, so both say the same.
type flowFigures struct {
	Flow    string `json:"flow"`
	Pattern string `json:"pattern"`
	State   string `json:"state"`
	// Held: the flow's consumers exist, so the backlog figures are real.
	Held      bool     `json:"held"`
	Backlog   uint64   `json:"backlog"` // not yet delivered
	InFlight  int      `json:"in_flight"`
	OldestSec float64  `json:"oldest_sec"`
	Received  *float64 `json:"received_per_sec"`  // input arriving; nil until two readings
	Processed *float64 `json:"processed_per_sec"` // input finished by its first consumer
	DLQ       int      `json:"dlq_waiting"`       // dead letters of the flow waiting for a person
	Verdict   string   `json:"verdict"`           // its last reconciliation verdict ("" when none)
	// VerdictScope is the batch or day that verdict is for.
	VerdictScope string            `json:"verdict_scope"`
	Cells        map[string]string `json:"cells"`
}

// count is a flow's input at one reading: arrived in all, and finished.
type count struct {
	at            time.Time
	arrived, done uint64
}

// figureCache is the last reading and what the rates and the DLQ count
// carry from one reading to the next.
type figureCache struct {
	mu      sync.Mutex // one reading at a time; the others wait and share it
	at      time.Time
	rows    []flowFigures
	counts  map[string][]count  // flow → readings within rateWindow
	filters map[string][]string // consumer → its subject filters (fixed)
	dlq     dlqWaiting
}

// figures returns every flow's figures, read at most figuresTTL ago.
func (w *web) figures(ctx context.Context) ([]flowFigures, error) {
	c := &w.figs
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.rows != nil && now.Sub(c.at) < figuresTTL {
		return c.rows, nil
	}
	if c.counts == nil {
		c.counts, c.filters = map[string][]count{}, map[string][]string{}
	}
	// The reading serves every viewer: one who leaves does not cut it short.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var errs []error
	var inv []flows.Flow
	var states map[string]flowstate.Record
	if w.inv != nil {
		inv = w.inv.Flows
		st, err := flowstate.Open(ctx, w.js)
		if err == nil {
			states, err = st.States(ctx, w.inv)
		}
		if err != nil {
			errs = append(errs, err)
		}
	} else {
		inv, states = w.stateOnly(ctx)
	}
	waiting, err := c.dlq.refresh(ctx, w.js)
	if err != nil {
		errs = append(errs, err)
	}
	rows := make([]flowFigures, 0, len(inv))
	for i := range inv {
		f := &inv[i]
		rec, ok := states[f.ID]
		if !ok {
			rec = flowstate.Record{State: f.State}
		}
		row := flowFigures{Flow: f.ID, Pattern: f.Pattern, State: rec.State, DLQ: waiting[f.ID]}
		if w.inv != nil {
			w.backlog(ctx, f, &row, now)
		}
		row.Verdict, row.VerdictScope = w.lastVerdict(ctx, f.ID)
		row.Cells = cells(row, rec)
		rows = append(rows, row)
	}
	c.rows, c.at = rows, now
	return rows, errors.Join(errs...)
}

// backlog reads f's consumers into row: the backlog of them all, and the
// rates of its input (the consumers that take what arrives; the loader's
// alone for a flow that has no other).
func (w *web) backlog(ctx context.Context, f *flows.Flow, row *flowFigures, now time.Time) {
	ins := flowstate.Inputs(f)
	intake, rest := ins[:len(ins)-1], ins[len(ins)-1:]
	if len(intake) == 0 {
		intake, rest = ins, nil
	}
	in, err := flowstate.BacklogOf(ctx, w.js, intake)
	if err != nil {
		return // a consumer not provisioned: the row shows "-"
	}
	b := in
	if len(rest) > 0 {
		load, err := flowstate.BacklogOf(ctx, w.js, rest)
		if err != nil {
			return
		}
		b.Pending, b.InFlight, b.Oldest = b.Pending+load.Pending, b.InFlight+load.InFlight, max(b.Oldest, load.Oldest)
	}
	row.Held, row.Backlog, row.InFlight, row.OldestSec = true, b.Pending, b.InFlight, b.Oldest.Seconds()
	arrived, err := w.arrived(ctx, intake)
	if err != nil {
		return
	}
	var done uint64
	if left := in.Left(); arrived > left {
		done = arrived - left
	}
	c := &w.figs
	cs := append(c.counts[f.ID], count{now, arrived, done})
	for len(cs) > 1 && now.Sub(cs[0].at) > rateWindow {
		cs = cs[1:]
	}
	c.counts[f.ID] = cs
	first, last := cs[0], cs[len(cs)-1]
	if secs := last.at.Sub(first.at).Seconds(); secs >= 0.5 {
		per := func(a, b uint64) *float64 {
			r := 0.0
			if b > a { // a count that fell (messages aged out) is no negative rate
				r = float64(b-a) / secs
			}
			return &r
		}
		row.Received, row.Processed = per(first.arrived, last.arrived), per(first.done, last.done)
	}
}

// arrived is how many messages the inputs' streams hold under the
// inputs' filters: what arrived for the flow (the streams keep by limits,
// so only age makes it fall).
func (w *web) arrived(ctx context.Context, ins []flowstate.Input) (uint64, error) {
	var n uint64
	for _, in := range ins {
		filters, ok := w.figs.filters[in.Consumer]
		if !ok {
			cons, err := w.js.Consumer(ctx, in.Stream, in.Consumer)
			if err != nil {
				return 0, fmt.Errorf("console: consumer %s: %w", in.Consumer, err)
			}
			cfg := cons.CachedInfo().Config
			filters = cfg.FilterSubjects
			if cfg.FilterSubject != "" {
				filters = append(filters, cfg.FilterSubject)
			}
			w.figs.filters[in.Consumer] = filters
		}
		s, err := w.js.Stream(ctx, in.Stream)
		if err != nil {
			return 0, fmt.Errorf("console: stream %s: %w", in.Stream, err)
		}
		if len(filters) == 0 {
			n += s.CachedInfo().State.Msgs
			continue
		}
		for _, fl := range filters {
			info, err := s.Info(ctx, jetstream.WithSubjectFilter(fl))
			if err != nil {
				return 0, fmt.Errorf("console: stream %s: %w", in.Stream, err)
			}
			for _, k := range info.State.Subjects {
				n += k
			}
		}
	}
	return n, nil
}

// lastVerdict is the verdict of flow's latest reconciliation summary row
// on RECON, and the batch or day it was for.
func (w *web) lastVerdict(ctx context.Context, flow string) (verdict, scope string) {
	s, err := w.js.Stream(ctx, streams.Recon)
	if err != nil {
		return "", ""
	}
	m, err := s.GetLastMsgForSubject(ctx, recon.Subject(flow, recon.SummaryTier))
	if err != nil {
		return "", ""
	}
	var row sinewv1.ReconRow
	if proto.Unmarshal(m.Data, &row) != nil {
		return "", ""
	}
	return row.GetVerdict(), row.GetScope()
}

// stateOnly is the flows with a flow_state record, when no flows.yaml is
// loaded: their states and nothing else.
func (w *web) stateOnly(ctx context.Context) ([]flows.Flow, map[string]flowstate.Record) {
	var fs []flows.Flow
	states := map[string]flowstate.Record{}
	kv, err := w.js.KeyValue(ctx, streams.KVFlowState)
	if err != nil {
		return nil, nil
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, nil
	}
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var rec flowstate.Record
		_ = json.Unmarshal(e.Value(), &rec)
		fs, states[k] = append(fs, flows.Flow{ID: k}), rec
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].ID < fs[j].ID })
	return fs, states
}

// cells are the texts of row's cells.
func cells(row flowFigures, rec flowstate.Record) map[string]string {
	rate := func(r *float64) string {
		if r == nil || !row.Held {
			return "-"
		}
		return strconv.FormatFloat(*r, 'f', 1, 64)
	}
	c := map[string]string{"state": row.State, "by": rec.By, "reason": rec.Reason,
		"received": rate(row.Received), "processed": rate(row.Processed),
		"backlog": "-", "in_flight": "-", "oldest": "-", "dlq": strconv.Itoa(row.DLQ), "verdict": "-"}
	if row.Held {
		c["backlog"], c["in_flight"] = strconv.FormatUint(row.Backlog, 10), strconv.Itoa(row.InFlight)
		if row.Backlog+uint64(row.InFlight) > 0 {
			c["oldest"] = (time.Duration(row.OldestSec * float64(time.Second))).Round(time.Second).String()
		}
	}
	if row.Verdict != "" {
		c["verdict"] = row.Verdict + " (" + row.VerdictScope + ")"
	}
	return c
}

// apiFlows is every flow's figures as JSON: what the pages poll.
func (w *web) apiFlows(rw http.ResponseWriter, r *http.Request, _ *session) {
	rows, err := w.figures(r.Context())
	out := map[string]any{"flows": rows}
	if err != nil {
		out["error"] = err.Error()
	}
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(out)
}

// dlqWaiting counts the dead letters waiting for a person by flow as the
// DLQ grows: each reading reads only the letters stored since the last
// and checks, of the earlier ones, only those still waiting (a handled
// letter never waits again). The DLQ keeps every letter for two years;
// a count that read them all at each poll would grow with it.
type dlqWaiting struct {
	through uint64            // the DLQ sequence read up to
	waiting map[uint64]string // seq → flow of the letters not yet handled
}

func (d *dlqWaiting) refresh(ctx context.Context, js jetstream.JetStream) (map[string]int, error) {
	st, err := dlq.Open(ctx, js, nil)
	if err != nil {
		return nil, err
	}
	if d.waiting == nil {
		d.waiting = map[uint64]string{}
	}
	for seq := range d.waiting {
		h, err := st.Handled(ctx, seq)
		if err != nil {
			return nil, fmt.Errorf("console: dlq: %w", err)
		}
		if h {
			delete(d.waiting, seq)
		}
	}
	cut, err := streams.ScanRange(ctx, js, streams.DLQ, streams.ScanOptions{StartSeq: d.through + 1}, func(m jetstream.Msg) error {
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		seq := meta.Sequence.Stream
		var l sinewv1.DeadLetter
		if err := proto.Unmarshal(m.Data(), &l); err != nil {
			return fmt.Errorf("seq %d: %w", seq, err)
		}
		h, err := st.Handled(ctx, seq)
		if err != nil {
			return err
		}
		if !h {
			d.waiting[seq] = l.GetFlow()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("console: dlq: %w", err)
	}
	d.through = max(d.through, cut)
	out := map[string]int{}
	for _, flow := range d.waiting {
		out[flow]++
	}
	return out, nil
}
