package telemetry

import "testing"

func TestSafeLabel(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "none"},
		{"willow-inventory", "willow-inventory"},
		{"RDS^O13", "RDS^O13"},
		{"resolute_gl.v2:1", "resolute_gl.v2:1"},
		{"DOE^JOHN Q", "other"},             // a space: not a name Sinew gives
		{"123-45-6789 ", "other"},           // trailing space
		{"a/b", "other"},                    // path separators
		{"flow\x00", "other"},               // control characters
		{"é", "other"},                      // non-ASCII
		{string(make([]byte, 49)), "other"}, // too long (and NULs)
		{"abcdefghijabcdefghijabcdefghijabcdefghijabcdefgh", "abcdefghijabcdefghijabcdefghijabcdefghijabcdefgh"}, // 48
		{"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghi", "other"},                                           // 49
	}
	for _, tt := range tests {
		if got := SafeLabel(tt.in); got != tt.want {
			t.Errorf("SafeLabel(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestStatusClass(t *testing.T) {
	t.Parallel()
	for code, want := range map[int]string{0: "error", 200: "2xx", 201: "2xx", 404: "4xx", 429: "4xx", 503: "5xx", 600: "error", 99: "error"} {
		if got := StatusClass(code); got != want {
			t.Errorf("StatusClass(%d) = %q, want %q", code, got, want)
		}
	}
}

func FuzzSafeLabel(f *testing.F) {
	for _, s := range []string{"", "willow-inventory", "RDS^O13", "DOE^JOHN", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := SafeLabel(s)
		if got != s && got != "other" && got != "none" {
			t.Fatalf("SafeLabel(%q) = %q", s, got)
		}
		if got == s && (len(s) > maxLabel || s == "") {
			t.Fatalf("SafeLabel(%q) kept it", s)
		}
	})
}
