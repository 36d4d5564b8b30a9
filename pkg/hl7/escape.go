package hl7

import "bytes"

// Unescape appends src with HL7 escape sequences resolved to dst: \F\ \S\
// \T\ \R\ \E\ (and \P\ for the truncation character) become the delimiter
// they name, \Xhh...\ becomes the bytes it spells (still in the message's
// charset). Formatting escapes (\.br\, \H\, \N\, \Zxx\, \Cxxyy\, \Mxxyyzz\
// ...) and anything malformed are passed through unchanged.
func Unescape(dst, src []byte, d Delimiters) []byte {
	e := d.Escape
	if e == 0 || bytes.IndexByte(src, e) < 0 {
		return append(dst, src...)
	}
	for len(src) > 0 {
		i := bytes.IndexByte(src, e)
		if i < 0 {
			return append(dst, src...)
		}
		dst = append(dst, src[:i]...)
		src = src[i:]
		j := bytes.IndexByte(src[1:], e)
		if j < 0 {
			return append(dst, src...) // a lone escape character stays
		}
		seq := src[1 : 1+j]
		whole := src[:j+2]
		src = src[j+2:]
		if len(seq) == 1 {
			var c byte
			switch seq[0] {
			case 'F':
				c = d.Field
			case 'S':
				c = d.Component
			case 'T':
				c = d.Subcomponent
			case 'R':
				c = d.Repetition
			case 'E':
				c = d.Escape
			case 'P':
				c = d.Truncation
			}
			if c != 0 {
				dst = append(dst, c)
				continue
			}
		}
		if len(seq) > 1 && seq[0] == 'X' && len(seq)%2 == 1 {
			if out, ok := appendHex(dst, seq[1:]); ok {
				dst = out
				continue
			}
		}
		dst = append(dst, whole...)
	}
	return dst
}

func appendHex(dst, hex []byte) ([]byte, bool) {
	n := len(dst)
	for i := 0; i+1 < len(hex); i += 2 {
		hi, ok1 := unhex(hex[i])
		lo, ok2 := unhex(hex[i+1])
		if !ok1 || !ok2 {
			return dst[:n], false
		}
		dst = append(dst, hi<<4|lo)
	}
	return dst, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// Escape appends src to dst with every character that would be read as
// structure escaped: the delimiters, the escape character itself, and CR
// and LF (as \X0D\ and \X0A\).
func Escape(dst, src []byte, d Delimiters) []byte {
	e := d.Escape
	if e == 0 {
		e = '\\'
	}
	for _, c := range src {
		var name string
		switch {
		case c == d.Field:
			name = "F"
		case c == d.Component:
			name = "S"
		case d.Subcomponent != 0 && c == d.Subcomponent:
			name = "T"
		case c == d.Repetition:
			name = "R"
		case c == e:
			name = "E"
		case d.Truncation != 0 && c == d.Truncation:
			name = "P"
		case c == '\r':
			name = "X0D"
		case c == '\n':
			name = "X0A"
		default:
			dst = append(dst, c)
			continue
		}
		dst = append(dst, e)
		dst = append(dst, name...)
		dst = append(dst, e)
	}
	return dst
}
