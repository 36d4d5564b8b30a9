// Package money holds exact amounts: integer minor units (cents), never
// float64. Parsing accepts plain decimals with at most two places.
package money

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Amount is an exact amount in minor units (1.00 = 100).
type Amount int64

// ErrSyntax is returned for text that is not a plain decimal amount.
var ErrSyntax = errors.New("money: not an amount")

// ErrRange is returned for amounts or sums outside int64 minor units.
var ErrRange = errors.New("money: amount out of range")

// Parse reads "1250", "1250.5", "1250.00", "-3.20", "0.07". It refuses more
// than two decimal places, exponents, thousands separators, a leading "+",
// spaces and empty text.
func Parse(s string) (Amount, error) { return parse(s) }

// ParseBytes is Parse for bytes, without converting them to a string.
func ParseBytes(b []byte) (Amount, error) { return parse(b) }

func parse[T string | []byte](s T) (Amount, error) {
	if len(s) == 0 {
		return 0, fmt.Errorf("%w: empty", ErrSyntax)
	}
	neg := false
	i := 0
	if s[0] == '-' {
		neg, i = true, 1
	}
	var units int64
	digits, frac := 0, -1
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if frac >= 0 {
				if frac == 2 {
					return 0, fmt.Errorf("%w: %q has more than two decimals", ErrSyntax, string(s))
				}
				frac++
			}
			d := int64(c - '0')
			if units > (math.MaxInt64-d)/10 {
				return 0, fmt.Errorf("%w: %q", ErrRange, string(s))
			}
			units = units*10 + d
			digits++
		case c == '.' && frac < 0 && digits > 0:
			frac = 0
		default:
			return 0, fmt.Errorf("%w: %q", ErrSyntax, string(s))
		}
	}
	if digits == 0 || frac == 0 {
		return 0, fmt.Errorf("%w: %q", ErrSyntax, string(s))
	}
	for k := max(frac, 0); k < 2; k++ {
		if units > math.MaxInt64/10 {
			return 0, fmt.Errorf("%w: %q", ErrRange, string(s))
		}
		units *= 10
	}
	if neg {
		units = -units
	}
	return Amount(units), nil
}

// String formats with exactly two decimals: "1250.00", "-3.20".
func (a Amount) String() string {
	return string(a.Append(nil))
}

// Append appends a.String() to b without allocating.
func (a Amount) Append(b []byte) []byte {
	u := uint64(a)
	if a < 0 {
		b = append(b, '-')
		u = uint64(-a)
	}
	b = strconv.AppendUint(b, u/100, 10)
	c := u % 100
	return append(b, '.', byte('0'+c/10), byte('0'+c%10))
}

// AppendText implements encoding.TextAppender.
func (a Amount) AppendText(b []byte) ([]byte, error) { return a.Append(b), nil }

// MarshalText implements encoding.TextMarshaler (JSON carries "1250.00").
func (a Amount) MarshalText() ([]byte, error) { return a.Append(nil), nil }

// UnmarshalText implements encoding.TextUnmarshaler with Parse's rules.
func (a *Amount) UnmarshalText(b []byte) error {
	v, err := ParseBytes(b)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Add returns a+b, or ErrRange on overflow.
func Add(a, b Amount) (Amount, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, ErrRange
	}
	return s, nil
}

// Sum accumulates amounts and remembers an overflow instead of wrapping.
type Sum struct {
	Total    Amount
	Overflow bool
}

// Add adds a to the sum.
func (s *Sum) Add(a Amount) {
	t, err := Add(s.Total, a)
	if err != nil {
		s.Overflow = true
		return
	}
	s.Total = t
}
