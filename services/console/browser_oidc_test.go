package console

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestBrowserOIDCSignIn drives OIDC sign-in in Chromium against a real
// provider on another site (http://localhost:<port>; the console is on
// 127.0.0.1): land on the console, follow "Sign in with", sign in at the
// provider's own form, come back through the callback's hand-off page
// and arrive signed in with the mapped role, holding a SameSite=Strict
// session cookie (a redirect begun at the provider would have lost it).
// A user no role maps to is refused with 403 and gets no session.
func TestBrowserOIDCSignIn(t *testing.T) {
	path := chromium(t)
	base, _, wb := console(t)
	idp := newProvider(t, "localhost")
	idp.users = map[string][]string{"dana": {"staff", "sinew-ops"}, "nobody": {"staff"}}
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(idp.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := newOIDC(OIDCConfig{Issuer: idp.url, ClientID: "sinew-console", ClientSecretFile: secretFile,
		RedirectURL: base + oidcCallbackPath, Roles: map[string]string{"sinew-ops": RoleOperator, "sinew-finance": RoleFinance}})
	if err != nil {
		t.Fatal(err)
	}
	wb.oidc = o
	c, _ := url.Parse(base)
	if p, _ := url.Parse(idp.url); c.Hostname() == p.Hostname() {
		t.Fatalf("console %s and provider %s are one site: the hand-off would go untested", base, idp.url)
	}

	// signInAt follows the console's OIDC link and signs user in at the
	// provider; it returns the callback's answer.
	signInAt := func(ctx context.Context, user string) *network.Response {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("oidc"))); err != nil {
			t.Fatalf("landing: %v", err)
		}
		if user == "dana" {
			shot(t, ctx, "login-oidc")
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("oidc")), chromedp.WaitVisible(chromedp.ID("idp-user")),
			chromedp.SendKeys(chromedp.ID("idp-user"), user)); err != nil {
			t.Fatalf("to the provider: %v", err)
		}
		at, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.origin`))
		if at != idp.url {
			t.Errorf("the provider's form is at %s, want %s", at, idp.url)
		}
		resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("idp-signin")))
		if err != nil {
			t.Fatalf("sign in at the provider as %s: %v", user, err)
		}
		return resp
	}

	ctx := browser(t, path)
	resp := signInAt(ctx, "dana")
	if resp.Status != http.StatusOK || !strings.HasPrefix(resp.URL, base+oidcCallbackPath) {
		t.Fatalf("callback: %d %s", resp.Status, resp.URL)
	}
	// The hand-off page moves on to / by itself, same-site: the session
	// cookie goes along and the dashboard shows.
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("flowfigs"))); err != nil {
		t.Fatalf("dashboard after the hand-off: %v", err)
	}
	who, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("nav .who")))
	if who != "dana (operator)" {
		t.Errorf("signed in as %q, want dana (operator)", who)
	}
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/", base + oidcCallbackPath}})
	if err != nil {
		t.Fatal(err)
	}
	var session *network.Cookie
	for _, c := range cookies.Cookies {
		switch c.Name {
		case sessionCookie:
			session = c
		case oidcStateCookie:
			t.Errorf("the sign-in's state cookie outlived the callback")
		}
	}
	if session == nil || session.SameSite != network.CookieSameSiteStrict || !session.HTTPOnly {
		t.Fatalf("session cookie: %+v", session)
	}
	shot(t, ctx, "oidc-signedin")
	// The operator's pages are open to dana; the privacy officer's are not.
	if letters, err := text(ctx, base+"/dlq", "dlq-waiting"); err != nil || letters != "0" {
		t.Errorf("/dlq as dana: %q %v", letters, err)
	}
	if refused, err := text(ctx, base+"/audit", "refused"); err != nil || !strings.Contains(refused, RolePrivacy) {
		t.Errorf("/audit as dana: %q %v", refused, err)
	}

	// nobody's groups map to no role: 403 at the callback, no session.
	nctx := browser(t, path)
	resp = signInAt(nctx, "nobody")
	if resp.Status != http.StatusForbidden {
		t.Errorf("nobody's callback: %d, want 403", resp.Status)
	}
	msg, err := chromedp.Run(nctx, chromedp.Text(chromedp.CSS("p.error")))
	if err != nil || !strings.Contains(msg, "no console role") {
		t.Errorf("nobody's page: %q %v", msg, err)
	}
	shot(t, nctx, "oidc-refused")
	if err := chromedp.Do(nctx, chromedp.Navigate(base+"/triage"), chromedp.WaitVisible(chromedp.ID("login"))); err != nil {
		t.Errorf("nobody reaches /triage: %v", err)
	}

	trail := actions(t, wb.js)
	for _, want := range []string{"console:dana console-login ok oidc " + idp.url, "console:nobody console-login refused oidc: no groups value maps",
		"console:dana console-refused refused /audit needs " + RolePrivacy} {
		if !strings.Contains(trail, want) {
			t.Errorf("audit lacks %q:\n%s", want, trail)
		}
	}
}
