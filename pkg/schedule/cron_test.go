package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestCronNext(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct{ expr, after, want string }{
		{"0 2 * * *", "2026-12-01 23:10", "2026-12-02 02:00"},
		{"0 2 * * *", "2026-12-02 02:00", "2026-12-03 02:00"},
		{"*/15 * * * *", "2026-12-02 10:07", "2026-12-02 10:15"},
		{"30 1 1 * *", "2026-12-02 00:00", "2027-01-01 01:30"},
		{"0 9 * * 1-5", "2026-12-05 10:00", "2026-12-07 09:00"}, // Saturday → Monday
		{"0 0 * * 7", "2026-12-02 00:00", "2026-12-06 00:00"},   // 7 is Sunday
		{"0 0 13 * 5", "2026-12-02 00:00", "2026-12-04 00:00"},  // either day field
		{"5,10 3-4 * 2 *", "2026-12-02 00:00", "2027-02-01 03:05"},
		{"0 0 29 2 *", "2026-03-01 00:00", "2028-02-29 00:00"},
	} {
		cr, err := Parse(c.expr)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		if got := cr.Next(at(c.after)); !got.Equal(at(c.want)) {
			t.Errorf("%s after %s: %s, want %s", c.expr, c.after, got.Format("2006-01-02 15:04"), c.want)
		}
	}
}

func TestCronRefusesNamingTheField(t *testing.T) {
	for expr, field := range map[string]string{
		"0 2 * *":     "want 5",
		"60 2 * * *":  "minute",
		"0 24 * * *":  "hour",
		"0 2 0 * *":   "day-of-month",
		"0 2 * 13 *":  "month",
		"0 2 * * 8":   "day-of-week",
		"0 5-2 * * *": "hour",
		"*/0 * * * *": "minute",
		"x * * * *":   "minute",
	} {
		_, err := Parse(expr)
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%q: %v, want an error naming %s", expr, err, field)
		}
	}
	if c, err := Parse("0 0 30 2 *"); err != nil || !c.Next(time.Now()).IsZero() {
		t.Errorf("Feb 30: %v %v, want no next time", c.Next(time.Now()), err)
	}
}
