package hl7

import (
	"encoding/binary"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
)

// Charset is how a message's text is decoded, and why.
type Charset struct {
	// Name is the canonical name: "US-ASCII", "UTF-8", "ISO-8859-1",
	// "windows-1252", ...
	Name string
	// Declared is MSH-18 as sent ("" when absent).
	Declared string
	// Source says what decided: "override", "msh-18", "detected" or "fallback".
	Source string

	enc encoding.Encoding // nil for UTF-8 and ASCII
}

// charsets maps HL7 table 0211 values and common names to encodings.
func lookupCharset(name string) (string, encoding.Encoding, bool) {
	n := strings.ToUpper(strings.TrimSpace(name))
	switch n {
	case "ASCII", "ISO IR6", "US-ASCII":
		return "US-ASCII", nil, true
	case "UNICODE UTF-8", "UTF-8", "UTF8":
		return "UTF-8", nil, true
	case "8859/1", "ISO IR100", "ISO-8859-1", "LATIN1":
		return "ISO-8859-1", charmap.ISO8859_1, true
	case "8859/2", "ISO IR101", "ISO-8859-2":
		return "ISO-8859-2", charmap.ISO8859_2, true
	case "8859/3", "ISO-8859-3":
		return "ISO-8859-3", charmap.ISO8859_3, true
	case "8859/4", "ISO-8859-4":
		return "ISO-8859-4", charmap.ISO8859_4, true
	case "8859/5", "ISO IR144", "ISO-8859-5":
		return "ISO-8859-5", charmap.ISO8859_5, true
	case "8859/6", "ISO IR127", "ISO-8859-6":
		return "ISO-8859-6", charmap.ISO8859_6, true
	case "8859/7", "ISO IR126", "ISO-8859-7":
		return "ISO-8859-7", charmap.ISO8859_7, true
	case "8859/8", "ISO IR138", "ISO-8859-8":
		return "ISO-8859-8", charmap.ISO8859_8, true
	case "8859/9", "ISO IR148", "ISO-8859-9":
		return "ISO-8859-9", charmap.ISO8859_9, true
	case "8859/15", "ISO-8859-15":
		return "ISO-8859-15", charmap.ISO8859_15, true
	case "WINDOWS-1252", "CP1252", "CP-1252":
		return "windows-1252", charmap.Windows1252, true
	}
	return "", nil, false
}

// chooseCharset decides in order: configured override, MSH-18, UTF-8
// validity, configured fallback. A declaration the bytes contradict is
// flagged, not silently obeyed.
func (o Options) chooseCharset(m *Message) Charset {
	declared := string(nth(m.Field("MSH", 18), m.delims.Repetition, 0))
	body := m.raw
	ascii := isASCII(body)
	validUTF8 := !ascii && utf8.Valid(body)
	if o.Charset != "" {
		if name, enc, ok := lookupCharset(o.Charset); ok {
			return Charset{Name: name, Declared: declared, Source: "override", enc: enc}
		}
		m.warn(WarnCharsetUnknown, "configured charset "+o.Charset+" is not supported")
	}
	fallback := func() Charset {
		name, enc, ok := lookupCharset(o.FallbackCharset)
		if !ok {
			name, enc = "windows-1252", charmap.Windows1252
		}
		return Charset{Name: name, Declared: declared, Source: "fallback", enc: enc}
	}
	if declared != "" {
		name, enc, ok := lookupCharset(declared)
		switch {
		case !ok:
			// Not a known table 0211 code: named by length only (a field value).
			m.warn(WarnCharsetUnknown, "MSH-18 ("+strconv.Itoa(len(declared))+" bytes) is not a supported charset")
		case ascii:
			return Charset{Name: name, Declared: declared, Source: "msh-18", enc: enc}
		case name == "UTF-8" && !validUTF8:
			m.warn(WarnCharsetMismatch, "MSH-18 says UTF-8 but the bytes are not valid UTF-8")
			return fallback()
		case name == "UTF-8":
			return Charset{Name: name, Declared: declared, Source: "msh-18"}
		case validUTF8:
			// Latin text is almost never valid multi-byte UTF-8 by accident:
			// the bytes are UTF-8 whatever the header says.
			m.warn(WarnCharsetMismatch, "MSH-18 says "+declared+" but the bytes are UTF-8")
			return Charset{Name: "UTF-8", Declared: declared, Source: "detected"}
		case name == "US-ASCII":
			m.warn(WarnCharsetMismatch, "MSH-18 says ASCII but the bytes are not")
			return fallback()
		default:
			return Charset{Name: name, Declared: declared, Source: "msh-18", enc: enc}
		}
	}
	switch {
	case ascii:
		return Charset{Name: "US-ASCII", Declared: declared, Source: "detected"}
	case validUTF8:
		return Charset{Name: "UTF-8", Declared: declared, Source: "detected"}
	}
	m.warn(WarnCharsetFallback, "no charset declared and the bytes are not UTF-8")
	return fallback()
}

func isASCII(b []byte) bool {
	var acc uint64
	for ; len(b) >= 8; b = b[8:] {
		acc |= binary.LittleEndian.Uint64(b)
	}
	for _, c := range b {
		acc |= uint64(c)
	}
	return acc&0x8080808080808080 == 0
}

// decode appends the text of raw value b to dst: escapes resolved, then
// converted to UTF-8.
func (m *Message) decode(dst, b []byte) []byte {
	m.decideCharset()
	if m.charset.enc == nil {
		out := Unescape(dst, b, m.delims)
		if m.charset.Name == "UTF-8" || isASCII(out[len(dst):]) {
			return out
		}
		// Declared ASCII/UTF-8 but not: keep the bytes valid as UTF-8.
		return []byte(strings.ToValidUTF8(string(out), "\uFFFD"))
	}
	var tmp [256]byte
	raw := Unescape(tmp[:0], b, m.delims)
	if isASCII(raw) {
		return append(dst, raw...)
	}
	out, err := m.charset.enc.NewDecoder().Bytes(raw)
	if err != nil {
		return append(dst, raw...)
	}
	return append(dst, out...)
}
