package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/streams"
)

// figuresOf reads /api/flows after the shared reading has expired.
func figuresOf(t *testing.T, c *http.Client, base string) map[string]flowFigures {
	t.Helper()
	time.Sleep(figuresTTL + 100*time.Millisecond)
	code, body := get(t, c, base+"/api/flows")
	var a struct {
		Flows []flowFigures `json:"flows"`
		Error string        `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &a); err != nil || code != 200 || a.Error != "" {
		t.Fatalf("/api/flows: %d %v %s", code, err, body)
	}
	out := map[string]flowFigures{}
	for _, f := range a.Flows {
		out[f.Flow] = f
	}
	return out
}

// TestConsoleFlowFiguresMove: every flow's figures come from the server
// at each reading: a staged flow's backlog and received rate rise as its
// input waits, its dead letters waiting and its last reconciliation
// verdict show, and once activated and drained its backlog is 0 and its
// processed rate is not; the pages render the same cells.
func TestConsoleFlowFiguresMove(t *testing.T) {
	base, pw, wb := console(t)
	ctx := context.Background()
	const flow = "willow-inventory"
	op, _ := login(t, base, "operator", pw["operator"])
	figs := figuresOf(t, op, base)
	if len(figs) != len(wb.inv.Flows) {
		t.Fatalf("%d flows, want every flow of flows.yaml (%d)", len(figs), len(wb.inv.Flows))
	}
	f := figs[flow]
	if !f.Held || f.State != flows.Active || f.Backlog != 0 || f.DLQ != 0 || f.Verdict != "" || f.Cells["verdict"] != "-" {
		t.Errorf("at rest: %+v", f)
	}

	csrf := csrfOf(t, op, base+"/flows")
	if code, _ := post(t, op, base+"/flows/state", url.Values{"csrf": {csrf}, "flow": {flow}, "state": {flows.Staged}, "reason": {"rehearsal"}}); code != 200 {
		t.Fatalf("stage: %d", code)
	}
	for i := range 5 {
		m := nats.NewMsg(streams.HL7FlowSubject(flow, "W", "RDS", "O13"))
		m.Data = []byte("x")
		m.Header.Set(nats.MsgIdHdr, "figs-"+strconv.Itoa(i))
		if _, err := wb.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if _, err := dlq.Write(ctx, wb.js, hl7Letter(t, uint64(10+i), "SINEW-HL7-101", "CTL-F"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	seedRecon(t, wb.js)
	figs = figuresOf(t, op, base)
	f = figs[flow]
	if f.State != flows.Staged || f.Backlog != 5 || f.DLQ != 2 || f.Received == nil || *f.Received <= 0 || *f.Processed != 0 ||
		f.Cells["backlog"] != "5" || f.Cells["state"] != flows.Staged || f.Cells["by"] != "console:operator" || f.Cells["oldest"] == "-" {
		t.Errorf("staged with 5 waiting: %+v", f)
	}
	if gl := figs["resolute-gl"]; gl.Verdict != "variance" || gl.Cells["verdict"] != "variance (HB-20261126)" {
		t.Errorf("last verdict: %+v", gl)
	}

	// A letter handled leaves the count; the flow activated and drained.
	st, err := dlq.Open(ctx, wb.js, wb.audit)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Discard(ctx, 1, "console:operator", "duplicate"); err != nil {
		t.Fatal(err)
	}
	if code, _ := post(t, op, base+"/flows/state", url.Values{"csrf": {csrf}, "flow": {flow}, "state": {flows.Active}, "reason": {"go live"}}); code != 200 {
		t.Fatalf("activate: %d", code)
	}
	cons, err := wb.js.Consumer(ctx, streams.HL7In, streams.TransformHL7Flow(flow))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < 5; {
		batch, err := cons.Fetch(5, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			_ = m.DoubleAck(ctx)
			n++
		}
	}
	f = figuresOf(t, op, base)[flow]
	if f.State != flows.Active || f.Backlog != 0 || f.InFlight != 0 || f.DLQ != 1 || f.Processed == nil || *f.Processed <= 0 || f.Cells["oldest"] != "-" {
		t.Errorf("active and drained: %+v", f)
	}

	// The pages render the same cells; finance may look, not change.
	fin, _ := login(t, base, "finance", pw["finance"])
	for _, page := range []string{"/", "/flows"} {
		_, body := get(t, fin, base+page)
		for _, want := range []string{`<tr data-flow="` + flow + `">`, `<td data-k="state">active</td>`, `<td data-k="backlog">0</td>`} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %s", page, want)
			}
		}
		if page == "/" && !strings.Contains(body, `<td data-k="verdict">variance (HB-20261126)</td>`) {
			t.Errorf("dashboard lacks the last verdict")
		}
		if strings.Contains(body, `class="flowform"`) {
			t.Errorf("%s offers finance the state form", page)
		}
	}
}
