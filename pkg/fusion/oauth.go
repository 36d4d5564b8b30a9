package fusion

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// TokenSource returns a bearer token for the next request. Implementations
// cache; they are called on every request.
type TokenSource func(ctx context.Context) (string, error)

// JWTGrantType is the OAuth grant of a JWT assertion (RFC 7523).
const JWTGrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// JWTConfig configures JWTAssertion: Sinew signs an assertion for Subject
// (the integration user) with its private key and trades it at TokenURL
// for an access token.
type JWTConfig struct {
	TokenURL string // e.g. https://idcs-….identity.oraclecloud.com/oauth2/v1/token
	ClientID string // iss of the assertion, client_id of the request
	Subject  string // sub: the Fusion user the token acts for
	Scope    string // e.g. urn:opc:resource:fusion:<pod>:…
	// Audience is the assertion's aud; TokenURL when empty.
	Audience string
	// ClientSecret, when set, authenticates the client with Basic on the
	// token request (confidential clients).
	ClientSecret string
	Key          crypto.Signer // RSA private key; signed RS256
	KeyID        string        // kid header (the certificate alias)
	// Lifetime of each assertion; 5 minutes when 0.
	Lifetime time.Duration
	// Leeway renews the token this long before it expires; 60s when 0.
	Leeway     time.Duration
	HTTPClient *http.Client
	Now        func() time.Time // tests
}

// JWTAssertion returns a TokenSource that obtains access tokens with a
// signed JWT assertion and caches each until shortly before it expires.
// Errors of the token endpoint are *Error values (4xx permanent, 5xx and
// 429 temporary).
func JWTAssertion(cfg JWTConfig) TokenSource {
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = 5 * time.Minute
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = 60 * time.Second
	}
	if cfg.Audience == "" {
		cfg.Audience = cfg.TokenURL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	var (
		mu     sync.Mutex
		token  string
		expiry time.Time
	)
	return func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if token != "" && cfg.Now().Before(expiry.Add(-cfg.Leeway)) {
			return token, nil
		}
		tok, ttl, err := fetchJWTToken(ctx, hc, cfg)
		if err != nil {
			return "", err
		}
		token, expiry = tok, cfg.Now().Add(ttl)
		return token, nil
	}
}

func fetchJWTToken(ctx context.Context, hc *http.Client, cfg JWTConfig) (string, time.Duration, error) {
	if cfg.TokenURL == "" || cfg.ClientID == "" || cfg.Subject == "" || cfg.Key == nil {
		return "", 0, errors.New("fusion: oauth: TokenURL, ClientID, Subject and Key are required")
	}
	assertion, err := SignJWT(cfg.Key, cfg.KeyID, map[string]any{
		"iss": cfg.ClientID, "sub": cfg.Subject, "aud": cfg.Audience,
		"iat": cfg.Now().Unix(), "exp": cfg.Now().Add(cfg.Lifetime).Unix(), "jti": randomID(),
	})
	if err != nil {
		return "", 0, fmt.Errorf("fusion: oauth: %w", err)
	}
	form := url.Values{"grant_type": {JWTGrantType}, "assertion": {assertion}, "client_id": {cfg.ClientID}}
	if cfg.Scope != "" {
		form.Set("scope", cfg.Scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("fusion: oauth: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if cfg.ClientSecret != "" {
		req.SetBasicAuth(cfg.ClientID, cfg.ClientSecret)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("fusion: oauth: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var out struct {
		AccessToken string      `json:"access_token"`
		TokenType   string      `json:"token_type"`
		ExpiresIn   json.Number `json:"expires_in"`
		Error       string      `json:"error"`
		Description string      `json:"error_description"`
	}
	jerr := json.Unmarshal(raw, &out)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{StatusCode: resp.StatusCode, Title: out.Error, Detail: out.Description}
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			e.RetryAfter = ParseRetryAfter(ra, time.Now())
		}
		if e.Title == "" {
			e.Title = http.StatusText(resp.StatusCode)
		}
		return "", 0, fmt.Errorf("fusion: oauth: %w", e)
	}
	if jerr != nil || out.AccessToken == "" {
		return "", 0, &ProtocolError{Op: "oauth token", Err: fmt.Errorf("no access_token (%v)", jerr)}
	}
	secs, err := out.ExpiresIn.Int64()
	if err != nil || secs <= 0 {
		secs = 300 // no expiry given: assume a short one rather than forever
	}
	return out.AccessToken, time.Duration(secs) * time.Second, nil
}

// SignJWT returns a compact RS256 JWT of claims signed with key (RSA).
func SignJWT(key crypto.Signer, kid string, claims map[string]any) (string, error) {
	if _, ok := key.Public().(*rsa.PublicKey); !ok {
		return "", errors.New("jwt: RS256 needs an RSA key")
	}
	hdr := map[string]any{"alg": "RS256", "typ": "JWT"}
	if kid != "" {
		hdr["kid"] = kid
	}
	hb, err := json.Marshal(hdr)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(hb) + "." + enc.EncodeToString(cb)
	sum := sha256.Sum256([]byte(signing))
	sig, err := key.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("jwt: signing: %w", err)
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
