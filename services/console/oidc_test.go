package console

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/smart"
)

// provider is a small OpenID Connect provider: discovery, an authorize
// endpoint, a token endpoint checking the client secret and the PKCE
// verifier, and its JWKS. mint shapes the next ID token (claims, signing
// key). Without users the authorize endpoint signs dana in at once; with
// users (name → groups) it asks who signs in, on a form of its own.
type provider struct {
	srv    *httptest.Server
	url    string // its issuer: the server's URL, on the host asked for
	key    *smart.Key
	secret string
	users  map[string][]string

	mu    sync.Mutex
	codes map[string]grant
	mint  func(claims map[string]any) *smart.Key
}

type grant struct{ challenge, nonce, redirect, user string }

// idpForm is the provider's sign-in page: the authorization request
// carried on, and who signs in.
var idpForm = template.Must(template.New("idp").Parse(`<!doctype html><html><head><title>Test provider</title></head><body>
<h1>Test provider: sign in</h1><form method="post" action="/authorize">{{range $k, $v := .}}<input type="hidden" name="{{$k}}" value="{{index $v 0}}">{{end}}
<label>User <input name="user" id="idp-user"></label> <button id="idp-signin">Sign in</button></form></body></html>`))

// newProvider starts the provider; its issuer names host (127.0.0.1 when
// ""), so that a browser can reach it as a site other than the console's.
func newProvider(t *testing.T, host string) *provider {
	t.Helper()
	k, err := smart.GenerateKey(smart.RS256)
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{key: k, secret: "s3cret/with+chars", codes: map[string]grant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(rw http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(rw).Encode(map[string]any{"issuer": p.url, "authorization_endpoint": p.url + "/authorize",
			"token_endpoint": p.url + "/token", "jwks_uri": p.url + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /jwks", func(rw http.ResponseWriter, r *http.Request) { _ = json.NewEncoder(rw).Encode(smart.Set(p.key)) })
	authorize := func(rw http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Method == http.MethodPost {
			_ = r.ParseForm()
			q = r.PostForm
		}
		if q.Get("response_type") != "code" || q.Get("client_id") != "sinew-console" || q.Get("code_challenge_method") != "S256" ||
			q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" || !strings.Contains(q.Get("scope"), "openid") {
			http.Error(rw, "bad authorization request", http.StatusBadRequest)
			return
		}
		user := "dana"
		if p.users != nil {
			if r.Method == http.MethodGet {
				rw.Header().Set("Content-Type", "text/html; charset=utf-8")
				_ = idpForm.Execute(rw, q)
				return
			}
			if user = q.Get("user"); p.users[user] == nil {
				http.Error(rw, "no such user", http.StatusUnauthorized)
				return
			}
		}
		code := token()
		p.mu.Lock()
		p.codes[code] = grant{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirect: q.Get("redirect_uri"), user: user}
		p.mu.Unlock()
		http.Redirect(rw, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	}
	mux.HandleFunc("GET /authorize", authorize)
	mux.HandleFunc("POST /authorize", authorize)
	mux.HandleFunc("POST /token", func(rw http.ResponseWriter, r *http.Request) {
		id, sec, ok := r.BasicAuth()
		id, _ = url.QueryUnescape(id)
		sec, _ = url.QueryUnescape(sec)
		if !ok || id != "sinew-console" || sec != p.secret {
			http.Error(rw, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		p.mu.Lock()
		g, ok := p.codes[r.FormValue("code")]
		delete(p.codes, r.FormValue("code"))
		mint := p.mint
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.FormValue("code_verifier")))
		if !ok || r.FormValue("grant_type") != "authorization_code" || r.FormValue("redirect_uri") != g.redirect ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			http.Error(rw, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		now := time.Now()
		claims := map[string]any{"iss": p.url, "sub": "u-42", "aud": "sinew-console", "exp": now.Add(5 * time.Minute).Unix(),
			"iat": now.Unix(), "nonce": g.nonce, "preferred_username": "dana", "groups": []string{"staff", "sinew-ops"}}
		if groups, ok := p.users[g.user]; ok {
			claims["sub"], claims["preferred_username"], claims["groups"] = "u-"+g.user, g.user, groups
		}
		key := p.key
		if mint != nil {
			if k := mint(claims); k != nil {
				key = k
			}
		}
		tok, err := key.Sign(claims)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(map[string]any{"access_token": token(), "token_type": "Bearer", "expires_in": 300, "id_token": tok})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	p.url = p.srv.URL
	if host != "" {
		p.url = "http://" + net.JoinHostPort(host, strconv.Itoa(p.srv.Listener.Addr().(*net.TCPAddr).Port))
	}
	return p
}

func TestConsoleOIDCSignIn(t *testing.T) {
	base, pw, wb := console(t)
	idp := newProvider(t, "")
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

	if code, body := get(t, client(t), base+"/login"); code != 200 || !strings.Contains(body, "Sign in with "+idp.url) {
		t.Fatalf("login page: %d %s", code, body)
	}
	other, _ := smart.GenerateKey(smart.RS256)
	other.Kid = idp.key.Kid
	for _, tc := range []struct {
		name string
		mint func(c map[string]any) *smart.Key
		code int
		want string // a page the user then reaches, or the login page's message
	}{
		{"operator", nil, 200, "Dead letters"},
		{"finance by a single value", func(c map[string]any) *smart.Key { c["groups"] = "sinew-finance"; return nil }, 200, "Reconciliation"},
		{"wrong nonce", func(c map[string]any) *smart.Key { c["nonce"] = "other"; return nil }, 401, "sign-in failed"},
		{"wrong audience", func(c map[string]any) *smart.Key { c["aud"] = []string{"another-app"}; return nil }, 401, "sign-in failed"},
		{"two audiences without azp", func(c map[string]any) *smart.Key { c["aud"] = []string{"sinew-console", "x"}; return nil }, 401, "sign-in failed"},
		{"wrong issuer", func(c map[string]any) *smart.Key { c["iss"] = "https://elsewhere.example"; return nil }, 401, "sign-in failed"},
		{"expired", func(c map[string]any) *smart.Key { c["exp"] = time.Now().Add(-10 * time.Minute).Unix(); return nil }, 401, "sign-in failed"},
		{"bad signature", func(c map[string]any) *smart.Key { return other }, 401, "sign-in failed"},
		{"no role", func(c map[string]any) *smart.Key {
			c["groups"] = []string{"staff"}
			c["preferred_username"] = "nobody"
			return nil
		}, 403, "no console role"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idp.mu.Lock()
			idp.mint = tc.mint
			idp.mu.Unlock()
			c := client(t)
			code, body := get(t, c, base+"/login/oidc")
			if code != tc.code || !strings.Contains(body, map[bool]string{true: `id="signedin"`, false: tc.want}[code == 200]) {
				t.Fatalf("sign-in: %d %s", code, body)
			}
			if code != 200 {
				if _, body := get(t, c, base+"/triage"); !strings.Contains(body, `id="login"`) {
					t.Errorf("refused sign-in has a session")
				}
				return
			}
			if code, body := get(t, c, base+"/"); code != 200 || !strings.Contains(body, "<h1>Flows</h1>") {
				t.Fatalf("dashboard after sign-in: %d", code)
			}
			page := map[string]string{"Dead letters": "/dlq", "Reconciliation": "/recon"}[tc.want]
			if code, _ := get(t, c, base+page); code != 200 {
				t.Errorf("%s after sign-in: %d", page, code)
			}
			if !strings.Contains(body, "Signed in as dana") {
				t.Errorf("signed-in page: %s", body)
			}
			if page == "/recon" {
				if code, _ := get(t, c, base+"/dlq"); code != http.StatusForbidden {
					t.Errorf("finance-analyst by OIDC on /dlq: %d", code)
				}
			}
		})
	}

	// A callback this browser did not start is refused.
	if code, _ := get(t, client(t), base+oidcCallbackPath+"?code=x&state=forged"); code != http.StatusBadRequest {
		t.Errorf("forged state: %d", code)
	}
	// Password users still sign in.
	if _, code := login(t, base, "finance", pw["finance"]); code != 200 {
		t.Errorf("password login beside OIDC: %d", code)
	}

	var trail []string
	_ = audit.Read(context.Background(), wb.js, "audit.>", func(e audit.Entry) error {
		for _, ev := range e.Events {
			trail = append(trail, ev.Actor+" "+ev.Action+" "+ev.Outcome+" "+ev.Detail)
		}
		return nil
	})
	all := strings.Join(trail, "\n")
	for _, want := range []string{"console:dana console-login ok oidc " + idp.url, "console:nobody console-login refused oidc: no groups value",
		"console:oidc console-login refused oidc: id_token nonce", "console:oidc console-login refused oidc: id_token aud",
		"console:oidc console-login refused oidc: id_token expired", "console:oidc console-login refused oidc: id_token signature",
		"console:oidc console-login refused oidc: id_token iss", "console:oidc console-login refused oidc: unknown or expired state",
		"console:finance console-login ok"} {
		if !strings.Contains(all, want) {
			t.Errorf("audit lacks %q:\n%s", want, all)
		}
	}
}

func TestOIDCConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  OIDCConfig
		want string
	}{
		{"no client", OIDCConfig{Issuer: "https://idp", RedirectURL: "https://c/login/oidc/callback"}, "client_id"},
		{"redirect path", OIDCConfig{Issuer: "https://idp", ClientID: "c", RedirectURL: "https://c/cb"}, "redirect_url"},
		{"unknown role", OIDCConfig{Issuer: "https://idp", ClientID: "c", RedirectURL: "https://c/login/oidc/callback", Roles: map[string]string{"g": "admin"}}, `roles["g"]`},
		{"plain http issuer", OIDCConfig{Issuer: "http://idp.example", ClientID: "c", RedirectURL: "https://c/login/oidc/callback"}, "issuer"},
		{"empty env", OIDCConfig{Issuer: "https://idp", ClientID: "c", RedirectURL: "https://c/login/oidc/callback", ClientSecretEnv: "SINEW_TEST_NO_SUCH_SECRET"}, "client_secret_env"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := newOIDC(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}
