// Package hl7 parses, queries and builds HL7 v2 messages.
//
// Parse makes one pass over a message and records where segments and fields
// start; values are sliced out of the original bytes on demand, so reading a
// field allocates nothing until it is decoded into a string. Delimiters come
// from each message's own MSH-1 and MSH-2, segment terminators may be CR, LF
// or CRLF, and the original bytes are always kept. Values are addressed by
// HAPI Terser-style paths (PID-5-1, PID-3(1)-4-2, OBX(2)-5): segment and
// field repetitions are 0-based, field, component and subcomponent numbers
// 1-based, and MSH-1 is the field separator itself.
package hl7

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"sync"
)

// Delimiters are a message's encoding characters.
type Delimiters struct {
	Field        byte
	Component    byte
	Repetition   byte
	Escape       byte // 0 when MSH-2 declares none
	Subcomponent byte // 0 when MSH-2 declares none
	Truncation   byte // v2.7+ fifth encoding character; 0 when absent
}

// DefaultDelimiters are |^~\& — what most senders use and what ACKs to
// unparseable messages are built with.
var DefaultDelimiters = Delimiters{Field: '|', Component: '^', Repetition: '~', Escape: '\\', Subcomponent: '&'}

// EncodingCharacters is MSH-2 for d.
func (d Delimiters) EncodingCharacters() string {
	b := []byte{d.Component, d.Repetition}
	if d.Escape != 0 {
		b = append(b, d.Escape)
		if d.Subcomponent != 0 {
			b = append(b, d.Subcomponent)
			if d.Truncation != 0 {
				b = append(b, d.Truncation)
			}
		}
	}
	return string(b)
}

// Warning is something odd about a message that did not stop it being parsed.
type Warning struct {
	Code   string // e.g. "bom", "lf-terminators", "charset-mismatch"
	Detail string
}

func (w Warning) String() string {
	if w.Detail == "" {
		return w.Code
	}
	return w.Code + ": " + w.Detail
}

// Warning codes.
const (
	WarnBOM             = "bom"
	WarnLF              = "lf-terminators"
	WarnCRLF            = "crlf-terminators"
	WarnBlankLines      = "blank-lines"
	WarnMSH2            = "msh2-nonstandard"
	WarnDelimiters      = "nonstandard-delimiters"
	WarnCharsetMismatch = "charset-mismatch"
	WarnCharsetFallback = "charset-fallback"
	WarnCharsetUnknown  = "charset-unknown"
	WarnNoControlID     = "missing-control-id"
	WarnSegmentName     = "segment-name"
)

// seg is one segment's place in the message bytes.
type seg struct {
	start, end int32 // the segment, without its terminator
}

// Message is one parsed HL7 v2 message. It is read-only and safe for
// concurrent reads.
type Message struct {
	raw      []byte // as given, minus a leading BOM
	delims   Delimiters
	segs     []seg
	warnings []Warning
	opts     Options

	// The charset is decided on first use: parsing never reads the text.
	csOnce  sync.Once
	charset Charset
}

// Options tune parsing. The zero value is what ingest uses by default.
type Options struct {
	// Charset overrides MSH-18 and detection (e.g. a site known to send
	// windows-1252 whatever it declares).
	Charset string
	// FallbackCharset decodes messages that declare nothing and are not
	// valid UTF-8; "windows-1252" when empty.
	FallbackCharset string
}

// Parse parses one message with default options.
func Parse(data []byte) (*Message, error) { return Options{}.Parse(data) }

// Parse parses one message. data must hold exactly one message (use Split
// for files, batches and streams); it is retained, not copied.
func (o Options) Parse(data []byte) (*Message, error) {
	m := &Message{}
	if err := o.parseInto(m, data); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Message) warn(code, detail string) {
	for _, w := range m.warnings {
		if w.Code == code {
			return
		}
	}
	m.warnings = append(m.warnings, Warning{Code: code, Detail: detail})
}

var bom = []byte{0xEF, 0xBB, 0xBF}

// ParseInto parses data into m, reusing m's memory: a receiver that parses
// message after message into the same Message allocates nothing. Values and
// byte slices read from m before are invalid afterwards.
func (o Options) ParseInto(m *Message, data []byte) error {
	return o.parseInto(m, data)
}

func (o Options) parseInto(m *Message, data []byte) error {
	*m = Message{segs: m.segs[:0], warnings: m.warnings[:0], opts: o}
	if bytes.HasPrefix(data, bom) {
		data = data[3:]
		m.warn(WarnBOM, "UTF-8 byte-order mark before MSH")
	}
	// Leading blank lines are tolerated.
	i := 0
	for i < len(data) && (data[i] == '\r' || data[i] == '\n') {
		i++
	}
	if i > 0 {
		data = data[i:]
		m.warn(WarnBlankLines, "")
	}
	m.raw = data
	d, err := m.readDelimiters()
	if err != nil {
		return err
	}
	m.delims = d
	if err := m.index(); err != nil {
		return err
	}
	if len(m.Field("MSH", 10)) == 0 {
		m.warn(WarnNoControlID, "MSH-10 is empty")
	}
	return nil
}

// readDelimiters reads MSH-1 and MSH-2.
func (m *Message) readDelimiters() (Delimiters, error) {
	raw := m.raw
	if len(raw) < 3 || string(raw[:3]) != "MSH" {
		return Delimiters{}, &ParseError{Segment: "MSH", SegmentSeq: 1, Code: CodeSegmentSequence, Msg: "message does not start with MSH"}
	}
	if len(raw) < 6 { // "MSH", MSH-1 and at least two encoding characters
		return Delimiters{}, &ParseError{Segment: "MSH", SegmentSeq: 1, Field: 2, Code: CodeRequiredField, Msg: "MSH too short to hold its encoding characters"}
	}
	d := Delimiters{Field: raw[3]}
	end := 4
	for end < len(raw) && raw[end] != d.Field && raw[end] != '\r' && raw[end] != '\n' {
		end++
	}
	enc := raw[4:end]
	switch len(enc) {
	case 2, 3, 4:
	case 5:
		if enc[3] == enc[2] {
			// "^~\\&": a doubled escape character, seen from senders that
			// escape their own MSH-2. Read it as ^~\&.
			m.warn(WarnMSH2, fmt.Sprintf("MSH-2 %q has a doubled escape character", enc))
			enc = []byte{enc[0], enc[1], enc[2], enc[4]}
		}
	default:
		return Delimiters{}, &ParseError{Segment: "MSH", SegmentSeq: 1, Field: 2, Code: CodeDataType,
			Msg: fmt.Sprintf("MSH-2 has %d encoding characters; want 4 (or 3 to 5)", len(enc))}
	}
	if len(enc) < 4 {
		m.warn(WarnMSH2, fmt.Sprintf("MSH-2 has %d encoding characters", len(enc)))
	}
	d.Component, d.Repetition = enc[0], enc[1]
	if len(enc) > 2 {
		d.Escape = enc[2]
	}
	if len(enc) > 3 {
		d.Subcomponent = enc[3]
	}
	if len(enc) > 4 {
		d.Truncation = enc[4]
	}
	all := []byte{d.Field, d.Component, d.Repetition, d.Escape, d.Subcomponent, d.Truncation}
	for i, c := range all {
		if c == 0 {
			continue
		}
		if !delimiterOK(c) {
			return Delimiters{}, &ParseError{Segment: "MSH", SegmentSeq: 1, Field: 2, Code: CodeDataType,
				Msg: fmt.Sprintf("encoding character %q is not allowed", c)}
		}
		for _, o := range all[i+1:] {
			if o == c {
				return Delimiters{}, &ParseError{Segment: "MSH", SegmentSeq: 1, Field: 2, Code: CodeDataType,
					Msg: fmt.Sprintf("encoding character %q is used twice", c)}
			}
		}
	}
	if d.Field != '|' || d.Component != '^' || d.Repetition != '~' || d.Escape != '\\' || d.Subcomponent != '&' {
		m.warn(WarnDelimiters, fmt.Sprintf("field separator %q, encoding characters %q", d.Field, d.EncodingCharacters()))
	}
	return d, nil
}

// delimiterOK reports whether c may be a delimiter: printable, not a letter,
// digit or space.
func delimiterOK(c byte) bool {
	return c > ' ' && c < 0x7f && !isAlnum(c)
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// index records where each segment starts and ends, in one pass that
// looks only for line ends (bytes.IndexByte: vectorised). Fields are found
// within a segment when asked for.
func (m *Message) index() error {
	raw := m.raw
	if cap(m.segs) == 0 {
		m.segs = make([]seg, 0, len(raw)/48+4)
	}
	m.segs = m.segs[:0]
	var sawCR, sawLF, sawCRLF, blank bool
	nextCR, nextLF := indexFrom(raw, 0, '\r'), indexFrom(raw, 0, '\n')
	pos := 0
	for {
		j := nextCR
		if j < 0 || (nextLF >= 0 && nextLF < j) {
			j = nextLF
		}
		if j < 0 {
			break
		}
		c := raw[j]
		if c == '\r' {
			nextCR = indexFrom(raw, j+1, '\r')
		} else {
			nextLF = indexFrom(raw, j+1, '\n')
			if j > 0 && raw[j-1] == '\r' {
				pos = j + 1 // the LF of a CRLF: the CR ended the segment
				continue
			}
		}
		if j > pos {
			if err := m.addSegment(seg{start: int32(pos), end: int32(j)}); err != nil {
				return err
			}
		} else if len(m.segs) > 0 {
			blank = true
		}
		switch {
		case c == '\r' && j+1 < len(raw) && raw[j+1] == '\n':
			sawCRLF = true
		case c == '\r':
			sawCR = true
		default:
			sawLF = true
		}
		pos = j + 1
	}
	if len(raw) > pos {
		if err := m.addSegment(seg{start: int32(pos), end: int32(len(raw))}); err != nil {
			return err
		}
	}
	switch {
	case sawCRLF:
		m.warn(WarnCRLF, "segments end in CRLF")
	case sawLF && !sawCR:
		m.warn(WarnLF, "segments end in LF")
	}
	if blank {
		m.warn(WarnBlankLines, "")
	}
	if len(m.segs) == 0 {
		return &ParseError{Segment: "MSH", SegmentSeq: 1, Code: CodeSegmentSequence, Msg: "no segments"}
	}
	return nil
}

// indexFrom is bytes.IndexByte of b[from:], as an index into b.
func indexFrom(b []byte, from int, c byte) int {
	if from >= len(b) {
		return -1
	}
	if i := bytes.IndexByte(b[from:], c); i >= 0 {
		return from + i
	}
	return -1
}

func (m *Message) addSegment(s seg) error {
	raw := m.raw
	name := raw[s.start:min(s.end, s.start+3)]
	// A line of only spaces (trailing whitespace in files) is not a segment.
	if len(bytes.TrimSpace(raw[s.start:s.end])) == 0 {
		m.warn(WarnBlankLines, "")
		return nil
	}
	if len(m.segs) > 0 && (string(name) == "MSH" || string(name) == "BHS" || string(name) == "FHS" ||
		string(name) == "BTS" || string(name) == "FTS") {
		return &ParseError{Segment: string(name), SegmentSeq: 1, Code: CodeSegmentSequence,
			Msg: fmt.Sprintf("%s segment inside a message: use hl7.Split for files and batches", name)}
	}
	if len(name) < 3 || !isSegName(name) || (s.end > s.start+3 && raw[s.start+3] != m.delims.Field) {
		m.warn(WarnSegmentName, fmt.Sprintf("segment %d does not start with a 3-character name", len(m.segs)+1))
	}
	m.segs = append(m.segs, s)
	return nil
}

func isSegName(b []byte) bool {
	for _, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Bytes returns the message as it was given (minus a leading BOM).
func (m *Message) Bytes() []byte { return m.raw }

// Encode returns the message with CR segment terminators: for a message
// that used CR it is byte for byte what was parsed.
func (m *Message) Encode() []byte {
	n := 0
	for _, s := range m.segs {
		n += int(s.end-s.start) + 1
	}
	out := make([]byte, 0, n)
	for _, s := range m.segs {
		out = append(out, m.raw[s.start:s.end]...)
		out = append(out, '\r')
	}
	return out
}

// WriteTo writes what Encode returns, without building it: for hashing a
// message's canonical form.
func (m *Message) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for _, s := range m.segs {
		k, err := w.Write(m.raw[s.start:s.end])
		n += int64(k)
		if err != nil {
			return n, err
		}
		k, err = w.Write(cr)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

var cr = []byte{'\r'}

// Delimiters returns the message's encoding characters.
func (m *Message) Delimiters() Delimiters { return m.delims }

// Warnings returns what was odd about the message.
func (m *Message) Warnings() []Warning {
	m.decideCharset()
	return m.warnings
}

// Charset is the character set the message's text is decoded with.
func (m *Message) Charset() Charset {
	m.decideCharset()
	return m.charset
}

// decideCharset runs once, on the first read of text, charset or warnings.
func (m *Message) decideCharset() {
	m.csOnce.Do(func() { m.charset = m.opts.chooseCharset(m) })
}

// SegmentCount is the number of segments.
func (m *Message) SegmentCount() int { return len(m.segs) }

// SegmentName is the name of the i-th segment (0-based).
func (m *Message) SegmentName(i int) string {
	s := m.segs[i]
	return string(m.raw[s.start:min(s.end, s.start+3)])
}

// Segment returns the i-th segment's bytes, without terminator.
func (m *Message) Segment(i int) []byte {
	s := m.segs[i]
	return m.raw[s.start:s.end]
}

// find returns the index of the rep-th (0-based) segment named name, or -1.
func (m *Message) find(name string, rep int) int {
	for i, s := range m.segs {
		if s.end-s.start >= 3 && string(m.raw[s.start:s.start+3]) == name {
			if rep == 0 {
				return i
			}
			rep--
		}
	}
	return -1
}

// Count returns how many segments are named name.
func (m *Message) Count(name string) int {
	n := 0
	for _, s := range m.segs {
		if s.end-s.start >= 3 && string(m.raw[s.start:s.start+3]) == name {
			n++
		}
	}
	return n
}

// field returns field n (1-based) of segment i, raw (escaped); nil if absent.
func (m *Message) field(i, n int) []byte {
	s := m.segs[i]
	b := m.raw[s.start:s.end]
	name := b[:min(len(b), 3)]
	if n == 0 {
		return name
	}
	t := n // field n follows the n-th separator ...
	if string(name) == "MSH" {
		if n == 1 {
			return b[3:4] // MSH-1 is the separator itself
		}
		t = n - 1 // ... except in MSH, where the first separator is MSH-1
	}
	fs := m.delims.Field
	pos := 0
	for ; t > 0; t-- {
		j := bytes.IndexByte(b[pos:], fs)
		if j < 0 {
			return nil
		}
		pos += j + 1
	}
	if j := bytes.IndexByte(b[pos:], fs); j >= 0 {
		return b[pos : pos+j]
	}
	return b[pos:]
}

// Field returns field n of the first segment named name, raw (escapes
// not decoded); nil when absent.
func (m *Message) Field(name string, n int) []byte {
	i := m.find(name, 0)
	if i < 0 {
		return nil
	}
	return m.field(i, n)
}

// isMSH2 reports whether segment i field n is MSH-2, which holds the
// delimiters and is never split or unescaped.
func (m *Message) isMSH2(i, n int) bool {
	return n == 2 && m.SegmentName(i) == "MSH"
}

// nth returns the n-th (0-based) piece of b split by sep, or nil.
func nth(b []byte, sep byte, n int) []byte {
	if sep == 0 {
		if n == 0 {
			return b
		}
		return nil
	}
	for ; n > 0; n-- {
		j := bytes.IndexByte(b, sep)
		if j < 0 {
			return nil
		}
		b = b[j+1:]
	}
	if j := bytes.IndexByte(b, sep); j >= 0 {
		return b[:j]
	}
	return b
}

// count returns how many pieces b has when split by sep (0 for empty b).
func count(b []byte, sep byte) int {
	if len(b) == 0 {
		return 0
	}
	if sep == 0 {
		return 1
	}
	return bytes.Count(b, []byte{sep}) + 1
}

// Header fields.

func (m *Message) comp(name string, field, comp int) []byte {
	f := m.Field(name, field)
	if f == nil {
		return nil
	}
	return nth(nth(f, m.delims.Repetition, 0), m.delims.Component, comp-1)
}

func (m *Message) text(b []byte) string { return string(m.decode(nil, b)) }

// Type is MSH-9-1, e.g. "ADT".
func (m *Message) Type() string { return m.text(m.comp("MSH", 9, 1)) }

// Event is MSH-9-2, e.g. "A01".
func (m *Message) Event() string { return m.text(m.comp("MSH", 9, 2)) }

// Structure is MSH-9-3, e.g. "ADT_A01".
func (m *Message) Structure() string { return m.text(m.comp("MSH", 9, 3)) }

// ControlID is MSH-10.
func (m *Message) ControlID() string { return m.text(m.comp("MSH", 10, 1)) }

// Version is MSH-12-1, e.g. "2.5.1".
func (m *Message) Version() string { return m.text(m.comp("MSH", 12, 1)) }

// ProcessingID is MSH-11-1 (P, T, D).
func (m *Message) ProcessingID() string { return m.text(m.comp("MSH", 11, 1)) }

// SendingApplication is MSH-3-1.
func (m *Message) SendingApplication() string { return m.text(m.comp("MSH", 3, 1)) }

// SendingFacility is MSH-4-1.
func (m *Message) SendingFacility() string { return m.text(m.comp("MSH", 4, 1)) }

// ReceivingApplication is MSH-5-1.
func (m *Message) ReceivingApplication() string { return m.text(m.comp("MSH", 5, 1)) }

// ReceivingFacility is MSH-6-1.
func (m *Message) ReceivingFacility() string { return m.text(m.comp("MSH", 6, 1)) }

// AcceptAckType is MSH-15 (AL, NE, ER, SU), empty in original mode.
func (m *Message) AcceptAckType() string { return m.text(m.comp("MSH", 15, 1)) }

// AppAckType is MSH-16 (AL, NE, ER, SU), empty in original mode.
func (m *Message) AppAckType() string { return m.text(m.comp("MSH", 16, 1)) }

// SequenceNumber is MSH-13 and whether the sender uses the sequence-number
// protocol (MSH-13 present and numeric).
func (m *Message) SequenceNumber() (int64, bool) {
	b := m.comp("MSH", 13, 1)
	if len(b) == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// EnhancedMode reports whether the sender asked for enhanced
// acknowledgement (MSH-15 or MSH-16 valued).
func (m *Message) EnhancedMode() bool {
	return len(m.comp("MSH", 15, 1)) > 0 || len(m.comp("MSH", 16, 1)) > 0
}
