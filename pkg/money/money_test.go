package money_test

import (
	"errors"
	"math"
	"testing"

	"github.com/sinewhq/sinew/pkg/money"
)

func TestParse(t *testing.T) {
	good := map[string]money.Amount{
		"0": 0, "1250": 125000, "1250.5": 125050, "1250.00": 125000, "-3.20": -320, "0.07": 7,
		"92233720368547758.07": math.MaxInt64,
	}
	for in, want := range good {
		got, err := money.Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-", ".5", "1.", "1.234", "1e3", "1,000.00", "+1", " 1", "1 ", "NaN", "1.2.3", "92233720368547758.08", "--1"} {
		if got, err := money.Parse(in); err == nil {
			t.Errorf("Parse(%q) = %d, want an error", in, got)
		}
	}
}

func TestStringRoundTrip(t *testing.T) {
	for _, a := range []money.Amount{0, 7, 100, 125050, -320, -1, math.MaxInt64, math.MinInt64 + 1} {
		back, err := money.Parse(a.String())
		if err != nil || back != a {
			t.Errorf("%d -> %q -> %d, %v", a, a.String(), back, err)
		}
	}
	if s := money.Amount(-5).String(); s != "-0.05" {
		t.Errorf("-5 = %q", s)
	}
}

func TestSumOverflow(t *testing.T) {
	var s money.Sum
	s.Add(math.MaxInt64)
	s.Add(1)
	if !s.Overflow || s.Total != math.MaxInt64 {
		t.Errorf("%+v", s)
	}
	if _, err := money.Add(math.MinInt64+1, -2); !errors.Is(err, money.ErrRange) {
		t.Errorf("underflow: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "1250.50", "-3.2", "1e3", "9999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := money.Parse(s)
		if err != nil {
			return
		}
		if back, err := money.Parse(a.String()); err != nil || back != a {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, a, a.String(), back, err)
		}
	})
}
