package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sinewhq/sinew/pkg/smart"
)

// OIDCConfig is sign-in through an OpenID Connect provider (authorization
// code flow with PKCE). Off while Issuer is empty.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; its discovery document is
	// Issuer + "/.well-known/openid-configuration" and must name the same issuer.
	Issuer string `yaml:"issuer"`
	// ClientID is the console's client at the provider (the ID token's aud).
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the client secret (trailing newline ignored);
	// else ClientSecretEnv names the environment variable that does. The
	// secret is sent to the token endpoint with HTTP Basic authentication.
	ClientSecretFile string `yaml:"client_secret_file"`
	ClientSecretEnv  string `yaml:"client_secret_env"`
	// RedirectURL is registered at the provider; its path must be
	// /login/oidc/callback (e.g. https://console.example/login/oidc/callback).
	RedirectURL string `yaml:"redirect_url"`
	// RolesClaim is the ID token claim with the user's groups or roles (a
	// string or a list of strings), default "groups".
	RolesClaim string `yaml:"roles_claim"`
	// Roles maps a value of RolesClaim to a console role; the first of the
	// user's values with a mapping decides. No mapped value: refused (403).
	Roles map[string]string `yaml:"roles"`
	// UserClaim names the user in sessions and the audit trail, default
	// "preferred_username" (falling back to "sub").
	UserClaim string `yaml:"user_claim"`
}

const (
	oidcCallbackPath = "/login/oidc/callback"
	oidcStateCookie  = "sinew_oidc"
	oidcPendingTTL   = 10 * time.Minute
	oidcClockSkew    = time.Minute
	// maxPendingSignIns bounds the sign-ins begun and not finished (each
	// costs a little memory until its 10 minutes pass).
	maxPendingSignIns = 10000
)

// oidcSignIn is a configured provider: its discovery document and keys,
// fetched on first use, and the sign-ins under way.
type oidcSignIn struct {
	cfg    OIDCConfig
	secret string
	http   *http.Client

	mu      sync.Mutex
	disc    *discovery
	keys    smart.JWKS
	pending map[string]pendingSignIn // state → its verifier and nonce
}

type discovery struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
}

type pendingSignIn struct {
	verifier, nonce string
	expires         time.Time
}

// newOIDC checks cfg and reads the client secret.
func newOIDC(cfg OIDCConfig) (*oidcSignIn, error) {
	if cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("console: oidc: client_id and redirect_url are required with issuer")
	}
	if u, err := url.Parse(cfg.Issuer); err != nil || !(u.Scheme == "https" || u.Scheme == "http" && loopback(u.Hostname())) {
		return nil, errors.New("console: oidc: issuer: want an https URL (http only on a loopback host)")
	}
	if u, err := url.Parse(cfg.RedirectURL); err != nil || u.Path != oidcCallbackPath {
		return nil, fmt.Errorf("console: oidc: redirect_url: want a URL with path %s", oidcCallbackPath)
	}
	for v, role := range cfg.Roles {
		switch role {
		case RoleOperator, RoleFinance, RolePrivacy:
		default:
			return nil, fmt.Errorf("console: oidc: roles[%q]: role %q: want %s, %s or %s", v, role, RoleOperator, RoleFinance, RolePrivacy)
		}
	}
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = "groups"
	}
	if cfg.UserClaim == "" {
		cfg.UserClaim = "preferred_username"
	}
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	o := &oidcSignIn{cfg: cfg, http: &http.Client{Timeout: 10 * time.Second}, pending: map[string]pendingSignIn{}}
	switch {
	case cfg.ClientSecretFile != "":
		b, err := os.ReadFile(cfg.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("console: oidc: client_secret_file: %w", err)
		}
		o.secret = strings.TrimRight(string(b), "\r\n")
	case cfg.ClientSecretEnv != "":
		o.secret = os.Getenv(cfg.ClientSecretEnv)
		if o.secret == "" {
			return nil, fmt.Errorf("console: oidc: client_secret_env: %s is empty", cfg.ClientSecretEnv)
		}
	}
	return o, nil
}

func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// getJSON fetches u into v.
func (o *oidcSignIn) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	r, err := o.http.Do(req)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, r.Status)
	}
	return json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v)
}

// discover is the provider's discovery document, fetched once.
func (o *oidcSignIn) discover(ctx context.Context) (*discovery, error) {
	o.mu.Lock()
	d := o.disc
	o.mu.Unlock()
	if d != nil {
		return d, nil
	}
	d = &discovery{}
	if err := o.getJSON(ctx, o.cfg.Issuer+"/.well-known/openid-configuration", d); err != nil {
		return nil, fmt.Errorf("console: oidc discovery: %w", err)
	}
	if strings.TrimSuffix(d.Issuer, "/") != o.cfg.Issuer || d.AuthorizationEndpoint == "" || d.TokenEndpoint == "" || d.JWKSURI == "" {
		return nil, errors.New("console: oidc discovery: issuer differs from the configured one or an endpoint is missing")
	}
	o.mu.Lock()
	o.disc = d
	o.mu.Unlock()
	return d, nil
}

// jwks is the provider's keys; refresh fetches them anew (a kid not
// seen yet: the provider rotated its keys).
func (o *oidcSignIn) jwks(ctx context.Context, d *discovery, refresh bool) (smart.JWKS, error) {
	o.mu.Lock()
	k := o.keys
	o.mu.Unlock()
	if len(k.Keys) > 0 && !refresh {
		return k, nil
	}
	if err := o.getJSON(ctx, d.JWKSURI, &k); err != nil {
		return k, fmt.Errorf("console: oidc jwks: %w", err)
	}
	o.mu.Lock()
	o.keys = k
	o.mu.Unlock()
	return k, nil
}

// start redirects the browser to the provider's authorization endpoint,
// the state also in a cookie so the callback is this browser's.
func (w *web) oidcStart(rw http.ResponseWriter, r *http.Request) {
	o := w.oidc
	d, err := o.discover(r.Context())
	if err != nil {
		http.Error(rw, "sign-in provider unavailable", http.StatusBadGateway)
		return
	}
	state, nonce, verifier := token(), token(), token()
	now := time.Now()
	o.mu.Lock()
	for s, p := range o.pending {
		if now.After(p.expires) {
			delete(o.pending, s)
		}
	}
	if len(o.pending) >= maxPendingSignIns {
		o.mu.Unlock()
		http.Error(rw, "too many sign-ins under way; try again in a few minutes", http.StatusTooManyRequests)
		return
	}
	o.pending[state] = pendingSignIn{verifier: verifier, nonce: nonce, expires: now.Add(oidcPendingTTL)}
	o.mu.Unlock()
	challenge := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {o.cfg.ClientID}, "redirect_uri": {o.cfg.RedirectURL},
		"scope": {"openid profile"}, "state": {state}, "nonce": {nonce},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(challenge[:])}, "code_challenge_method": {"S256"}}
	// Lax, not Strict: the callback is a top-level navigation from the provider.
	http.SetCookie(rw, &http.Cookie{Name: oidcStateCookie, Value: state, Path: oidcCallbackPath, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil, MaxAge: int(oidcPendingTTL.Seconds())})
	sep := "?"
	if strings.Contains(d.AuthorizationEndpoint, "?") {
		sep = "&"
	}
	http.Redirect(rw, r, d.AuthorizationEndpoint+sep+q.Encode(), http.StatusFound)
}

// oidcError is why a sign-in was refused: the audit detail, never a
// token's or claim's value.
type oidcError struct{ why string }

func (e *oidcError) Error() string { return "console: oidc sign-in refused: " + e.why }

func refuse(why string) error { return &oidcError{why: why} }

// oidcCallback takes the provider's answer: checks state, exchanges the
// code, verifies the ID token, maps the role and opens a session.
func (w *web) oidcCallback(rw http.ResponseWriter, r *http.Request) {
	o := w.oidc
	state := r.FormValue("state")
	c, err := r.Cookie(oidcStateCookie)
	http.SetCookie(rw, &http.Cookie{Name: oidcStateCookie, Value: "", Path: oidcCallbackPath, MaxAge: -1})
	o.mu.Lock()
	p, ok := o.pending[state]
	delete(o.pending, state)
	o.mu.Unlock()
	anon := &session{user: User{Name: "oidc"}}
	if !ok || err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 || time.Now().After(p.expires) {
		w.record(r.Context(), anon, "console-login", "refused", "oidc: unknown or expired state", nil)
		w.loginRefused(rw, http.StatusBadRequest, "sign-in expired or not started here; try again")
		return
	}
	if e := r.FormValue("error"); e != "" {
		w.record(r.Context(), anon, "console-login", "refused", "oidc: the provider answered an error", nil)
		w.loginRefused(rw, http.StatusUnauthorized, "the sign-in provider refused the sign-in")
		return
	}
	name, role, err := o.exchange(r.Context(), r.FormValue("code"), p)
	if err != nil {
		why := "oidc: token exchange or ID token check failed"
		var oe *oidcError
		if errors.As(err, &oe) {
			why = "oidc: " + oe.why
		}
		w.record(r.Context(), anon, "console-login", "refused", why, nil)
		w.loginRefused(rw, http.StatusUnauthorized, "sign-in failed")
		return
	}
	u := User{Name: name, Role: role}
	if role == "" {
		s := &session{user: u}
		w.record(r.Context(), s, "console-login", "refused", "oidc: no "+o.cfg.RolesClaim+" value maps to a console role", nil)
		w.loginRefused(rw, http.StatusForbidden, "signed in, but no console role is granted to you")
		return
	}
	s := w.startSession(rw, r, u, "oidc "+o.cfg.Issuer)
	// A page, not a redirect: a redirect chain begun at the provider is
	// cross-site, so the browser would withhold the SameSite=Strict session
	// cookie on it; the page's own navigation to / is same-site.
	w.render(rw, "signedin", s, nil)
}

func (w *web) loginRefused(rw http.ResponseWriter, code int, msg string) {
	rw.WriteHeader(code)
	w.render(rw, "login", nil, w.loginData(msg))
}

// exchange trades code for tokens and checks the ID token: signature by
// kid, iss, aud (azp when several), exp, nonce. It returns the user's name
// and mapped role ("" when none maps).
func (o *oidcSignIn) exchange(ctx context.Context, code string, p pendingSignIn) (string, string, error) {
	d, err := o.discover(ctx)
	if err != nil {
		return "", "", err
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {o.cfg.RedirectURL},
		"code_verifier": {p.verifier}, "client_id": {o.cfg.ClientID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if o.secret != "" {
		req.SetBasicAuth(url.QueryEscape(o.cfg.ClientID), url.QueryEscape(o.secret))
	}
	resp, err := o.http.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("console: oidc token endpoint: %w", err)
	}
	defer resp.Body.Close()
	var tr struct {
		IDToken string `json:"id_token"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", refuse("token endpoint answered " + resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil || tr.IDToken == "" {
		return "", "", refuse("token response has no id_token")
	}
	return o.verify(ctx, d, tr.IDToken, p.nonce, time.Now())
}

// idClaims are the ID token claims the console checks.
type idClaims struct {
	Iss   string          `json:"iss"`
	Sub   string          `json:"sub"`
	Aud   json.RawMessage `json:"aud"`
	Azp   string          `json:"azp"`
	Exp   int64           `json:"exp"`
	Nonce string          `json:"nonce"`
}

func (o *oidcSignIn) verify(ctx context.Context, d *discovery, idToken, nonce string, now time.Time) (string, string, error) {
	algs := []string{smart.RS256, smart.ES256, smart.RS384, smart.ES384}
	keys, err := o.jwks(ctx, d, false)
	if err != nil {
		return "", "", err
	}
	pb, err := smart.VerifyJWS(idToken, keys, algs...)
	if errors.Is(err, smart.ErrUnknownKid) {
		if keys, err = o.jwks(ctx, d, true); err != nil {
			return "", "", err
		}
		pb, err = smart.VerifyJWS(idToken, keys, algs...)
	}
	switch {
	case errors.Is(err, smart.ErrSignature):
		return "", "", refuse("id_token signature does not verify")
	case errors.Is(err, smart.ErrUnknownKid):
		return "", "", refuse("id_token kid not in the provider's JWKS")
	case errors.Is(err, smart.ErrAlg):
		return "", "", refuse("id_token algorithm not accepted")
	case err != nil:
		return "", "", refuse("id_token malformed")
	}
	var c idClaims
	var all map[string]any
	if json.Unmarshal(pb, &c) != nil || json.Unmarshal(pb, &all) != nil {
		return "", "", refuse("id_token claims malformed")
	}
	var aud []string
	if json.Unmarshal(c.Aud, &aud) != nil {
		var one string
		if json.Unmarshal(c.Aud, &one) != nil {
			return "", "", refuse("id_token aud malformed")
		}
		aud = []string{one}
	}
	audOK := false
	for _, a := range aud {
		audOK = audOK || a == o.cfg.ClientID
	}
	switch {
	case strings.TrimSuffix(c.Iss, "/") != o.cfg.Issuer:
		return "", "", refuse("id_token iss is not the configured issuer")
	case !audOK || (len(aud) > 1 && c.Azp != o.cfg.ClientID):
		return "", "", refuse("id_token aud is not this client")
	case c.Exp == 0 || now.After(time.Unix(c.Exp, 0).Add(oidcClockSkew)):
		return "", "", refuse("id_token expired")
	case subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(nonce)) != 1:
		return "", "", refuse("id_token nonce does not match the sign-in's")
	case c.Sub == "":
		return "", "", refuse("id_token has no sub")
	}
	name, _ := all[o.cfg.UserClaim].(string)
	if name == "" {
		name = c.Sub
	}
	var values []string
	switch v := all[o.cfg.RolesClaim].(type) {
	case string:
		values = []string{v}
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				values = append(values, s)
			}
		}
	}
	for _, v := range values {
		if role, ok := o.cfg.Roles[v]; ok {
			return name, role, nil
		}
	}
	return name, "", nil
}
