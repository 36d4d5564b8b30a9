package fbdi

import (
	"fmt"

	"github.com/sinewhq/sinew/pkg/money"
)

// Amount is money in hundredths of the currency unit (cents for USD): the
// project's one exact amount type.
type Amount = money.Amount

// ParseAmount parses a decimal amount with at most two decimal places:
// "1250", "1250.5", "1250.00", "-3.20". It refuses signs other than a
// leading minus, exponents, thousands separators, blanks, NaN and Inf, a
// third decimal, and values beyond the range of Amount. Errors wrap ErrAmount.
func ParseAmount(s string) (Amount, error) {
	a, err := money.Parse(s)
	if err != nil {
		return 0, fmt.Errorf("fbdi: parsing amount %q: %w: %w", s, ErrAmount, err)
	}
	return a, nil
}

// parseAmount serves Check on bytes, without copying.
func parseAmount(b []byte) (Amount, error) {
	a, err := money.ParseBytes(b)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrAmount, err)
	}
	return a, nil
}

var errOverflow = fmt.Errorf("%w: running total overflows", ErrAmount)

// add returns a+b, or an error instead of wrapping around.
func add(a, b Amount) (Amount, error) {
	s, err := money.Add(a, b)
	if err != nil {
		return 0, errOverflow
	}
	return s, nil
}
