package fusionsim

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// OAuth: POST /oauth2/v1/token trades an RS256 JWT assertion (grant type
// urn:ietf:params:oauth:grant-type:jwt-bearer), verified against the
// configured public keys, for a bearer token the Fusion resources accept
// until it expires. Standard library only.

// TokenPath is the simulator's token endpoint (IDCS's path).
const TokenPath = "/oauth2/v1/token"

// OAuthConfig configures the token endpoint.
type OAuthConfig struct {
	// PublicKeyFiles are PEM files (PUBLIC KEY, RSA PUBLIC KEY or
	// CERTIFICATE blocks) whose keys may sign assertions.
	PublicKeyFiles []string `yaml:"public_keys"`
	// PublicKeysPEM holds PEM blocks directly (tests).
	PublicKeysPEM string `yaml:"-"`
	// Audience, when set, must be (one of) the assertion's aud.
	Audience string `yaml:"audience"`
	// TokenTTL is the lifetime of issued tokens; 1h when 0.
	TokenTTL time.Duration `yaml:"token_ttl"`
}

func loadOAuthKeys(cfg OAuthConfig) ([]*rsa.PublicKey, error) {
	var keys []*rsa.PublicKey
	parse := func(src []byte, name string) error {
		for {
			var b *pem.Block
			b, src = pem.Decode(src)
			if b == nil {
				return nil
			}
			var pub any
			var err error
			switch b.Type {
			case "PUBLIC KEY":
				pub, err = x509.ParsePKIXPublicKey(b.Bytes)
			case "RSA PUBLIC KEY":
				pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
			case "CERTIFICATE":
				var c *x509.Certificate
				if c, err = x509.ParseCertificate(b.Bytes); err == nil {
					pub = c.PublicKey
				}
			default:
				continue
			}
			if err != nil {
				return fmt.Errorf("fusionsim: oauth key %s: %w", name, err)
			}
			k, ok := pub.(*rsa.PublicKey)
			if !ok {
				return fmt.Errorf("fusionsim: oauth key %s: not an RSA key", name)
			}
			keys = append(keys, k)
		}
	}
	if cfg.PublicKeysPEM != "" {
		if err := parse([]byte(cfg.PublicKeysPEM), "(inline)"); err != nil {
			return nil, err
		}
	}
	for _, f := range cfg.PublicKeyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("fusionsim: oauth key: %w", err)
		}
		n := len(keys)
		if err := parse(b, f); err != nil {
			return nil, err
		}
		if len(keys) == n {
			return nil, fmt.Errorf("fusionsim: oauth key %s: no PEM public key or certificate", f)
		}
	}
	return keys, nil
}

// oauthError answers RFC 6749's error shape.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (s *Server) tokenPost(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q is not supported (jwt-bearer only)", gt))
		return
	}
	claims, err := s.verifyAssertion(r.PostForm.Get("assertion"), time.Now())
	if err != nil {
		s.log.Info("oauth assertion refused", "err", err)
		oauthError(w, http.StatusBadRequest, "invalid_grant", err.Error())
		return
	}
	ttl := s.cfg.OAuth.TokenTTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	tok := "fsim-" + hex.EncodeToString(b[:])
	s.mu.Lock()
	now := time.Now()
	for t, exp := range s.tokens { // forget expired tokens
		if now.After(exp) {
			delete(s.tokens, t)
		}
	}
	s.tokens[tok] = now.Add(ttl)
	s.mu.Unlock()
	s.log.Info("oauth token issued", "sub", claims["sub"], "ttl", ttl)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": int64((ttl + time.Second - 1) / time.Second),
	})
}

// verifyAssertion checks a compact RS256 JWT: signature against the
// configured keys, exp in the future, iat/nbf not in the future, iss and
// sub present, aud when an audience is configured.
func (s *Server) verifyAssertion(jwt string, now time.Time) (map[string]any, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, errors.New("assertion is not a compact JWT")
	}
	enc := base64.RawURLEncoding
	hb, err1 := enc.DecodeString(parts[0])
	cb, err2 := enc.DecodeString(parts[1])
	sig, err3 := enc.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, errors.New("assertion is not base64url")
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hb, &hdr); err != nil || hdr.Alg != "RS256" {
		return nil, fmt.Errorf("assertion alg %q: want RS256", hdr.Alg)
	}
	if len(s.oauthKeys) == 0 {
		return nil, errors.New("no public keys are configured for assertions")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	verified := false
	for _, k := range s.oauthKeys {
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, errors.New("assertion signature does not verify against any configured key")
	}
	dec := json.NewDecoder(strings.NewReader(string(cb)))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return nil, errors.New("assertion claims are not a JSON object")
	}
	num := func(k string) (int64, bool) {
		n, ok := claims[k].(json.Number)
		if !ok {
			return 0, false
		}
		v, err := n.Int64()
		return v, err == nil
	}
	const skew = 30 * time.Second
	exp, ok := num("exp")
	if !ok {
		return nil, errors.New("assertion has no exp")
	}
	if now.After(time.Unix(exp, 0).Add(skew)) {
		return nil, errors.New("assertion has expired")
	}
	for _, k := range []string{"iat", "nbf"} {
		if v, ok := num(k); ok && time.Unix(v, 0).After(now.Add(skew)) {
			return nil, fmt.Errorf("assertion %s is in the future", k)
		}
	}
	for _, k := range []string{"iss", "sub"} {
		if v, _ := claims[k].(string); v == "" {
			return nil, fmt.Errorf("assertion has no %s", k)
		}
	}
	if want := s.cfg.OAuth.Audience; want != "" {
		okAud := false
		switch a := claims["aud"].(type) {
		case string:
			okAud = a == want
		case []any:
			for _, v := range a {
				okAud = okAud || v == want
			}
		}
		if !okAud {
			return nil, fmt.Errorf("assertion aud is not %s", want)
		}
	}
	return claims, nil
}

// issuedToken reports whether tok is an unexpired token of the endpoint.
func (s *Server) issuedToken(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, exp := range s.tokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(tok)) == 1 {
			return time.Now().Before(exp)
		}
	}
	return false
}
