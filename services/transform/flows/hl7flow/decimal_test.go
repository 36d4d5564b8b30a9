package hl7flow

import "testing"

func TestDecimal(t *testing.T) {
	for _, tc := range []struct{ in, factor, want string }{
		{"2", "1", "2"}, {"0.25", "1000", "250"}, {"-1.50", "1", "-1.5"}, {"007", "1", "7"},
		{"0.001", "1", "0.001"}, {"3", "0.5", "1.5"}, {"0", "12", "0"}, {"+4", "2", "8"},
	} {
		d, ok := parseDecimal(tc.in)
		f, ok2 := parseDecimal(tc.factor)
		if !ok || !ok2 {
			t.Fatalf("%s: not parsed", tc.in)
		}
		if got := d.mul(f).String(); got != tc.want {
			t.Errorf("%s x %s = %s, want %s", tc.in, tc.factor, got, tc.want)
		}
	}
	for _, bad := range []string{"", "-", ".", "1.2.3", "1e3", "abc", "1,5"} {
		if _, ok := parseDecimal(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}
