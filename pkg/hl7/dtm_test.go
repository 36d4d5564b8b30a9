package hl7_test

import (
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
)

func TestParseDTM(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	}
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026", utc(2026, 1, 1, 0, 0, 0), true},
		{"202611", utc(2026, 11, 1, 0, 0, 0), true},
		{"20261126", utc(2026, 11, 26, 0, 0, 0), true},
		{"2026112610", utc(2026, 11, 26, 10, 0, 0), true},
		{"202611261015", utc(2026, 11, 26, 10, 15, 0), true},
		{"20261126101500", utc(2026, 11, 26, 10, 15, 0), true},
		{"20261126101500.1234", utc(2026, 11, 26, 10, 15, 0), true},
		{"20261126101500-0500", utc(2026, 11, 26, 15, 15, 0), true},
		{"20261126101500.5+0130", utc(2026, 11, 26, 8, 45, 0), true},
		{" 20261126 ", utc(2026, 11, 26, 0, 0, 0), true},
		{"20261126101500+05", utc(2026, 11, 26, 10, 15, 0), true}, // a short offset is ignored: UTC
		{"", time.Time{}, false},
		{"2026112", time.Time{}, false},
		{"20261326", time.Time{}, false},
		{"ABCDEFGH", time.Time{}, false},
	} {
		got, ok := hl7.ParseDTM(tc.in)
		if ok != tc.ok || !got.Equal(tc.want) || ok && got.Location() != time.UTC {
			t.Errorf("ParseDTM(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseDTM(f *testing.F) {
	for _, s := range []string{"20261126101500", "20261126101500.1234-0500", "2026", "202611261015+0130", "", "-", "9999123123595"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := hl7.ParseDTM(s)
		if !ok {
			if !got.IsZero() {
				t.Fatalf("ParseDTM(%q) failed with %v", s, got)
			}
			return
		}
		if got.Location() != time.UTC || got.Nanosecond() != 0 {
			t.Fatalf("ParseDTM(%q) = %v: want whole seconds in UTC", s, got)
		}
		// What it read, written back at second precision, reads the same
		// (an offset can move year 0000 or 9999 out of DTM's four digits).
		if y := got.Year(); y < 1 || y > 9999 {
			return
		}
		if back, ok := hl7.ParseDTM(got.Format("20060102150405")); !ok || !back.Equal(got) {
			t.Fatalf("ParseDTM(%q) = %v; its DTM form reads %v, %v", s, got, back, ok)
		}
	})
}
