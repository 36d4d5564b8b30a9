package schedule

import (
	"testing"
	"time"
)

// FuzzParse: any input parses or is refused without panicking, and a
// parsed expression's next time is after the given time and matches it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0 2 * * *", "*/5 1-3,7 * * 1-5", "0 0 29 2 *", "1 2 3 4 5", "0-59/7 */2 1,15 */3 0-7"} {
		f.Add(s)
	}
	from := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		n := c.Next(from)
		if n.IsZero() {
			return
		}
		if !n.After(from) {
			t.Fatalf("%q: next %v not after %v", s, n, from)
		}
		if c.mon&(1<<uint(n.Month())) == 0 || c.hour&(1<<uint(n.Hour())) == 0 || c.min&(1<<uint(n.Minute())) == 0 || !c.dayMatches(n) {
			t.Fatalf("%q: next %v does not match", s, n)
		}
		if again, err := Parse(c.String()); err != nil || !again.Next(from).Equal(n) {
			t.Fatalf("%q: String %q does not parse back the same", s, c.String())
		}
	})
}
