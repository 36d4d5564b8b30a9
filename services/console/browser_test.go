package console

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/flowstate"
	"github.com/sinewhq/sinew/pkg/streams"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// chromium finds Debian's chromium; without it the browser tests skip
// with a message, unless SINEW_REQUIRE_CHROMIUM=1 (CI) makes that a failure.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SINEW_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("chromium not found and SINEW_REQUIRE_CHROMIUM=1 (apt-get install chromium)")
	}
	t.Skip("chromium not found: the browser journeys need Debian's chromium (apt-get install chromium)")
	return ""
}

// browser opens a headless Chromium with its own profile.
func browser(t *testing.T, path string) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1100, 640), chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel3)
	return ctx
}

// shot saves the page as docs/console/<name>.png when
// SINEW_UPDATE_SCREENSHOTS=1 (so make test leaves the tree as it was).
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("SINEW_UPDATE_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "console", name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func signIn(t *testing.T, ctx context.Context, base, user, pw string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("user")),
		chromedp.SendKeys(chromedp.ID("user"), user), chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("streams"))); err != nil {
		t.Fatalf("log in as %s: %v", user, err)
	}
}

// TestBrowserJourneys drives the console in Chromium: log in, watch a
// stream's figure move, find a message by control id and see its
// timeline, see dead letters and be refused their payload without the
// role, and see it with it.
func TestBrowserJourneys(t *testing.T) {
	path := chromium(t)
	base, pw, wb := console(t)
	ctx := browser(t, path)
	bg := context.Background()
	if _, err := dlq.Write(bg, wb.js, &sinewv1.DeadLetter{Stream: "HL7_IN", Consumer: "transform-hl7-willow-inventory", Subject: "hl7.in.W.RDS.O13.willow-inventory",
		StreamSeq: 5, Payload: []byte("MSH|^~\\&|WILLOW|W|||20261126||RDS^O13|CTL-B|P|2.5\rPID|1||MRN-1^^^W^MR"), PayloadAvailable: true,
		Reason: "required field missing: RXD-2", ReasonCode: "SINEW-HL7-101", Flow: "willow-inventory"}); err != nil {
		t.Fatal(err)
	}

	signIn(t, ctx, base, "operator", pw["operator"])
	sel := chromedp.CSS(`tr[data-stream="HL7_IN"] .msgs`)
	before, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		m := nats.NewMsg(streams.HL7Subject("W", "RDS", "O13"))
		m.Data = []byte("x")
		m.Header.Set(nats.MsgIdHdr, "b"+string(rune('a'+i)))
		if _, err := wb.js.PublishMsg(bg, m); err != nil {
			t.Fatal(err)
		}
	}
	// The page updates itself (no reload): the figure moves.
	var after string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		if after, err = chromedp.Run(ctx, chromedp.Text(sel)); err != nil {
			t.Fatal(err)
		}
		if after != before || time.Now().After(deadline) {
			break
		}
	}
	if after == before {
		t.Errorf("HL7_IN stayed at %s after three messages", before)
	}

	if err := wb.audit.Write(bg, &sinewv1.AuditEvent{Flow: "willow-inventory", Hop: "ingest", Outcome: "AA", Subject: "hl7.in.W.RDS.O13.willow-inventory",
		Detail: "stored", BusinessKeys: sinewv1.KeysOf("control_id", "CTL-B")}); err != nil {
		t.Fatal(err)
	}
	var timeline string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		err := chromedp.Do(ctx, chromedp.Navigate(base+"/track"), chromedp.WaitVisible(chromedp.ID("trackid")),
			chromedp.SendKeys(chromedp.ID("trackid"), "CTL-B"), chromedp.Click(chromedp.ID("find")), chromedp.WaitReady(chromedp.CSS("body")))
		if err == nil {
			timeline, err = chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("timeline")||{}).innerText||""`))
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(timeline, "willow-inventory") || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(timeline, "ingest") {
		t.Fatalf("no timeline for CTL-B: %q", timeline)
	}
	shot(t, ctx, "track")

	letters, err := text(ctx, base+"/dlq", "dlq")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(letters, "SINEW-HL7-101") || strings.Contains(letters, "MRN-1") {
		t.Errorf("DLQ page: %q", letters)
	}
	shot(t, ctx, "dlq")
	refused, err := text(ctx, base+"/dlq/payload?seq=1", "refused")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(refused, "privacy-officer") {
		t.Errorf("refusal: %q", refused)
	}
	shot(t, ctx, "refused")
	if _, err := text(ctx, base+"/triage", "triage"); err != nil {
		t.Fatal(err)
	}
	shot(t, ctx, "triage")

	// The privacy officer sees the payload and searches the trail, which
	// shows the operator's refused attempt.
	pctx := browser(t, path)
	signIn(t, pctx, base, "privacy", pw["privacy"])
	payload, err := text(pctx, base+"/dlq/payload?seq=1", "payload")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(payload, "RDS^O13") {
		t.Errorf("payload: %q", payload)
	}
	trail, err := text(pctx, base+"/audit?user=console:", "audit")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(trail, "console-refused") || !strings.Contains(trail, "console-payload") {
		t.Errorf("audit search: %q", trail)
	}
	shot(t, pctx, "audit")
}

// text opens u and returns the text of the element with id.
func text(ctx context.Context, u, id string) (string, error) {
	if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
		return "", err
	}
	return chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
}

// TestBrowserReplayCutoverAndReconciliation drives the operator's and
// finance analyst's journeys in Chromium: replay a dead letter with a
// reason and see it delivered (the DLQ's waiting count drops, the message
// is back on HL7_IN); stage a flow, activate it and watch the drain's bar
// reach 100 %; open a reconciliation variance down to the line with
// Fusion's own text; the privacy officer's decoded view of a dead letter.
func TestBrowserReplayCutoverAndReconciliation(t *testing.T) {
	path := chromium(t)
	base, pw, wb := console(t)
	bg := context.Background()
	if _, err := dlq.Write(bg, wb.js, hl7Letter(t, 1, "SINEW-HL7-101", "CTL-R")); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t, path)
	signIn(t, ctx, base, "operator", pw["operator"])

	// Replay: tick the letter, say why, replay.
	waiting, err := text(ctx, base+"/dlq", "dlq-waiting")
	if err != nil || waiting != "1" {
		t.Fatalf("waiting before the replay: %q %v", waiting, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("seq-1")), chromedp.SendKeys(chromedp.ID("reason"), "NDC mapped in the crosswalk")); err != nil {
		t.Fatal(err)
	}
	shot(t, ctx, "dlq-replay")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("replay")), chromedp.WaitVisible(chromedp.ID("msg"))); err != nil {
		t.Fatal(err)
	}
	msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("msg")))
	waiting, _ = chromedp.Run(ctx, chromedp.Text(chromedp.ID("dlq-waiting")))
	if !strings.Contains(msg, "1 replayed, 0 failed") || waiting != "0" {
		t.Errorf("after the replay: %q, waiting %q", msg, waiting)
	}
	shot(t, ctx, "dlq-replayed")
	delivered, err := text(ctx, base+"/", "streams")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(delivered, "HL7_IN\t1\t") {
		t.Errorf("the replayed message is not on HL7_IN: %q", delivered)
	}

	// Cutover: stage willow-inventory, let input wait, activate, watch.
	const flow = "willow-inventory"
	reason := chromedp.CSS(`tr[data-flow="` + flow + `"] input.reason`)
	button := func(label string) chromedp.Action[chromedp.Void] {
		return chromedp.Click(chromedp.Search(`//tr[@data-flow="` + flow + `"]//button[text()="` + label + `"]`))
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/flows"), chromedp.WaitVisible(reason), chromedp.SendKeys(reason, "cutover rehearsal"),
		button("Stage"), chromedp.WaitVisible(chromedp.ID("drain"))); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		m := nats.NewMsg(streams.HL7FlowSubject(flow, "W", "RDS", "O13"))
		m.Data = []byte("x")
		m.Header.Set(nats.MsgIdHdr, "cutover-"+strconv.Itoa(i))
		if _, err := wb.js.PublishMsg(bg, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(reason), chromedp.SendKeys(reason, "go live"), button("Activate"), chromedp.WaitVisible(chromedp.ID("bar"))); err != nil {
		t.Fatal(err)
	}
	// transform's part: drain the flow's consumer, a few a second.
	cons, err := wb.js.Consumer(bg, streams.HL7In, streams.TransformHL7Flow(flow))
	if err != nil {
		t.Fatal(err)
	}
	// The 20 and the message replayed above wait on the flow's consumer.
	waitingNow, err := flowstate.BacklogOf(bg, wb.js, flowstate.Inputs(must(wb.inv.Get(flow))))
	if err != nil || waitingNow.Left() != 21 {
		t.Fatalf("backlog before draining: %+v %v", waitingNow, err)
	}
	drained := drainSlowly(bg, cons, 21, 250*time.Millisecond)
	var values []string
	midShot := false
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(400 * time.Millisecond) {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`String(document.getElementById("bar").value)`))
		if err != nil {
			t.Fatal(err)
		}
		if len(values) == 0 || values[len(values)-1] != v {
			values = append(values, v)
		}
		if pct, _ := strconv.Atoi(v); pct >= 30 && pct <= 90 && !midShot {
			shot(t, ctx, "cutover") // mid-drain
			midShot = true
		}
		if v == "100" {
			break
		}
	}
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if len(values) < 3 || values[len(values)-1] != "100" {
		t.Errorf("the bar went %v, want it to move to 100", values)
	}
	drainText, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("drain-text")))
	if !strings.Contains(drainText, "21/21 done") {
		t.Errorf("drain text: %q", drainText)
	}

	// Finance: batch → journal → line with Fusion's own text.
	seedRecon(t, wb.js)
	fctx := browser(t, path)
	signIn(t, fctx, base, "finance", pw["finance"])
	if err := chromedp.Do(fctx, chromedp.Navigate(base+"/recon"), chromedp.WaitVisible(chromedp.ID("recon"))); err != nil {
		t.Fatal(err)
	}
	shot(t, fctx, "recon")
	if err := chromedp.Do(fctx, chromedp.Click(chromedp.Search(`//a[text()="HB-20261126"]`)), chromedp.WaitVisible(chromedp.ID("journals"))); err != nil {
		t.Fatal(err)
	}
	shot(t, fctx, "recon-batch")
	if err := chromedp.Do(fctx, chromedp.Click(chromedp.Search(`//table[@id="journals"]//a[text()="7002"]`)), chromedp.WaitVisible(chromedp.ID("lines"))); err != nil {
		t.Fatal(err)
	}
	lines, _ := chromedp.Run(fctx, chromedp.Text(chromedp.ID("lines")))
	if !strings.Contains(lines, "HB-20261126:L4") || !strings.Contains(lines, "The account combination is not valid") || !strings.Contains(lines, "held") {
		t.Errorf("journal lines: %q", lines)
	}
	shot(t, fctx, "recon-journal")

	// The privacy officer's decoded view.
	pctx := browser(t, path)
	signIn(t, pctx, base, "privacy", pw["privacy"])
	decoded, err := text(pctx, base+"/dlq/payload?seq=1", "decoded")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(decoded, "RXD-2-1") || !strings.Contains(decoded, "0781-3207-95") {
		t.Errorf("decoded view: %q", decoded)
	}
	shot(t, pctx, "payload")
}

func must[T any](v T, ok bool) T {
	if !ok {
		panic("missing")
	}
	return v
}

// cell is the text of a flow's cell data-k in the table with id table.
func cell(ctx context.Context, table, flow, k string) (string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector('#`+table+` tr[data-flow="`+flow+`"] [data-k="`+k+`"]')||{}).textContent||""`))
}

// waitCell polls a flow's cell until ok says yes (30 s at most) and
// returns the texts it went through.
func waitCell(t *testing.T, ctx context.Context, table, flow, k string, ok func(string) bool) []string {
	t.Helper()
	var seen []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		v, err := cell(ctx, table, flow, k)
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) == 0 || seen[len(seen)-1] != v {
			seen = append(seen, v)
		}
		if ok(v) {
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s of %s in #%s went %q", k, flow, table, seen)
		}
	}
}

func is(want string) func(string) bool { return func(v string) bool { return v == want } }

// TestBrowserFlowFiguresMoveLive: the operator keeps the flows dashboard
// open in one tab and stages willow-inventory in another; without a
// reload the dashboard shows the flow staged, its backlog rising to 20
// and its received rate, a dead letter waiting and the GL batch's
// variance; after activation in the other tab the backlog falls to 0 as
// the flow's consumer drains, the processed rate shows, and the cutover
// table follows too.
func TestBrowserFlowFiguresMoveLive(t *testing.T) {
	path := chromium(t)
	base, pw, wb := console(t)
	bg := context.Background()
	const flow = "willow-inventory"
	dash := browser(t, path)
	signIn(t, dash, base, "operator", pw["operator"])
	// A mark a reload would wipe.
	if _, err := chromedp.Run(dash, chromedp.Evaluate[bool](`window.sinewMark = true`)); err != nil {
		t.Fatal(err)
	}
	if v, _ := cell(dash, "flowfigs", flow, "state"); v != "active" {
		t.Fatalf("dashboard state of %s: %q", flow, v)
	}

	cut, cancel := chromedp.NewContext(dash) // a second tab, same session
	t.Cleanup(cancel)
	reason := chromedp.CSS(`tr[data-flow="` + flow + `"] input.reason`)
	button := func(label string) chromedp.Action[chromedp.Void] {
		return chromedp.Click(chromedp.Search(`//tr[@data-flow="` + flow + `"]//button[text()="` + label + `"]`))
	}
	if err := chromedp.Do(cut, chromedp.Navigate(base+"/flows"), chromedp.WaitVisible(reason), chromedp.SendKeys(reason, "cutover rehearsal"),
		button("Stage"), chromedp.WaitVisible(chromedp.ID("drain"))); err != nil {
		t.Fatal(err)
	}
	waitCell(t, dash, "flowfigs", flow, "state", is("staged"))
	for i := range 20 {
		m := nats.NewMsg(streams.HL7FlowSubject(flow, "W", "RDS", "O13"))
		m.Data = []byte("x")
		m.Header.Set(nats.MsgIdHdr, "live-"+strconv.Itoa(i))
		if _, err := wb.js.PublishMsg(bg, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dlq.Write(bg, wb.js, hl7Letter(t, 7, "SINEW-HL7-101", "CTL-L")); err != nil {
		t.Fatal(err)
	}
	seedRecon(t, wb.js)
	rising := waitCell(t, dash, "flowfigs", flow, "backlog", is("20"))
	waitCell(t, dash, "flowfigs", flow, "received", func(v string) bool { f, err := strconv.ParseFloat(v, 64); return err == nil && f > 0 })
	waitCell(t, dash, "flowfigs", flow, "dlq", is("1"))
	waitCell(t, dash, "flowfigs", "resolute-gl", "verdict", is("variance (HB-20261126)"))
	if p, _ := cell(dash, "flowfigs", flow, "processed"); p != "0.0" {
		t.Errorf("processed while staged: %q", p)
	}
	waitCell(t, cut, "flows", flow, "backlog", is("20")) // the cutover table too
	shot(t, cut, "cutover-staged")

	if err := chromedp.Do(cut, chromedp.WaitVisible(reason), chromedp.SendKeys(reason, "go live"), button("Activate"), chromedp.WaitVisible(chromedp.ID("bar"))); err != nil {
		t.Fatal(err)
	}
	waitCell(t, dash, "flowfigs", flow, "state", is("active"))
	cons, err := wb.js.Consumer(bg, streams.HL7In, streams.TransformHL7Flow(flow))
	if err != nil {
		t.Fatal(err)
	}
	drained := drainSlowly(bg, cons, 20, 500*time.Millisecond) // transform's part, a few a second
	midShot := false
	falling := waitCell(t, dash, "flowfigs", flow, "backlog", func(v string) bool {
		if n, err := strconv.Atoi(v); err == nil && n > 0 && n < 16 && !midShot {
			shot(t, dash, "dashboard") // mid-drain
			midShot = true
		}
		return v == "0"
	})
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if len(falling) < 3 {
		t.Errorf("the backlog went %q: want it seen falling", falling)
	}
	waitCell(t, dash, "flowfigs", flow, "processed", func(v string) bool { f, err := strconv.ParseFloat(v, 64); return err == nil && f > 0 })
	waitCell(t, cut, "flows", flow, "backlog", is("0"))
	if mark, err := chromedp.Run(dash, chromedp.Evaluate[bool](`window.sinewMark === true`)); err != nil || !mark {
		t.Errorf("the dashboard reloaded (mark %v %v)", mark, err)
	}
	t.Logf("backlog rose %q, fell %q", rising, falling)
}

// drainSlowly acknowledges n messages of cons two at a time, pausing
// between fetches so a page sees the backlog fall; the channel gets the
// first error, or nil once n are acknowledged.
func drainSlowly(ctx context.Context, cons jetstream.Consumer, n int, pause time.Duration) <-chan error {
	drained := make(chan error, 1)
	go func() {
		for done := 0; done < n; {
			batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				drained <- err
				return
			}
			for m := range batch.Messages() {
				_ = m.DoubleAck(ctx)
				done++
			}
			time.Sleep(pause)
		}
		drained <- nil
	}()
	return drained
}
