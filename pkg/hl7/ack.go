package hl7

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"strconv"
	"strings"
	"time"
)

// Acknowledgement codes (MSA-1).
const (
	AA = "AA" // original mode: application accept
	AE = "AE" // original mode: application error (sender may resend)
	AR = "AR" // original mode: application reject
	CA = "CA" // enhanced mode: commit accept
	CE = "CE" // enhanced mode: commit error
	CR = "CR" // enhanced mode: commit reject
)

// AckOptions say what an ACK answers.
type AckOptions struct {
	// Code is MSA-1.
	Code string
	// Text explains an error to a person (ERR-8, or MSA-3 before v2.5). No PHI.
	Text string
	// Errors locate problems (ERR segments); a *ParseError converts with ErrorOf.
	Errors []*ParseError
	// ControlID is the ACK's MSH-10; a unique one is generated when empty.
	ControlID string
	// Time is MSH-7; now when zero.
	Time time.Time
	// ExpectedSeq, when set, is MSA-4 (sequence-number protocol).
	ExpectedSeq *int64
	// Application and Facility name Sinew in MSH-3/MSH-4 when the inbound
	// MSH-5/MSH-6 are empty.
	Application, Facility string
}

// NewControlID returns a unique 20-character control id: "SNW" and 17
// random base-32 characters (85 bits), never a timestamp alone.
func NewControlID() string {
	var b [11]byte
	_, _ = rand.Read(b[:])
	return "SNW" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])[:17]
}

// Ack builds the acknowledgement of m: MSH-3..6 swapped, MSH-9
// ACK^<trigger>^ACK, MSA-1/MSA-2 (= m's MSH-10), and errors in the layout
// of m's version (ERR-2/3/4/8 from v2.5, MSA-3 and ERR-1 before).
func (m *Message) Ack(o AckOptions) []byte {
	h := header{
		d:        m.delims,
		sendApp:  m.Field("MSH", 5),
		sendFac:  m.Field("MSH", 6),
		recvApp:  m.Field("MSH", 3),
		recvFac:  m.Field("MSH", 4),
		event:    m.comp("MSH", 9, 2),
		control:  m.Field("MSH", 10),
		procID:   m.Field("MSH", 11),
		version:  m.Field("MSH", 12),
		haveMSH9: true,
	}
	return h.build(o)
}

// Nak answers bytes that could not be parsed as a message: it salvages what
// it can of MSH (delimiters, MSH-3..12) and otherwise uses defaults, so a
// sender always gets an answer.
func Nak(raw []byte, o AckOptions) []byte {
	return salvage(raw).build(o)
}

// salvage reads what it can of an unparseable message's MSH.
func salvage(raw []byte) header {
	raw = bytes.TrimPrefix(raw, bom)
	h := header{d: DefaultDelimiters}
	if len(raw) < 8 || string(raw[:3]) != "MSH" || !delimiterOK(raw[3]) {
		return h
	}
	fs := raw[3]
	line := raw
	if i := bytes.IndexAny(raw, "\r\n"); i >= 0 {
		line = raw[:i]
	}
	f := bytes.Split(line, []byte{fs})
	get := func(n int) []byte { // MSH-n is f[n-1]
		if n-1 < len(f) {
			return f[n-1]
		}
		return nil
	}
	if enc := get(2); len(enc) >= 2 {
		d := Delimiters{Field: fs, Component: enc[0], Repetition: enc[1]}
		if len(enc) > 2 {
			d.Escape = enc[2]
		}
		if len(enc) > 3 {
			d.Subcomponent = enc[3]
		}
		if valid(d) {
			h.d = d
		}
	}
	if h.d.Field != fs {
		return h // unsure where fields are: say nothing rather than something wrong
	}
	h.sendApp, h.sendFac, h.recvApp, h.recvFac = get(5), get(6), get(3), get(4)
	h.control, h.procID, h.version = get(10), get(11), get(12)
	h.event = nth(nth(get(9), h.d.Repetition, 0), h.d.Component, 1)
	return h
}

func valid(d Delimiters) bool {
	all := []byte{d.Field, d.Component, d.Repetition, d.Escape, d.Subcomponent}
	for i, c := range all {
		if c == 0 {
			continue
		}
		if !delimiterOK(c) {
			return false
		}
		for _, o := range all[i+1:] {
			if o == c {
				return false
			}
		}
	}
	return true
}

type header struct {
	d                                  Delimiters
	sendApp, sendFac, recvApp, recvFac []byte // of the ACK (swapped already)
	event, control, procID, version    []byte
	haveMSH9                           bool
}

func (h header) build(o AckOptions) []byte {
	errs := o.Errors[:0:0]
	for _, e := range o.Errors {
		if e != nil {
			errs = append(errs, e)
		}
	}
	o.Errors = errs
	d := h.d
	fs := d.Field
	esc := func(dst []byte, s string) []byte { return Escape(dst, []byte(s), d) }
	ts := o.Time
	if ts.IsZero() {
		ts = time.Now()
	}
	ctrl := o.ControlID
	if ctrl == "" {
		ctrl = NewControlID()
	}
	if len(h.sendApp) == 0 && o.Application != "" {
		h.sendApp = esc(nil, o.Application)
	}
	if len(h.sendFac) == 0 && o.Facility != "" {
		h.sendFac = esc(nil, o.Facility)
	}
	procID := h.procID
	if len(procID) == 0 {
		procID = []byte("P")
	}
	version := nth(h.version, d.Component, 0)
	modern := versionAtLeast(string(version), 2, 5) || len(version) == 0
	legacy := !versionAtLeast(string(version), 2, 5)

	b := make([]byte, 0, 256)
	b = append(b, "MSH"...)
	b = append(b, fs)
	b = append(b, d.EncodingCharacters()...)
	for _, f := range [][]byte{h.sendApp, h.sendFac, h.recvApp, h.recvFac} {
		b = append(b, fs)
		b = append(b, f...)
	}
	b = append(b, fs)
	b = append(b, ts.Format("20060102150405-0700")...)
	b = append(b, fs, fs)
	b = append(b, "ACK"...)
	b = append(b, d.Component)
	b = append(b, h.event...)
	b = append(b, d.Component)
	b = append(b, "ACK"...)
	b = append(b, fs)
	b = esc(b, ctrl)
	b = append(b, fs)
	b = append(b, procID...)
	b = append(b, fs)
	if len(h.version) > 0 {
		b = append(b, h.version...)
	} else {
		b = append(b, "2.5"...)
	}
	b = append(b, '\r')

	b = append(b, "MSA"...)
	b = append(b, fs)
	b = append(b, o.Code...)
	b = append(b, fs)
	b = append(b, h.control...)
	text := o.Text
	if text == "" && len(o.Errors) > 0 {
		text = o.Errors[0].Msg
	}
	if (legacy && text != "") || o.ExpectedSeq != nil {
		b = append(b, fs)
		if legacy {
			b = esc(b, text) // MSA-3, deprecated from v2.5
		}
	}
	if o.ExpectedSeq != nil {
		b = append(b, fs)
		b = strconv.AppendInt(b, *o.ExpectedSeq, 10)
	}
	b = append(b, '\r')

	for _, e := range o.Errors {
		code := e.Code
		if code == 0 {
			code = CodeInternal
		}
		sev := e.Severity
		if sev == "" {
			sev = "E"
		}
		b = append(b, "ERR"...)
		b = append(b, fs)
		if legacy {
			// ERR-1 ELD: segment^sequence^field^code&text&HL70357
			b = append(b, e.Segment...)
			b = append(b, d.Component)
			b = appendInt(b, e.SegmentSeq)
			b = append(b, d.Component)
			b = appendInt(b, e.Field)
			b = append(b, d.Component)
			b = strconv.AppendInt(b, int64(code), 10)
			sub := d.Subcomponent
			if sub == 0 {
				sub = d.Component
			}
			b = append(b, sub)
			b = esc(b, CodeText(code))
			b = append(b, sub)
			b = append(b, "HL70357"...)
		}
		if modern {
			// ERR-2 ERL, ERR-3 CWE, ERR-4 severity, ERR-8 user message.
			b = append(b, fs)
			b = append(b, e.Segment...)
			b = append(b, d.Component)
			b = appendInt(b, e.SegmentSeq)
			b = append(b, d.Component)
			b = appendInt(b, e.Field)
			b = append(b, d.Component)
			b = appendInt(b, e.Rep)
			b = append(b, d.Component)
			b = appendInt(b, e.Component)
			b = append(b, d.Component)
			b = appendInt(b, e.Subcomponent)
			b = bytes.TrimRight(b, string(d.Component))
			b = append(b, fs)
			b = strconv.AppendInt(b, int64(code), 10)
			b = append(b, d.Component)
			b = esc(b, CodeText(code))
			b = append(b, d.Component)
			b = append(b, "HL70357"...)
			b = append(b, fs)
			b = append(b, sev...)
			b = append(b, fs, fs, fs, fs)
			b = esc(b, e.Msg)
		}
		b = append(b, '\r')
	}
	if len(o.Errors) == 0 && text != "" && modern && !legacy {
		// A message without a location still reaches a person through ERR-8.
		b = append(b, "ERR"...)
		b = append(b, fs, fs, fs)
		b = strconv.AppendInt(b, CodeInternal, 10)
		b = append(b, d.Component)
		b = esc(b, CodeText(CodeInternal))
		b = append(b, d.Component)
		b = append(b, "HL70357"...)
		b = append(b, fs)
		if o.Code == AA || o.Code == CA {
			b = append(b, 'I')
		} else {
			b = append(b, 'E')
		}
		b = append(b, fs, fs, fs, fs)
		b = esc(b, text)
		b = append(b, '\r')
	}
	return b
}

func appendInt(b []byte, n int) []byte {
	if n <= 0 {
		return b
	}
	return strconv.AppendInt(b, int64(n), 10)
}

// versionAtLeast reports whether HL7 version v ("2.5.1") is at least major.minor.
func versionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(strings.TrimSpace(v), ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// ErrorOf returns err as a *ParseError when it is one (for AckOptions.Errors).
func ErrorOf(err error) *ParseError {
	for err != nil {
		if pe, ok := err.(*ParseError); ok {
			return pe
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return nil
		}
		err = u.Unwrap()
	}
	return nil
}

// AckMatches reports whether reply acknowledges sent: its MSA-2 is sent's
// MSH-10 (compared as sent, escapes and all). It reads only the header of
// sent, so it is cheap enough to run on every ACK of an MLLP client
// (mllp.ClientConfig.Match).
func AckMatches(sent, reply []byte) bool {
	var r Message
	if err := (Options{}).ParseInto(&r, reply); err != nil {
		return false
	}
	msa2, _ := r.Raw(Path{Segment: "MSA", Field: 2, Component: 1, Subcomponent: 1})
	h := salvage(sent)
	want := nth(nth(h.control, h.d.Repetition, 0), h.d.Component, 0)
	return bytes.Equal(msa2, want)
}
