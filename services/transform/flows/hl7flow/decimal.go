package hl7flow

import (
	"math/big"
	"strings"
)

// decimal is an exact decimal read from a message or a crosswalk: sign,
// the digits without the point, and how many of them are fractional.
type decimal struct {
	neg    bool
	digits string // no sign, no point, no leading zeros ("" is zero)
	scale  int
}

// parseDecimal reads [+-]digits[.digits]; ok is false for anything else.
func parseDecimal(s string) (decimal, bool) {
	var d decimal
	if s == "" {
		return d, false
	}
	switch s[0] {
	case '-':
		d.neg, s = true, s[1:]
	case '+':
		s = s[1:]
	}
	intPart, frac, dot := strings.Cut(s, ".")
	if intPart == "" && frac == "" || dot && frac == "" && intPart == "" {
		return d, false
	}
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return d, false
			}
		}
	}
	frac = strings.TrimRight(frac, "0")
	all := intPart + frac
	all = strings.TrimLeft(all, "0")
	d.digits, d.scale = all, len(frac)
	if d.digits == "" {
		d.neg, d.scale = false, 0
	}
	return d, true
}

func (d decimal) zero() bool { return d.digits == "" }

// String formats d exactly, without trailing fractional zeros.
func (d decimal) String() string {
	if d.zero() {
		return "0"
	}
	digits := d.digits
	var b strings.Builder
	b.Grow(len(digits) + 3)
	if d.neg {
		b.WriteByte('-')
	}
	if d.scale == 0 {
		b.WriteString(digits)
		return b.String()
	}
	if len(digits) <= d.scale {
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", d.scale-len(digits)))
		b.WriteString(digits)
		return b.String()
	}
	b.WriteString(digits[:len(digits)-d.scale])
	b.WriteByte('.')
	b.WriteString(digits[len(digits)-d.scale:])
	return b.String()
}

// abs returns |d|.
func (d decimal) abs() decimal { d.neg = false; return d }

// negate returns -d.
func (d decimal) negate() decimal {
	if !d.zero() {
		d.neg = !d.neg
	}
	return d
}

// mul returns d×f exactly (f from a crosswalk factor). A factor of 1 is
// the common case and costs nothing.
func (d decimal) mul(f decimal) decimal {
	if f.digits == "1" && f.scale == 0 && !f.neg {
		return d
	}
	var a, b big.Int
	a.SetString("0"+d.digits, 10)
	b.SetString("0"+f.digits, 10)
	a.Mul(&a, &b)
	out := decimal{neg: d.neg != f.neg, digits: a.String(), scale: d.scale + f.scale}
	for out.scale > 0 && strings.HasSuffix(out.digits, "0") {
		out.digits, out.scale = out.digits[:len(out.digits)-1], out.scale-1
	}
	if out.digits == "0" {
		out = decimal{}
	}
	return out
}

var one = decimal{digits: "1"}
