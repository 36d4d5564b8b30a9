package console

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/track"
	"github.com/sinewhq/sinew/pkg/triage"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// console starts the web console on a real server with demo users and
// returns its URL and the users' passwords.
func console(t *testing.T) (string, map[string]string, *web) {
	t.Helper()
	inv, err := flows.Load(filepath.Join("..", "..", "flows.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, js := natstest.StartWithTopology(t, inv.Topology(streams.DefaultOptions()))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	idx, err := track.OpenIndex(filepath.Join(t.TempDir(), "track"), track.IndexConfig{})
	if err != nil {
		t.Fatal(err)
	}
	indexed := make(chan struct{})
	go func() { _ = track.NewIndexer(js, idx, track.IndexerConfig{}).Run(ctx, nil); close(indexed) }()
	t.Cleanup(func() { cancel(); <-indexed; _ = idx.Close() })
	file := filepath.Join(t.TempDir(), "console", "users.yaml")
	if wrote, err := EnsureDemoUsers(file); err != nil || !wrote {
		t.Fatalf("demo users: %v %v", wrote, err)
	}
	for _, f := range []string{file, filepath.Join(filepath.Dir(file), "passwords.txt")} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	users, err := LoadUsers(file)
	if err != nil {
		t.Fatal(err)
	}
	pw := map[string]string{}
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(file), "passwords.txt"))
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		n, p, _ := strings.Cut(l, " ")
		pw[n] = p
	}
	w := audit.NewWriter(js, "console@test")
	st, _ := triage.Open(ctx, js, triage.Config{Audit: w})
	wb := newWeb(js, w, st, users, inv)
	wb.index = idx
	srv := httptest.NewServer(wb.handler())
	t.Cleanup(srv.Close)
	return srv.URL, pw, wb
}

func client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	r, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b)
}

func login(t *testing.T, base, user, pw string) (*http.Client, int) {
	t.Helper()
	c := client(t)
	r, err := c.PostForm(base+"/login", url.Values{"user": {user}, "password": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	return c, r.StatusCode
}

func TestConsoleLoginRolesCSRFAndAuditedPayloadViews(t *testing.T) {
	base, pw, wb := console(t)
	ctx := context.Background()
	if _, err := dlq.Write(ctx, wb.js, &sinewv1.DeadLetter{Stream: "HL7_IN", Consumer: "transform-hl7", Subject: "hl7.in.W.RDS.O13", StreamSeq: 5,
		Payload: []byte("MSH|^~\\&|WILLOW\rPID|1||MRN-1"), PayloadAvailable: true, Reason: "required field missing", ReasonCode: "SINEW-HL7-101", Flow: "willow-inventory"}); err != nil {
		t.Fatal(err)
	}

	// Unauthenticated: to the login page, with the security headers.
	r, err := http.Get(base + "/dlq")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.Request.URL.Path != "/login" || r.Header.Get("Content-Security-Policy") == "" || r.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("unauthenticated /dlq ended at %s, headers %v", r.Request.URL.Path, r.Header)
	}
	if _, code := login(t, base, "operator", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", code)
	}

	op, code := login(t, base, "operator", pw["operator"])
	if code != http.StatusOK {
		t.Fatalf("operator login: %d", code)
	}
	if code, body := get(t, op, base+"/dlq"); code != 200 || !strings.Contains(body, "SINEW-HL7-101") || strings.Contains(body, "MRN-1") {
		t.Errorf("operator /dlq: %d %s", code, body)
	}
	if code, body := get(t, op, base+"/dlq/payload?seq=1"); code != http.StatusForbidden || strings.Contains(body, "MRN-1") {
		t.Errorf("operator payload: %d, want 403 without the payload", code)
	}
	if code, _ := get(t, op, base+"/audit?flow=x"); code != http.StatusForbidden {
		t.Errorf("operator audit search: %d, want 403", code)
	}
	// A POST without the session's CSRF token is refused.
	rr, err := op.PostForm(base+"/triage/resolve", url.Values{"id": {"T1"}, "note": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	rr.Body.Close()
	if rr.StatusCode != http.StatusForbidden {
		t.Errorf("POST without CSRF: %d", rr.StatusCode)
	}

	pv, _ := login(t, base, "privacy", pw["privacy"])
	if code, body := get(t, pv, base+"/dlq/payload?seq=1"); code != 200 || !strings.Contains(body, "MRN-1") {
		t.Errorf("privacy payload: %d", code)
	}
	var actions []string
	_ = audit.Read(ctx, wb.js, "audit.>", func(e audit.Entry) error {
		for _, ev := range e.Events {
			actions = append(actions, ev.Actor+" "+ev.Action+" "+ev.Outcome)
		}
		return nil
	})
	all := strings.Join(actions, "\n")
	for _, want := range []string{"console:operator console-refused refused", "console:privacy console-payload ok", "console:privacy console-login ok"} {
		if !strings.Contains(all, want) {
			t.Errorf("audit lacks %q:\n%s", want, all)
		}
	}
}

func TestConsoleTrackAndTriageResolve(t *testing.T) {
	base, pw, wb := console(t)
	ctx := context.Background()
	if err := wb.audit.Write(ctx, &sinewv1.AuditEvent{Flow: "willow-inventory", Hop: "ingest", Outcome: "ok", BusinessKeys: sinewv1.KeysOf("control_id", "CTL-9")}); err != nil {
		t.Fatal(err)
	}
	it, _, err := wb.triage.Raise(ctx, "test", triage.Item{Kind: triage.KindVariance, Flow: "resolute-gl", Source: "s1", Reason: "SINEW-RECON-002", Summary: "10.00 USD"})
	if err != nil {
		t.Fatal(err)
	}
	fin, _ := login(t, base, "finance", pw["finance"])
	var body string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, body = get(t, fin, base+"/track?id=CTL-9")
		if strings.Contains(body, `id="timeline"`) || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(body, "willow-inventory") {
		t.Fatalf("track page: %s", body)
	}
	_, page := get(t, fin, base+"/triage")
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, it.ID) {
		t.Fatalf("triage page: %s", page)
	}
	r, err := fin.PostForm(base+"/triage/resolve", url.Values{"csrf": {m[1]}, "id": {it.ID}, "note": {"posted the missing journal"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	got, _ := wb.triage.Get(ctx, it.ID)
	if got.State != triage.StateResolved || got.History[len(got.History)-1].Actor != "console:finance" {
		t.Errorf("after resolve: %+v", got)
	}
}

func TestConsoleLoginRateLimit(t *testing.T) {
	base, pw, _ := console(t)
	for range maxFailures {
		login(t, base, "operator", "wrong")
	}
	if _, code := login(t, base, "operator", pw["operator"]); code != http.StatusTooManyRequests {
		t.Errorf("after %d failures: %d, want 429", maxFailures, code)
	}
}
