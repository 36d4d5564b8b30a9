package console

import (
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/batchstate"
	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/recon"
)

// The reconciliation pages read what the reconciler stores, as `sinew
// recon report` and `sinew batches show` do: RECON's rows (recon.ReadBoard)
// and batch_state's batches, journals (GROUP_IDs) and Fusion's own error
// code and text per rejected line.

// reconBatchRow is one batch of the reconciliation page.
type reconBatchRow struct {
	Flow, Batch, Verdict, Checked, Explanation, Step string
	Journals, LineErrors                             int
	Fails                                            bool
}

// rowView is one RECON row as shown.
type rowView struct {
	Tier                                             int
	Key, Hop, Source, Target, Variance, Verdict, Why string
	Code, Text                                       string // Fusion's, for a rejected line
}

func view(r recon.Row) rowView {
	return rowView{Tier: r.Tier, Key: r.Key, Hop: r.Hop, Source: rowValue(r, r.Source), Target: rowValue(r, r.Target),
		Variance: rowValue(r, r.Variance), Verdict: r.Verdict, Why: r.Explanation}
}

// rowValue is an amount with its currency, or a count (as sinew recon
// report shows it).
func rowValue(r recon.Row, v money.Amount) string {
	s := r.FormatValue(v)
	if r.Unit != "" && r.Unit != recon.UnitLines {
		s += " " + r.Unit
	}
	return s
}

func (w *web) reconPage(rw http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	flow := r.FormValue("flow")
	data := map[string]any{"Flow": flow}
	board, err := recon.ReadBoard(ctx, w.js, flow, "")
	if err != nil {
		data["Error"] = err.Error()
		w.render(rw, "recon", s, data)
		return
	}
	rows := map[string]*reconBatchRow{}
	var order []string
	get := func(flow, batch string) *reconBatchRow {
		k := flow + "/" + batch
		if rows[k] == nil {
			rows[k] = &reconBatchRow{Flow: flow, Batch: batch, Verdict: "not reconciled", Checked: "-", Step: "-", Fails: true}
			order = append(order, k)
		}
		return rows[k]
	}
	for _, b := range board.Batches() {
		row := get(b.Flow, b.Scope)
		row.Fails = b.Fails()
		if b.Summary != nil {
			row.Verdict, row.Explanation = b.Summary.Row.Verdict, b.Summary.Row.Explanation
			row.Checked = b.Summary.CheckedAt.UTC().Format(time.RFC3339)
		}
	}
	if st, err := batchstate.Open(ctx, w.js); err == nil {
		states, _ := st.List(ctx, flow)
		for _, bs := range states {
			if bs.ByFile {
				continue
			}
			row := get(bs.Flow, bs.BatchID)
			row.Step, row.Journals = bs.Step, len(bs.Groups)
			for _, g := range bs.Groups {
				row.LineErrors += len(g.Errors)
			}
		}
	}
	sort.Strings(order)
	var out []*reconBatchRow
	for _, k := range order {
		out = append(out, rows[k])
	}
	data["Batches"] = out
	w.render(rw, "recon", s, data)
}

// journalView is one journal (GROUP_ID) of a batch.
type journalView struct {
	Group                            int64
	Journal, Step, Status, RequestID string
	Verdict, Why                     string
	LineErrors                       int
}

// batchData reads one batch: its RECON rows and its batch_state (nil for
// a flow reconciled by day, without one).
func (w *web) batchData(r *http.Request) (flow, batch string, b *recon.BatchState, bs *batchstate.State, err error) {
	ctx := r.Context()
	flow, batch = r.FormValue("flow"), r.FormValue("batch")
	board, err := recon.ReadBoard(ctx, w.js, flow, batch)
	if err != nil {
		return
	}
	for _, x := range board.Batches() {
		if x.Flow == flow && x.Scope == batch {
			b = x
		}
	}
	if st, e := batchstate.Open(ctx, w.js); e == nil {
		bs, _ = st.Get(ctx, flow, batch)
	}
	return
}

var groupKey = regexp.MustCompile(`^group/(\d+)$`)

func (w *web) reconBatch(rw http.ResponseWriter, r *http.Request, s *session) {
	flow, batch, b, bs, err := w.batchData(r)
	data := map[string]any{"Flow": flow, "Batch": batch}
	if err != nil {
		data["Error"] = err.Error()
	}
	journals := map[int64]*journalView{}
	var totals, lines []rowView
	if b != nil {
		if b.Summary != nil {
			data["Verdict"], data["Why"] = b.Summary.Row.Verdict, b.Summary.Row.Explanation
			data["Checked"] = b.Summary.CheckedAt.UTC().Format(time.RFC3339)
		}
		for _, e := range b.Rows() {
			if m := groupKey.FindStringSubmatch(e.Row.Key); m != nil && e.Row.Tier == recon.TierLines {
				id, _ := strconv.ParseInt(m[1], 10, 64)
				journals[id] = &journalView{Group: id, Verdict: e.Row.Verdict, Why: e.Row.Explanation, Step: "-", Status: "-"}
				continue
			}
			if e.Row.Tier == recon.TierLines {
				if _, ok := lineGroup(e.Row, bs); !ok {
					lines = append(lines, view(e.Row))
				}
				continue
			}
			totals = append(totals, view(e.Row))
		}
	}
	if bs != nil {
		data["Step"], data["RequestID"], data["Status"] = bs.Step, bs.Upload.RequestID, bs.Upload.Status
		for _, g := range bs.Groups {
			j := journals[g.ID]
			if j == nil {
				j = &journalView{Group: g.ID, Verdict: "not reconciled"}
				journals[g.ID] = j
			}
			j.Journal, j.Step, j.Status, j.RequestID, j.LineErrors = g.Journal, g.Step, g.Status, g.RequestID, len(g.Errors)
		}
	}
	if b == nil && bs == nil {
		data["Error"] = "no reconciliation rows and no batch state for " + flow + " batch " + batch
	}
	var js []*journalView
	for _, j := range journals {
		js = append(js, j)
	}
	sort.Slice(js, func(i, k int) bool { return js[i].Group < js[k].Group })
	data["Totals"], data["Journals"], data["Lines"] = totals, js, lines
	w.render(rw, "reconbatch", s, data)
}

var groupInWhy = regexp.MustCompile(`GROUP_ID (\d+)\b`)

// lineGroup is the journal (GROUP_ID) a tier-3 line row belongs to: the
// group whose Fusion errors name its REFERENCE21, else the GROUP_ID its
// explanation names (held, missing lines).
func lineGroup(r recon.Row, bs *batchstate.State) (int64, bool) {
	if bs != nil {
		for _, g := range bs.Groups {
			for _, le := range g.Errors {
				if le.Reference21 == r.Key {
					return g.ID, true
				}
			}
		}
	}
	// "posted in JE batch N although GROUP_ID M was rejected": the last
	// GROUP_ID named is the line's.
	if m := groupInWhy.FindAllStringSubmatch(r.Explanation, -1); m != nil {
		id, err := strconv.ParseInt(m[len(m)-1][1], 10, 64)
		return id, err == nil
	}
	return 0, false
}

func (w *web) reconJournal(rw http.ResponseWriter, r *http.Request, s *session) {
	flow, batch, b, bs, err := w.batchData(r)
	group, gerr := strconv.ParseInt(r.FormValue("group"), 10, 64)
	data := map[string]any{"Flow": flow, "Batch": batch, "Group": group}
	if gerr != nil {
		http.Error(rw, "group: a GROUP_ID", http.StatusBadRequest)
		return
	}
	if err != nil {
		data["Error"] = err.Error()
	}
	fusion := map[string]batchstate.LineError{}
	if bs != nil {
		if g := bs.Group(group); g != nil {
			data["Journal"], data["Step"], data["Status"], data["RequestID"], data["Detail"] = g.Journal, g.Step, g.Status, g.RequestID, g.Detail
			for _, le := range g.Errors {
				fusion[le.Reference21] = le
			}
		}
	}
	var lines, totals []rowView
	seen := map[string]bool{}
	if b != nil {
		for _, e := range b.Rows() {
			switch {
			case e.Row.Key == "group/"+strconv.FormatInt(group, 10):
				data["Verdict"], data["Why"] = e.Row.Verdict, e.Row.Explanation
			case e.Row.Tier == recon.TierTotals && strings.HasPrefix(e.Row.Key, "journal/"+strconv.FormatInt(group, 10)+"/"):
				totals = append(totals, view(e.Row))
			case e.Row.Tier == recon.TierLines:
				if id, ok := lineGroup(e.Row, bs); ok && id == group {
					v := view(e.Row)
					if le, ok := fusion[e.Row.Key]; ok {
						v.Code, v.Text = le.Code, le.Text
					}
					seen[e.Row.Key] = true
					lines = append(lines, v)
				}
			}
		}
	}
	// Fusion's errors for lines the reconciler has not judged yet.
	var refs []string
	for ref := range fusion {
		if !seen[ref] {
			refs = append(refs, ref)
		}
	}
	sort.Strings(refs)
	for _, ref := range refs {
		le := fusion[ref]
		lines = append(lines, rowView{Tier: recon.TierLines, Key: ref, Verdict: recon.VerdictRejected, Code: le.Code, Text: le.Text, Source: "-", Target: "-", Variance: "-"})
	}
	data["Lines"], data["Totals"] = lines, totals
	w.render(rw, "reconjournal", s, data)
}
