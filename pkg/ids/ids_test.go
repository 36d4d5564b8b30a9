package ids_test

import (
	"testing"

	"github.com/sinewhq/sinew/pkg/ids"
)

func TestIDsAreStableAndShaped(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"", "e3b0c442-98fc-1c14-9afb-f4c8996fb924"},
		{"abc", "ba7816bf-8f01-cfea-4141-40de5dae2223"},
	} {
		if got := ids.EventID(tc.key); got != tc.want {
			t.Errorf("EventID(%q) = %s, want %s", tc.key, got, tc.want)
		}
	}
	if ids.HashKey("a", "b") == ids.HashKey("ab") {
		t.Error("parts must be separated")
	}
	if len(ids.HashKey("x")) != 32 {
		t.Error("HashKey is 32 hex digits")
	}
}
