package loader

import (
	"strings"
	"testing"
)

// TestUnquoted: a refusal's reason (DLQ, logs, audit) keeps Fusion's text
// but not the values Fusion quotes from what it was sent (issue 9 item 7).
func TestUnquoted(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`The value of the attribute ItemNumber isn't valid.`, `The value of the attribute ItemNumber isn't valid.`},
		{`The value of the attribute LotNumber isn't valid: "MRN12345678".`, `The value of the attribute LotNumber isn't valid: (11 bytes withheld).`},
		{`a "x" b "yy" c`, `a (1 bytes withheld) b (2 bytes withheld) c`},
		{`clipped "MRN1234…`, `clipped (10 bytes withheld)`},
		{``, ``},
	} {
		if got := unquoted(tc.in); got != tc.want {
			t.Errorf("unquoted(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(unquoted(tc.in), "MRN") {
			t.Errorf("%q keeps the value", tc.in)
		}
	}
}
