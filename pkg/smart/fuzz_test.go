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
