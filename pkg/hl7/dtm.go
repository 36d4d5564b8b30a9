package hl7

import (
	"strconv"
	"strings"
	"time"
)

// ParseDTM reads an HL7 date/time (DTM): YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ].
// Fractional seconds are dropped; without an offset, or with one that is
// not four digits, the time is UTC. The result is in UTC.
func ParseDTM(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	loc := time.UTC
	if i := strings.IndexAny(s, "+-"); i >= 0 {
		z := s[i:]
		s = s[:i]
		if len(z) == 5 {
			h, err1 := strconv.Atoi(z[1:3])
			m, err2 := strconv.Atoi(z[3:5])
			if err1 == nil && err2 == nil {
				off := h*3600 + m*60
				if z[0] == '-' {
					off = -off
				}
				loc = time.FixedZone("", off)
			}
		}
	}
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	layout := ""
	switch len(s) {
	case 4:
		layout = "2006"
	case 6:
		layout = "200601"
	case 8:
		layout = "20060102"
	case 10:
		layout = "2006010215"
	case 12:
		layout = "200601021504"
	case 14:
		layout = "20060102150405"
	default:
		return time.Time{}, false
	}
	t, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}
