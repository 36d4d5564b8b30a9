package epicsim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/fhir"
	"github.com/sinewhq/sinew/pkg/smart"
	"github.com/sinewhq/sinew/services/epicsim"
)

// fhirServer runs the FHIR simulator on real HTTP with one registered
// client whose JWKS epicsim fetches from a URL, as Epic does.
func fhirServer(t *testing.T, cfg epicsim.FHIRConfig) (*epicsim.FHIRSim, *smart.Key) {
	t.Helper()
	key, err := smart.GenerateKey(smart.ES384)
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(smart.JWKSHandler(key))
	t.Cleanup(jwks.Close)
	sim := epicsim.NewFHIRSim(cfg, time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC), nil)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	sim.SetURL(srv.URL)
	sim.Register(epicsim.FHIRClient{ID: "sinew-app", JWKSURL: jwks.URL})
	return sim, key
}

func postAssertion(t *testing.T, tokenURL, assertion string) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(tokenURL, url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {smart.AssertionType}, "client_assertion": {assertion}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestFHIRTokenHandshakeAndEachRefusal(t *testing.T) {
	sim, key := fhirServer(t, epicsim.DefaultFHIRConfig())
	now := time.Now()
	good, _, _ := key.Assertion("sinew-app", sim.TokenURL(), now, 0)
	code, body := postAssertion(t, sim.TokenURL(), good)
	if code != 200 || body["access_token"] == "" || body["token_type"] != "Bearer" || body["expires_in"].(float64) <= 0 {
		t.Fatalf("handshake: %d %v", code, body)
	}
	wrong, _ := smart.GenerateKey(smart.ES384)
	wrong.Kid = key.Kid
	badSig, _, _ := wrong.Assertion("sinew-app", sim.TokenURL(), now, 0)
	expired, _, _ := key.Assertion("sinew-app", sim.TokenURL(), now.Add(-time.Hour), 0)
	tooLong, _ := key.Sign(smart.Claims{Iss: "sinew-app", Sub: "sinew-app", Aud: sim.TokenURL(), Jti: smart.NewJTI(), Exp: now.Add(time.Hour).Unix()})
	stranger, _, _ := key.Assertion("other-app", sim.TokenURL(), now, 0)
	for _, tc := range []struct{ name, assertion, want string }{
		{"replayed jti", good, "jti already used"},
		{"wrong key", badSig, "signature"},
		{"expired", expired, "expired"},
		{"exp beyond 5 minutes", tooLong, "5 minutes"},
		{"unknown client", stranger, "unknown client"},
	} {
		code, body := postAssertion(t, sim.TokenURL(), tc.assertion)
		if code != 400 || body["error"] != "invalid_client" || !strings.Contains(body["error_description"].(string), tc.want) {
			t.Errorf("%s: %d %v", tc.name, code, body)
		}
	}
	sim.Register(epicsim.FHIRClient{ID: "unmapped-app", JWKS: mustJSON(smart.Set(key)), Unmapped: true})
	ts, _ := smart.NewTokenSource(smart.ClientConfig{TokenURL: sim.TokenURL(), ClientID: "unmapped-app", Key: key})
	_, err := ts.Token(context.Background())
	var te *smart.TokenError
	if !errors.As(err, &te) || !te.Unmapped() || !strings.Contains(err.Error(), "mapped to a background user") {
		t.Errorf("unmapped client: %v", err)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func client(t *testing.T, sim *epicsim.FHIRSim, key *smart.Key) *fhir.Client {
	ts, err := smart.NewTokenSource(smart.ClientConfig{TokenURL: sim.TokenURL(), ClientID: "sinew-app", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return &fhir.Client{Tokens: ts}
}

func TestFHIRSearchQuirks(t *testing.T) {
	cfg := epicsim.DefaultFHIRConfig()
	cfg.Volume.Observations = 150
	sim, key := fhirServer(t, cfg)
	c := client(t, sim, key)
	ctx := context.Background()
	base := sim.BaseURL()
	for _, tc := range []struct {
		name, url string
		check     func(*fhir.Bundle, error) bool
	}{
		{"no _lastUpdated", base + "/Encounter?_lastUpdated=ge2026-01-01", func(_ *fhir.Bundle, err error) bool {
			var oe *fhir.OutcomeError
			return errors.As(err, &oe) && oe.Status == 400 && oe.Outcome.EpicCodes()[0] == fhir.EpicInvalidParameter && oe.Class == fhir.Permanent
		}},
		{"no parameters", base + "/Encounter", func(_ *fhir.Bundle, err error) bool {
			var oe *fhir.OutcomeError
			return errors.As(err, &oe) && oe.Outcome.EpicCodes()[0] == fhir.EpicNoParameters
		}},
		{"capped at 100", base + "/Observation?date=ge2026-01-01", func(b *fhir.Bundle, err error) bool {
			var oe *fhir.OutcomeError
			return errors.As(err, &oe) && oe.Outcome.Capped() && b != nil && len(b.Matches()) == 0
		}},
		{"expired session", base + "/Encounter?date=ge2026-01-01&sessionID=nope&pageNo=2", func(_ *fhir.Bundle, err error) bool {
			var oe *fhir.OutcomeError
			return errors.As(err, &oe) && oe.Outcome.SessionExpired()
		}},
		{"unknown parameter warned", base + "/Encounter?date=ge2026-03-07&color=blue", func(b *fhir.Bundle, err error) bool {
			return err == nil && len(b.Outcomes()) == 1 && !b.Outcomes()[0].Failed()
		}},
	} {
		if b, err := c.Search(ctx, tc.url); !tc.check(b, err) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// Paging: next links followed as given reach every match once.
	seen := map[string]bool{}
	next := base + "/Encounter?date=ge2026-01-01&_count=7"
	for next != "" {
		b, err := c.Search(ctx, next)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range b.Matches() {
			if seen[r.Key()] {
				t.Errorf("%s twice", r.Key())
			}
			seen[r.Key()] = true
			if len(r.ID) <= 64 || !hasWarning(r, fhir.WarnIDTooLong) {
				t.Errorf("%s: not an Epic-length id", r.Key())
			}
		}
		next = b.Next()
	}
	if len(seen) != len(sim.Resources("Encounter")) {
		t.Errorf("paged %d of %d encounters", len(seen), len(sim.Resources("Encounter")))
	}
}

func hasWarning(r *fhir.Resource, code string) bool {
	for _, w := range r.Warnings {
		if w.Code == code {
			return true
		}
	}
	return false
}

func TestFHIRSeedIsRepeatable(t *testing.T) {
	a := epicsim.NewFHIRSim(epicsim.DefaultFHIRConfig(), time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC), nil)
	b := epicsim.NewFHIRSim(epicsim.DefaultFHIRConfig(), time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC), nil)
	if strings.Join(a.Resources("Observation"), ",") != strings.Join(b.Resources("Observation"), ",") {
		t.Error("same seed, different data")
	}
}
