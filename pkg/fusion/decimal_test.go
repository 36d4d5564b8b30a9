package fusion

import (
	"encoding/json"
	"testing"
)

func TestDecimal(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"-2", "-2", true}, {"2.5", "2.5", true}, {"+3", "3", true}, {"0.10", "0.10", true},
		{"1.5E2", "150", true}, {"1e-2", "0.01", true}, {"-.5", "-0.5", true},
		{"", "", false}, {"abc", "", false}, {"1.2.3", "", false}, {"--1", "", false}, {"1e", "", false}, {".", "", false},
	} {
		got, err := ParseDecimal(tc.in)
		if (err == nil) != tc.ok || string(got) != tc.want {
			t.Errorf("%q: %q %v", tc.in, got, err)
		}
	}
	sum, err := Decimal("1000").Add("-0.25")
	if err != nil || sum != "999.75" {
		t.Fatalf("%s %v", sum, err)
	}
	if !Decimal("2").Equal("2.00") || Decimal("-1").Sign() != -1 || !Decimal("0.0").IsZero() || Decimal("2").Neg() != "-2" {
		t.Fatal("compare")
	}
	var v struct {
		A, B, C Decimal
	}
	if err := json.Unmarshal([]byte(`{"A":-2,"B":"2.50","C":null}`), &v); err != nil || v.A != "-2" || v.B != "2.50" || v.C != "" {
		t.Fatalf("%+v %v", v, err)
	}
	b, err := json.Marshal(v)
	if err != nil || string(b) != `{"A":-2,"B":2.50,"C":null}` {
		t.Fatalf("%s %v", b, err)
	}
	if err := json.Unmarshal([]byte(`{"A":"x"}`), &v); err == nil {
		t.Fatal("bad decimal accepted")
	}
	if _, err := json.Marshal(Decimal("x")); err == nil {
		t.Fatal("bad decimal written")
	}
}
