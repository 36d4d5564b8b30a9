package smart_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/smart"
)

func TestAssertionVerifiesAndEachRefusal(t *testing.T) {
	for _, alg := range []string{smart.RS384, smart.ES384} {
		t.Run(alg, func(t *testing.T) {
			k, err := smart.GenerateKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			other, _ := smart.GenerateKey(alg)
			other.Kid = k.Kid // same kid, wrong key
			now := time.Unix(1_800_000_000, 0)
			const aud = "https://epic.example/oauth2/token"
			tok, c, err := k.Assertion("app-1", aud, now, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if time.Unix(c.Exp, 0).Sub(now) != smart.MaxAssertionLifetime {
				t.Errorf("exp not capped at 5 minutes: %d", c.Exp-now.Unix())
			}
			set := smart.Set(k)
			g := smart.NewReplayGuard()
			if _, err := g.Check(tok, "app-1", aud, set, now); err != nil {
				t.Fatalf("valid assertion refused: %v", err)
			}
			for _, tc := range []struct {
				name string
				run  func() error
				want error
			}{
				{"replayed jti", func() error { _, err := g.Check(tok, "app-1", aud, set, now); return err }, smart.ErrReplayed},
				{"wrong key", func() error {
					bad, _, _ := other.Assertion("app-1", aud, now, 0)
					_, err := g.Check(bad, "app-1", aud, set, now)
					return err
				}, smart.ErrSignature},
				{"unknown kid", func() error {
					_, err := g.Check(tok, "app-1", aud, smart.JWKS{}, now)
					return err
				}, smart.ErrUnknownKid},
				{"expired", func() error {
					old, _, _ := k.Assertion("app-1", aud, now.Add(-10*time.Minute), 0)
					_, err := g.Check(old, "app-1", aud, set, now)
					return err
				}, smart.ErrExpired},
				{"exp too far", func() error {
					long, _ := k.Sign(smart.Claims{Iss: "app-1", Sub: "app-1", Aud: aud, Jti: smart.NewJTI(), Exp: now.Add(time.Hour).Unix()})
					_, err := g.Check(long, "app-1", aud, set, now)
					return err
				}, smart.ErrTooLong},
				{"wrong audience", func() error {
					a, _, _ := k.Assertion("app-1", "https://elsewhere/token", now, 0)
					_, err := g.Check(a, "app-1", aud, set, now)
					return err
				}, smart.ErrAudience},
				{"another client's assertion", func() error {
					a, _, _ := k.Assertion("app-2", aud, now, 0)
					_, err := g.Check(a, "app-1", aud, set, now)
					return err
				}, smart.ErrIssuer},
				{"garbage", func() error { _, err := g.Check("a.b", "app-1", aud, set, now); return err }, smart.ErrMalformed},
			} {
				if err := tc.run(); !errors.Is(err, tc.want) {
					t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
				}
			}
		})
	}
}

func TestKeyPEMRoundTrip(t *testing.T) {
	for _, alg := range []string{smart.RS384, smart.ES384} {
		k, _ := smart.GenerateKey(alg)
		p, err := k.MarshalPEM()
		if err != nil {
			t.Fatal(err)
		}
		back, err := smart.ParseKeyPEM(p, "")
		if err != nil || back.Alg != alg || back.Kid != k.Kid {
			t.Fatalf("%s: %v %+v", alg, err, back)
		}
	}
}

func TestJWKSServedWithKidAndNoPrivateParts(t *testing.T) {
	k1, _ := smart.GenerateKey(smart.RS384)
	k2, _ := smart.GenerateKey(smart.ES384)
	srv := httptest.NewServer(smart.JWKSHandler(k1, k2))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw struct{ Keys []map[string]string }
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Keys) != 2 || raw.Keys[0]["kid"] != k1.Kid || raw.Keys[1]["crv"] != "P-384" {
		t.Fatalf("%+v", raw)
	}
	for _, k := range raw.Keys {
		if _, ok := k["d"]; ok {
			t.Error("private exponent published")
		}
	}
}

// tokenServer is a minimal token endpoint: it checks the assertion and
// answers a token living life.
func tokenServer(t *testing.T, k *smart.Key, life int, refuse string, clock func() time.Time) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	g := smart.NewReplayGuard()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if refuse != "" {
			w.WriteHeader(400)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": refuse, "error_description": "x"})
			return
		}
		if r.Form.Get("client_assertion_type") != smart.AssertionType || r.Form.Get("grant_type") != "client_credentials" {
			w.WriteHeader(400)
			return
		}
		if _, err := g.Check(r.Form.Get("client_assertion"), "app-1", srv.URL, smart.Set(k), clock()); err != nil {
			w.WriteHeader(400)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
			return
		}
		n.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "tok", "token_type": "Bearer", "expires_in": life})
	}))
	return srv, &n
}

func TestTokenCachedAndRenewedBeforeExpiry(t *testing.T) {
	k, _ := smart.GenerateKey(smart.ES384)
	now := time.Now()
	srv, n := tokenServer(t, k, 3600, "", func() time.Time { return now })
	defer srv.Close()
	ts, err := smart.NewTokenSource(smart.ClientConfig{TokenURL: srv.URL, ClientID: "app-1", Key: k, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := ts.Token(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n.Load() != 1 {
		t.Fatalf("%d fetches for a cached token", n.Load())
	}
	now = now.Add(3600*time.Second - 30*time.Second) // within RenewBefore
	if _, err := ts.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 {
		t.Fatalf("token not renewed before expiry (%d fetches)", n.Load())
	}
}

func TestUnmappedClientIsAClearError(t *testing.T) {
	k, _ := smart.GenerateKey(smart.RS384)
	srv, _ := tokenServer(t, k, 3600, "unauthorized_client", time.Now)
	defer srv.Close()
	ts, _ := smart.NewTokenSource(smart.ClientConfig{TokenURL: srv.URL, ClientID: "app-1", Key: k})
	_, err := ts.Token(context.Background())
	var te *smart.TokenError
	if !errors.As(err, &te) || !te.Unmapped() || !te.Permanent() {
		t.Fatalf("%v", err)
	}
	t.Log(err)
}

func TestVerifyJWSOIDCAlgorithms(t *testing.T) {
	for _, alg := range []string{smart.RS256, smart.ES256, smart.RS384, smart.ES384} {
		t.Run(alg, func(t *testing.T) {
			k, err := smart.GenerateKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := k.Sign(map[string]any{"sub": "u1", "aud": []string{"a", "b"}})
			if err != nil {
				t.Fatal(err)
			}
			pb, err := smart.VerifyJWS(tok, smart.Set(k), smart.RS256, smart.ES256, smart.RS384, smart.ES384)
			if err != nil || !strings.Contains(string(pb), `"sub":"u1"`) {
				t.Fatalf("verify: %v %s", err, pb)
			}
			if _, err := smart.VerifyJWS(tok, smart.Set(k), "none"); !errors.Is(err, smart.ErrAlg) {
				t.Errorf("alg not in the accepted list: %v", err)
			}
			other, _ := smart.GenerateKey(alg)
			other.Kid = k.Kid
			if _, err := smart.VerifyJWS(tok, smart.Set(other), alg); !errors.Is(err, smart.ErrSignature) {
				t.Errorf("other key: %v", err)
			}
		})
	}
}
