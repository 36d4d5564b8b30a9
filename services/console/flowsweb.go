package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/flowstate"
)

// drainWatch follows one flow's backlog after the console changed its
// state: the drain's progress and the backlog over time.
type drainWatch struct {
	state   string
	drain   *flowstate.Drain
	samples []sample
}

// sample is the backlog at one moment.
type sample struct {
	At   time.Time `json:"at"`
	Left uint64    `json:"left"`
}

// maxSamples bounds a watch's history (at a poll a second, ten minutes).
const maxSamples = 600

func (w *web) flowsPage(rw http.ResponseWriter, r *http.Request, s *session) {
	data := map[string]any{"Watch": r.FormValue("watch"), "Msg": r.FormValue("msg")}
	if w.inv == nil {
		data["Error"] = "no flows.yaml loaded (console flows_file): flow activation is off"
		w.render(rw, "flows", s, data)
		return
	}
	rows, err := w.figures(r.Context())
	if err != nil {
		data["Error"] = err.Error()
	}
	data["Flows"] = rows
	data["States"] = []string{flows.Staged, flows.Active, flows.Paused}
	w.render(rw, "flows", s, data)
}

// flowsState stages, activates or pauses a flow, with a reason, the same
// way `sinew flows activate|pause|stage` does (flowstate.Change: audited
// first), then shows the flow's drain.
func (w *web) flowsState(rw http.ResponseWriter, r *http.Request, s *session) {
	if w.inv == nil {
		http.Error(rw, "no flows.yaml loaded: flow activation is off", http.StatusServiceUnavailable)
		return
	}
	id, state, reason := r.FormValue("flow"), r.FormValue("state"), strings.TrimSpace(r.FormValue("reason"))
	f, ok := w.inv.Get(id)
	if !ok {
		http.Error(rw, "flow: not in flows.yaml", http.StatusBadRequest)
		return
	}
	back := func(msg string) {
		http.Redirect(rw, r, "/flows?watch="+url.QueryEscape(f.ID)+"&msg="+url.QueryEscape(msg), http.StatusSeeOther)
	}
	switch state {
	case flows.Staged, flows.Active, flows.Paused:
	default:
		http.Error(rw, "state: staged, active or paused", http.StatusBadRequest)
		return
	}
	if reason == "" {
		back(flowstate.Verb(state) + ": a reason is required (it goes to the audit trail)")
		return
	}
	ctx := r.Context()
	st, err := flowstate.Open(ctx, w.js)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	was, err := st.Change(ctx, w.audit, f, state, "console:"+s.user.Name, reason)
	if err != nil {
		back(flowstate.Verb(state) + " failed: " + err.Error())
		return
	}
	w.figs.mu.Lock()
	w.figs.at = time.Time{} // the page this leads to shows the new state
	w.figs.mu.Unlock()
	b, _ := flowstate.BacklogOf(ctx, w.js, flowstate.Inputs(f))
	now := time.Now()
	w.mu.Lock()
	w.drains[f.ID] = &drainWatch{state: state, drain: flowstate.NewDrain(b, now), samples: []sample{{now, b.Left()}}}
	w.mu.Unlock()
	back(f.ID + ": " + was + " -> " + state)
}

// progress is the answer of /api/flows/progress.
type progress struct {
	Flow  string `json:"flow"`
	State string `json:"state"`
	flowstate.Progress
	Percent int      `json:"percent"`
	Samples []sample `json:"samples"`
}

// apiProgress is a flow's drain now: the progress since the console last
// changed its state (or since this first look), and its backlog over time.
func (w *web) apiProgress(rw http.ResponseWriter, r *http.Request, _ *session) {
	if w.inv == nil {
		http.Error(rw, "no flows.yaml loaded", http.StatusServiceUnavailable)
		return
	}
	f, ok := w.inv.Get(r.FormValue("flow"))
	if !ok {
		http.Error(rw, "flow: not in flows.yaml", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	b, err := flowstate.BacklogOf(ctx, w.js, flowstate.Inputs(f))
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	state := f.State
	if st, err := flowstate.Open(ctx, w.js); err == nil {
		if rec, ok, err := st.Get(ctx, f.ID); err == nil && ok {
			state = rec.State
		}
	}
	now := time.Now()
	w.mu.Lock()
	dw := w.drains[f.ID]
	if dw == nil {
		dw = &drainWatch{state: state, drain: flowstate.NewDrain(b, now)}
		w.drains[f.ID] = dw
	}
	dw.samples = append(dw.samples, sample{now, b.Left()})
	if len(dw.samples) > maxSamples {
		dw.samples = dw.samples[len(dw.samples)-maxSamples:]
	}
	p := progress{Flow: f.ID, State: state, Progress: dw.drain.Step(b, now), Samples: append([]sample(nil), dw.samples...)}
	w.mu.Unlock()
	p.Percent = 100
	if p.Total > 0 {
		p.Percent = int(p.Done * 100 / p.Total)
	}
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(p)
}
