package decimal_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/decimal"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"-2", "-2", true}, {"2.5", "2.5", true}, {"+3", "3", true}, {"0.10", "0.10", true}, {" 7 ", "7", true},
		{"1.5E2", "150", true}, {"1e-2", "0.01", true}, {"-.5", "-0.5", true}, {"007", "7", true}, {"-0.00", "0.00", true},
		{"", "", false}, {"abc", "", false}, {"1.2.3", "", false}, {"--1", "", false}, {"1e", "", false}, {".", "", false}, {"1,5", "", false},
	} {
		got, err := decimal.Parse(tc.in)
		if (err == nil) != tc.ok || string(got) != tc.want {
			t.Errorf("Parse(%q) = %q, %v", tc.in, got, err)
		}
	}
	for _, bad := range []string{"", "-", ".", "1.2.3", "1e3", "abc", "1,5", " 2"} {
		if d, err := decimal.ParsePlain(bad); err == nil {
			t.Errorf("ParsePlain(%q) = %q, want an error", bad, d)
		} else if !errors.Is(err, decimal.ErrSyntax) || bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("ParsePlain(%q): %v: want ErrSyntax without the text", bad, err)
		}
	}
}

func TestArithmetic(t *testing.T) {
	for _, tc := range []struct{ in, factor, want string }{
		{"2", "1", "2"}, {"0.25", "1000", "250"}, {"-1.50", "1", "-1.5"}, {"007", "1", "7"},
		{"0.001", "1", "0.001"}, {"3", "0.5", "1.5"}, {"0", "12", "0"}, {"+4", "2", "8"}, {"-0.5", "-2", "1"},
	} {
		d, err1 := decimal.ParsePlain(tc.in)
		f, err2 := decimal.ParsePlain(tc.factor)
		p, err3 := d.Mul(f)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatalf("%s × %s: %v", tc.in, tc.factor, err)
		}
		if got := p.Normal(); string(got) != tc.want {
			t.Errorf("%s × %s = %s, want %s", tc.in, tc.factor, got, tc.want)
		}
	}
	sum, err := decimal.Decimal("1000").Add("-0.25")
	if err != nil || sum != "999.75" {
		t.Fatalf("%s %v", sum, err)
	}
	if !decimal.Decimal("2").Equal("2.00") || decimal.Decimal("-1").Sign() != -1 || !decimal.Decimal("0.0").IsZero() ||
		decimal.Decimal("2").Neg() != "-2" || decimal.Decimal("-2.5").Abs() != "2.5" || decimal.Decimal("0").Neg() != "0" ||
		decimal.Decimal("+3").Neg() != "-3" || decimal.Decimal("1e1").Sign() != 1 {
		t.Fatal("compare")
	}
}

func TestUnits(t *testing.T) {
	for _, tc := range []struct {
		in    string
		scale int
		want  int64
		ok    bool
	}{
		{"2.5", 4, 25000, true}, {"-0.0001", 4, -1, true}, {"1.50000", 4, 15000, true}, {"3", 0, 3, true},
		{"0.00001", 4, 0, false}, {"922337203685477.5808", 4, 0, false},
	} {
		got, err := decimal.Decimal(tc.in).Units(tc.scale)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s.Units(%d) = %d, %v", tc.in, tc.scale, got, err)
		}
	}
	if d := decimal.FromUnits(-250, 2); d != "-2.50" || d.Normal() != "-2.5" {
		t.Errorf("FromUnits(-250, 2) = %s", d)
	}
	if d := decimal.FromUnits(-9223372036854775808, 4); d != "-922337203685477.5808" {
		t.Errorf("FromUnits(MinInt64, 4) = %s", d)
	}
	if d := decimal.FromUnits(5, 4); d != "0.0005" {
		t.Errorf("FromUnits(5, 4) = %s", d)
	}
}

func TestJSON(t *testing.T) {
	var v struct{ A, B, C decimal.Decimal }
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
	if _, err := json.Marshal(decimal.Decimal("x")); err == nil {
		t.Fatal("bad decimal written")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"-2", "2.50", "1.5E2", "+.5", "007", "0.00", "1e-1000", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := decimal.Parse(s)
		if err != nil {
			return
		}
		// Canonical text reads back as itself, plainly, and equals what it
		// came from; negation twice is the identity.
		back, err := decimal.ParsePlain(string(d))
		if err != nil || back != d {
			t.Fatalf("Parse(%q) = %q; ParsePlain of it = %q, %v", s, d, back, err)
		}
		if d.Neg().Neg() != d || !d.Normal().Equal(d) || d.Abs().Sign() < 0 {
			t.Fatalf("Parse(%q) = %q: Neg, Normal or Abs inconsistent", s, d)
		}
	})
}
