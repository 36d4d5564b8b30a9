// Package schedule runs a flow's job on its flows.yaml schedule inside
// Sinew: a small cron parser (cron.go), one run at a time across replicas
// through a lease in KV (lease.go), a last-run watermark so a run missed
// while Sinew was down happens once on start, and a record of every run
// (start, end, outcome, steps and counts) that the CLI and the reconciler
// read (runs.go, scheduler.go).
package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cron is a parsed five-field cron expression (minute hour day-of-month
// month day-of-week), evaluated in UTC. Each field is *, a number, a range
// a-b, a list of those, and an optional /step. As in Vixie cron, when both
// day fields are restricted a day matching either one matches.
type Cron struct {
	min, hour, dom, mon, dow uint64 // bit sets
	domStar, dowStar         bool
	expr                     string
}

// field bounds, in expression order.
var bounds = [5]struct {
	name     string
	min, max int
}{{"minute", 0, 59}, {"hour", 0, 23}, {"day-of-month", 1, 31}, {"month", 1, 12}, {"day-of-week", 0, 7}}

// Parse reads a cron expression; errors name the field, not the input.
func Parse(expr string) (Cron, error) {
	fs := strings.Fields(expr)
	if len(fs) != 5 {
		return Cron{}, fmt.Errorf("schedule: cron expression has %d fields, want 5 (minute hour day-of-month month day-of-week)", len(fs))
	}
	var sets [5]uint64
	for i, f := range fs {
		s, err := parseField(f, bounds[i].min, bounds[i].max)
		if err != nil {
			return Cron{}, fmt.Errorf("schedule: %s field: %w", bounds[i].name, err)
		}
		sets[i] = s
	}
	if sets[4]&(1<<7) != 0 { // 7 is Sunday too
		sets[4] |= 1
		sets[4] &^= 1 << 7
	}
	return Cron{min: sets[0], hour: sets[1], dom: sets[2], mon: sets[3], dow: sets[4],
		domStar: fs[2] == "*", dowStar: fs[4] == "*", expr: strings.Join(fs, " ")}, nil
}

func parseField(f string, lo, hi int) (uint64, error) {
	var set uint64
	for _, part := range strings.Split(f, ",") {
		rng, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n <= 0 || n > hi {
				return 0, fmt.Errorf("step of %d bytes is not a number from 1 to %d", len(stepText), hi)
			}
			step = n
		}
		a, b := lo, hi
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			x, y, _ := strings.Cut(rng, "-")
			var err error
			if a, err = num(x, lo, hi); err != nil {
				return 0, err
			}
			if b, err = num(y, lo, hi); err != nil {
				return 0, err
			}
			if a > b {
				return 0, fmt.Errorf("range %d-%d runs backwards", a, b)
			}
		default:
			n, err := num(rng, lo, hi)
			if err != nil {
				return 0, err
			}
			a, b = n, n
			if hasStep {
				b = hi
			}
		}
		for v := a; v <= b; v += step {
			set |= 1 << uint(v)
		}
	}
	return set, nil
}

func num(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || len(s) > 2 {
		return 0, fmt.Errorf("value of %d bytes is not a number", len(s))
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("value %d is outside %d-%d", n, lo, hi)
	}
	return n, nil
}

// String is the expression, fields separated by one space.
func (c Cron) String() string { return c.expr }

func (c Cron) dayMatches(t time.Time) bool {
	dom := c.dom&(1<<uint(t.Day())) != 0
	dow := c.dow&(1<<uint(t.Weekday())) != 0
	switch {
	case c.domStar && c.dowStar:
		return true
	case c.domStar:
		return dow
	case c.dowStar:
		return dom
	}
	return dom || dow
}

// Next is the first scheduled time strictly after t (UTC, whole minutes);
// the zero time when none comes within five years (such as "0 0 30 2 *").
func (c Cron) Next(t time.Time) time.Time {
	t = t.UTC().Truncate(time.Minute).Add(time.Minute)
	end := t.AddDate(5, 0, 0)
	for t.Before(end) {
		if c.mon&(1<<uint(t.Month())) == 0 {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !c.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if c.hour&(1<<uint(t.Hour())) == 0 {
			t = t.Truncate(time.Hour).Add(time.Hour)
			continue
		}
		if c.min&(1<<uint(t.Minute())) == 0 {
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}
