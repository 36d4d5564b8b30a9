package fusion

import "github.com/sinewhq/sinew/pkg/decimal"

// Decimal is an exact decimal quantity as Fusion writes it ("-2", "2.5"):
// Sinew's one decimal type, pkg/decimal. The zero value "" means absent
// and is written as null.
type Decimal = decimal.Decimal

// ParseDecimal checks s ("-2", "2.50", "+3", "1.5E2") and returns it in
// plain notation: no exponent, no leading '+', scale kept ("2.50").
func ParseDecimal(s string) (Decimal, error) { return decimal.Parse(s) }

// MustDecimal is ParseDecimal for constants; it panics on a bad literal.
func MustDecimal(s string) Decimal { return decimal.MustParse(s) }
