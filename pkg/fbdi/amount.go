package fbdi

import (
	"fmt"
	"math"
	"strconv"
)

// Amount is money in hundredths of the currency unit (cents for USD).
type Amount int64

// ParseAmount parses a decimal amount with at most two decimal places:
// "1250", "1250.5", "1250.00", "-3.20". It refuses signs other than a
// leading minus, exponents, thousands separators, blanks, NaN and Inf, a
// third decimal, and values beyond the range of Amount.
func ParseAmount(s string) (Amount, error) {
	a, err := parseAmount(s)
	if err != nil {
		return 0, fmt.Errorf("fbdi: parsing amount %q: %w", s, err)
	}
	return a, nil
}

var (
	errAmountSyntax   = fmt.Errorf("%w: want digits with up to 2 decimals", ErrAmount)
	errAmountDecimals = fmt.Errorf("%w: more than 2 decimals", ErrAmount)
	errAmountRange    = fmt.Errorf("%w: out of range", ErrAmount)
)

// parseAmount serves ParseAmount and Check (on []byte, without copying).
func parseAmount[T string | []byte](s T) (Amount, error) {
	i, neg := 0, false
	if len(s) > 0 && s[0] == '-' {
		neg, i = true, 1
	}
	var units uint64
	start := i
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if units > (math.MaxInt64/100)/10 {
			return 0, errAmountRange
		}
		units = units*10 + uint64(s[i]-'0')
	}
	if i == start {
		return 0, errAmountSyntax
	}
	var cents uint64
	if i < len(s) {
		if s[i] != '.' {
			return 0, errAmountSyntax
		}
		i++
		n := 0
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			n++
			if n > 2 {
				return 0, errAmountDecimals
			}
			cents = cents*10 + uint64(s[i]-'0')
		}
		if n == 0 || i < len(s) {
			return 0, errAmountSyntax
		}
		if n == 1 {
			cents *= 10
		}
	}
	v := units*100 + cents
	if v > math.MaxInt64 {
		return 0, errAmountRange
	}
	if neg {
		return Amount(-int64(v)), nil
	}
	return Amount(v), nil
}

// String formats a with exactly two decimals: "1250.00", "-3.20".
func (a Amount) String() string {
	var b [24]byte
	return string(a.append(b[:0]))
}

func (a Amount) append(b []byte) []byte {
	u := uint64(a)
	if a < 0 {
		b = append(b, '-')
		u = -u // two's complement; right for math.MinInt64 too
	}
	b = strconv.AppendUint(b, u/100, 10)
	c := u % 100
	return append(b, '.', byte('0'+c/10), byte('0'+c%10))
}

// AppendText implements encoding.TextAppender.
func (a Amount) AppendText(b []byte) ([]byte, error) { return a.append(b), nil }

// MarshalText implements encoding.TextMarshaler (so JSON carries "1250.00").
func (a Amount) MarshalText() ([]byte, error) { return a.append(nil), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseAmount's rules.
func (a *Amount) UnmarshalText(b []byte) error {
	v, err := parseAmount(b)
	if err != nil {
		return fmt.Errorf("fbdi: parsing amount %q: %w", b, err)
	}
	*a = v
	return nil
}

var errOverflow = fmt.Errorf("%w: running total overflows", ErrAmount)

// add returns a+b, or an error instead of wrapping around.
func add(a, b Amount) (Amount, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, errOverflow
	}
	return s, nil
}
