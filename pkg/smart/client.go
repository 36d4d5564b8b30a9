package smart

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// AssertionType is the client_assertion_type of a JWT assertion.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// ClientConfig is a backend app's registration with one Epic instance.
type ClientConfig struct {
	TokenURL string
	ClientID string
	Scope    string // e.g. "system/Practitioner.read system/Encounter.read"
	Key      *Key
	// RenewBefore renews a cached token this long before it expires
	// (default 60s, or a tenth of a short token's life).
	RenewBefore time.Duration
	HTTP        *http.Client     // default: 30s timeout
	Now         func() time.Time // default time.Now (tests move the clock)
}

// TokenError is the token endpoint's refusal (RFC 6749 §5.2).
type TokenError struct {
	Status      int
	Code        string // invalid_client, unauthorized_client, invalid_grant...
	Description string
}

func (e *TokenError) Error() string {
	if e.Unmapped() {
		return fmt.Sprintf("smart: token refused (HTTP %d %s): the client is registered but not yet mapped to a background user on the Epic side; ask the Epic administrator to map it", e.Status, e.Code)
	}
	return fmt.Sprintf("smart: token refused (HTTP %d %s: %s)", e.Status, e.Code, e.Description)
}

// Unmapped reports Epic's answer for a client no background user is
// mapped to yet: a person must act, retrying cannot help.
func (e *TokenError) Unmapped() bool { return e.Code == "unauthorized_client" }

// Permanent: a refused assertion is not cured by retrying (5xx is not a
// TokenError).
func (e *TokenError) Permanent() bool {
	return e.Status < 500 && e.Status != http.StatusTooManyRequests
}

// TokenSource gets, caches and renews access tokens. Safe for concurrent
// use: one request at a time refreshes, the others wait for it.
type TokenSource struct {
	cfg ClientConfig
	mu  sync.Mutex
	tok string
	exp time.Time
	n   int
}

// NewTokenSource returns a token source for cfg.
func NewTokenSource(cfg ClientConfig) (*TokenSource, error) {
	if cfg.TokenURL == "" || cfg.ClientID == "" || cfg.Key == nil {
		return nil, fmt.Errorf("smart: token URL, client id and key are required")
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RenewBefore == 0 {
		cfg.RenewBefore = time.Minute
	}
	return &TokenSource{cfg: cfg}, nil
}

// Fetched is how many tokens were fetched (tests check the cache).
func (s *TokenSource) Fetched() int { s.mu.Lock(); defer s.mu.Unlock(); return s.n }

// Invalidate drops the cached token (after a 401 from the resource server).
func (s *TokenSource) Invalidate() { s.mu.Lock(); s.tok = ""; s.mu.Unlock() }

// Token returns a valid access token, fetching one when none is cached
// or the cached one is within RenewBefore of its expiry.
func (s *TokenSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	if s.tok != "" && now.Before(s.exp) {
		return s.tok, nil
	}
	tok, life, err := s.fetch(ctx, now)
	if err != nil {
		return "", err
	}
	renew := s.cfg.RenewBefore
	if renew > life/10 && life < 10*renew {
		renew = life / 10
	}
	s.tok, s.exp, s.n = tok, now.Add(life-renew), s.n+1
	return tok, nil
}

func (s *TokenSource) fetch(ctx context.Context, now time.Time) (string, time.Duration, error) {
	assertion, _, err := s.cfg.Key.Assertion(s.cfg.ClientID, s.cfg.TokenURL, now, MaxAssertionLifetime)
	if err != nil {
		return "", 0, err
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {AssertionType},
		"client_assertion":      {assertion},
	}
	if s.cfg.Scope != "" {
		form.Set("scope", s.cfg.Scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("smart: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.cfg.HTTP.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("smart: token request: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" && resp.StatusCode < 500 {
			return "", 0, &TokenError{Status: resp.StatusCode, Code: e.Error, Description: e.Description}
		}
		return "", 0, fmt.Errorf("smart: token endpoint answered HTTP %d", resp.StatusCode)
	}
	var t struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" {
		return "", 0, fmt.Errorf("smart: token response without access_token")
	}
	if !strings.EqualFold(t.TokenType, "bearer") {
		return "", 0, fmt.Errorf("smart: token type %q, want Bearer", t.TokenType)
	}
	if t.ExpiresIn <= 0 {
		t.ExpiresIn = 300 // no expires_in: assume the shortest common life
	}
	return t.AccessToken, time.Duration(t.ExpiresIn) * time.Second, nil
}

// JWKSHandler serves the keys' JWKS (public halves only) for the Epic
// administrator to register, e.g. at /.well-known/jwks.json.
func JWKSHandler(keys ...*Key) http.Handler {
	b, _ := json.Marshal(Set(keys...))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = w.Write(b)
	})
}
