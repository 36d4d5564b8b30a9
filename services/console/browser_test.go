package console

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"

	"github.com/sinewhq/sinew/pkg/dlq"
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
	shot(t, ctx, "dashboard")

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
