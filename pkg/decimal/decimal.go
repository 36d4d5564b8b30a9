// Package decimal is Sinew's one exact decimal number: quantities and
// conversion factors read from HL7, crosswalks and Fusion, carried as text
// and computed exactly, never as float64. (Amounts of money are
// pkg/money's integer minor units.)
package decimal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Decimal is an exact decimal in plain notation ("-2", "2.50"). The zero
// value "" means absent (JSON null). Values made by Parse, ParsePlain and
// the methods are canonical: an optional '-', no leading zeros, no
// exponent, the scale kept ("2.50" stays 2.50; Normal drops the zeros).
type Decimal string

// ErrSyntax is returned for text that is not a decimal number. Errors
// never quote the text: it may be a field of a message (PHI).
var ErrSyntax = errors.New("decimal: not a decimal number")

// ErrRange is returned when a value does not fit the scale or the
// integer asked for.
var ErrRange = errors.New("decimal: out of range")

// Parse reads [+-]digits[.digits][(e|E)[+-]digits], spaces around it
// allowed, as Fusion writes numbers ("-2", "2.50", "1.5E2").
func Parse(s string) (Decimal, error) {
	u, scale, err := parse(strings.TrimSpace(s), true)
	if err != nil {
		return "", err
	}
	return format(u, scale), nil
}

// ParsePlain reads [+-]digits[.digits] exactly (no spaces, no exponent),
// as an HL7 NM field or a crosswalk factor holds a number.
func ParsePlain(s string) (Decimal, error) {
	u, scale, err := parse(s, false)
	if err != nil {
		return "", err
	}
	return format(u, scale), nil
}

// MustParse is Parse for constants; it panics on a bad literal.
func MustParse(s string) Decimal {
	d, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return d
}

// FromUnits is n / 10^scale ("-250", 2 → "-2.50").
func FromUnits(n int64, scale int) Decimal {
	u := uint64(n)
	if n < 0 {
		u = -u
	}
	return place(n < 0, strconv.FormatUint(u, 10), scale)
}

// String is d's text.
func (d Decimal) String() string { return string(d) }

// Valid reports whether d is a well-formed decimal.
func (d Decimal) Valid() error {
	_, _, err := parse(string(d), true)
	return err
}

// Sign returns -1, 0 or +1 (0 for an invalid or empty Decimal).
func (d Decimal) Sign() int {
	if plain(d) {
		switch {
		case allZero(string(d)):
			return 0
		case d[0] == '-':
			return -1
		}
		return 1
	}
	u, _, err := parse(string(d), true)
	if err != nil {
		return 0
	}
	return u.Sign()
}

// IsZero reports whether d is numerically zero ("0", "0.00").
func (d Decimal) IsZero() bool { return d.Sign() == 0 }

// Neg returns -d (an invalid d unchanged).
func (d Decimal) Neg() Decimal {
	if !plain(d) {
		u, scale, err := parse(string(d), true)
		if err != nil {
			return d
		}
		return format(u.Neg(u), scale)
	}
	switch {
	case allZero(string(d)):
		return d
	case d[0] == '-':
		return d[1:]
	}
	return "-" + d
}

// Abs returns |d|.
func (d Decimal) Abs() Decimal {
	if d.Sign() < 0 {
		return d.Neg()
	}
	return d
}

// Add returns d+e exactly, at the larger of the two scales.
func (d Decimal) Add(e Decimal) (Decimal, error) {
	a, as, err := parse(string(d), true)
	if err != nil {
		return "", err
	}
	b, bs, err := parse(string(e), true)
	if err != nil {
		return "", err
	}
	a, b, scale := align(a, as, b, bs)
	return format(a.Add(a, b), scale), nil
}

// Mul returns d×e exactly, at the sum of the scales. A factor of 1 is the
// common case and costs nothing.
func (d Decimal) Mul(e Decimal) (Decimal, error) {
	if e == "1" {
		return d, d.Valid()
	}
	a, as, err := parse(string(d), true)
	if err != nil {
		return "", err
	}
	b, bs, err := parse(string(e), true)
	if err != nil {
		return "", err
	}
	return format(a.Mul(a, b), as+bs), nil
}

// Cmp compares d and e numerically (-1, 0, +1); invalid values compare
// as zero.
func (d Decimal) Cmp(e Decimal) int {
	a, as, err1 := parse(string(d), true)
	b, bs, err2 := parse(string(e), true)
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

// Scale is the number of digits after the point (0 for an invalid d).
func (d Decimal) Scale() int {
	_, scale, err := parse(string(d), true)
	if err != nil {
		return 0
	}
	return scale
}

// Normal is d without trailing fractional zeros ("2.50" → "2.5",
// "0.00" → "0"); an invalid d unchanged.
func (d Decimal) Normal() Decimal {
	if !plain(d) {
		u, scale, err := parse(string(d), true)
		if err != nil {
			return d
		}
		d = format(u, scale)
	}
	s := string(d)
	if !strings.Contains(s, ".") {
		return d
	}
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" || s == "" {
		s = "0"
	}
	return Decimal(s)
}

// Units is d × 10^scale as an integer ("2.5", 4 → 25000): ErrRange when d
// has non-zero digits beyond scale or the result does not fit an int64.
func (d Decimal) Units(scale int) (int64, error) {
	u, s, err := parse(string(d), true)
	if err != nil {
		return 0, err
	}
	ten := big.NewInt(10)
	for ; s < scale; s++ {
		u.Mul(u, ten)
	}
	if s > scale {
		var m big.Int
		u.QuoRem(u, new(big.Int).Exp(ten, big.NewInt(int64(s-scale)), nil), &m)
		if m.Sign() != 0 {
			return 0, fmt.Errorf("%w: more than %d decimals", ErrRange, scale)
		}
	}
	if !u.IsInt64() {
		return 0, fmt.Errorf("%w: more than an int64 at scale %d", ErrRange, scale)
	}
	return u.Int64(), nil
}

// MarshalJSON writes a JSON number literal (null when empty).
func (d Decimal) MarshalJSON() ([]byte, error) {
	if d == "" {
		return []byte("null"), nil
	}
	n, err := Parse(string(d))
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
	n, err := Parse(s)
	if err != nil {
		return err
	}
	*d = n
	return nil
}

// plain reports whether d is -?digits[.digits] (no '+', exponent or
// space), which the sign methods read without big.Int.
func plain(d Decimal) bool {
	s := strings.TrimPrefix(string(d), "-")
	ip, fp, dot := strings.Cut(s, ".")
	if ip == "" || dot && fp == "" {
		return false
	}
	for _, part := range []string{ip, fp} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return false
			}
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '0' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// parse reads s into an unscaled integer and a scale (value = u / 10^scale).
func parse(s string, exponent bool) (*big.Int, int, error) {
	bad := func() (*big.Int, int, error) { return nil, 0, fmt.Errorf("%w (%d bytes)", ErrSyntax, len(s)) }
	if s == "" {
		return bad()
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if !exponent || err != nil || e > 1000 || e < -1000 {
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

func format(u *big.Int, scale int) Decimal {
	return place(u.Sign() < 0, new(big.Int).Abs(u).String(), scale)
}

// place writes digits (no sign) with the point scale digits from the right.
func place(neg bool, digits string, scale int) Decimal {
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
