package fusion

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Decimal is an exact decimal quantity as Fusion writes it ("-2", "2.5");
// never float64. The zero value "" means absent and is written as null.
type Decimal string

// ParseDecimal checks s ("-2", "2.50", "+3", "1.5E2") and returns it in
// plain notation: no exponent, no leading '+', scale kept ("2.50").
func ParseDecimal(s string) (Decimal, error) {
	u, scale, err := parseDec(strings.TrimSpace(s))
	if err != nil {
		return "", err
	}
	return formatDec(u, scale), nil
}

// MustDecimal is ParseDecimal for constants; it panics on a bad literal.
func MustDecimal(s string) Decimal {
	d, err := ParseDecimal(s)
	if err != nil {
		panic(err)
	}
	return d
}

// Valid reports whether d is a well-formed decimal.
func (d Decimal) Valid() error {
	_, _, err := parseDec(string(d))
	return err
}

// Sign returns -1, 0 or +1 (0 for an invalid or empty Decimal).
func (d Decimal) Sign() int {
	u, _, err := parseDec(string(d))
	if err != nil {
		return 0
	}
	return u.Sign()
}

// IsZero reports whether d is numerically zero ("0", "0.00").
func (d Decimal) IsZero() bool { return d.Sign() == 0 }

// Neg returns -d.
func (d Decimal) Neg() Decimal {
	u, scale, err := parseDec(string(d))
	if err != nil {
		return d
	}
	return formatDec(u.Neg(u), scale)
}

// Add returns d+e exactly, at the larger of the two scales.
func (d Decimal) Add(e Decimal) (Decimal, error) {
	a, as, err := parseDec(string(d))
	if err != nil {
		return "", err
	}
	b, bs, err := parseDec(string(e))
	if err != nil {
		return "", err
	}
	a, b, scale := align(a, as, b, bs)
	return formatDec(a.Add(a, b), scale), nil
}

// Cmp compares d and e numerically (-1, 0, +1); invalid values compare
// as zero.
func (d Decimal) Cmp(e Decimal) int {
	a, as, err1 := parseDec(string(d))
	b, bs, err2 := parseDec(string(e))
	if err1 != nil {
		a, as = new(big.Int), 0
	}
	if err2 != nil {
		b, bs = new(big.Int), 0
	}
	a, b, _ = align(a, as, b, bs)
	return a.Cmp(b)
}

// Equal reports numeric equality ("2" equals "2.00").
func (d Decimal) Equal(e Decimal) bool { return d.Cmp(e) == 0 }

// MarshalJSON writes a JSON number literal (null when empty).
func (d Decimal) MarshalJSON() ([]byte, error) {
	if d == "" {
		return []byte("null"), nil
	}
	n, err := ParseDecimal(string(d))
	if err != nil {
		return nil, err
	}
	return []byte(n), nil
}

// UnmarshalJSON accepts a number literal, a string holding one, or null.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*d = ""
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if strings.TrimSpace(s) == "" {
			*d = ""
			return nil
		}
	}
	n, err := ParseDecimal(s)
	if err != nil {
		return err
	}
	*d = n
	return nil
}

// parseDec reads [+-]digits[.digits][(e|E)[+-]digits] into an unscaled
// integer and a scale (value = u / 10^scale).
func parseDec(s string) (*big.Int, int, error) {
	orig := s
	bad := func() (*big.Int, int, error) { return nil, 0, fmt.Errorf("fusion: %q is not a decimal number", orig) }
	if s == "" {
		return bad()
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 1000 || e < -1000 {
			return bad()
		}
		mant, exp = s[:i], e
	}
	neg := false
	switch {
	case strings.HasPrefix(mant, "-"):
		neg, mant = true, mant[1:]
	case strings.HasPrefix(mant, "+"):
		mant = mant[1:]
	}
	ip, fp, _ := strings.Cut(mant, ".")
	for _, part := range []string{ip, fp} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return bad()
			}
		}
	}
	digits := ip + fp
	if digits == "" {
		return bad()
	}
	u, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return bad()
	}
	if neg {
		u.Neg(u)
	}
	scale := len(fp) - exp
	if scale < 0 {
		u.Mul(u, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-scale)), nil))
		scale = 0
	}
	return u, scale, nil
}

func align(a *big.Int, as int, b *big.Int, bs int) (*big.Int, *big.Int, int) {
	a, b = new(big.Int).Set(a), new(big.Int).Set(b)
	for as < bs {
		a.Mul(a, big.NewInt(10))
		as++
	}
	for bs < as {
		b.Mul(b, big.NewInt(10))
		bs++
	}
	return a, b, as
}

func formatDec(u *big.Int, scale int) Decimal {
	neg := u.Sign() < 0
	digits := new(big.Int).Abs(u).String()
	if scale > 0 {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		digits = "-" + digits
	}
	return Decimal(digits)
}
