package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"sync"
)

// redacted replaces the value of every deny-listed field.
const redacted = `"[REDACTED]"`

// withheld replaces a line that looks like JSON, mentions a deny-listed key
// and cannot be parsed: without a parse there is no telling which bytes are
// PHI, so none of them are written.
const withheld = `{"level":"error","message":"telemetry: log line withheld: malformed JSON with a PHI field"}`

// deniedKey reports whether a field called key may hold PHI. Keys compare
// ASCII case-insensitively and ignoring "_" and "-", so "MRN", "firstName",
// "first_name" and "First-Name" are all caught. Only whole keys match: a
// value mentioning "mrn", or a key like "stream_name", is left alone.
func deniedKey(key []byte) bool {
	// The longest normalised entry is 11 bytes; anything longer is safe.
	var buf [12]byte
	n := 0
	for _, c := range key {
		switch {
		case c == '_' || c == '-':
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		if n == len(buf) {
			return false
		}
		buf[n] = c
		n++
	}
	switch string(buf[:n]) {
	case "name", "patient", "patientname", "firstname", "lastname",
		"given", "family", "mrn", "ssn", "dob", "birthdate",
		"address", "phone", "email", "payload", "body", "raw",
		"messagebody", "hl7", "pid":
		return true
	}
	return false
}

// Redactor is an io.Writer that removes PHI from JSON log lines before
// passing them on. In every line that is a JSON object, the value of each
// field whose key is on the deny list, at any depth and inside arrays, is
// replaced by "[REDACTED]"; everything else is written byte for byte, so
// field order and number formatting are kept. Lines that are not JSON
// objects pass through unchanged.
//
// Each Write is taken to hold whole lines, as zerolog writes them; a line
// split across two Writes would be examined as two lines. A Redactor is safe
// for concurrent use, and each Write reaches the underlying writer in one
// call, so concurrent lines do not interleave.
type Redactor struct {
	mu sync.Mutex // serialises writes to w
	w  io.Writer
}

// NewRedactor returns a Redactor writing to w.
func NewRedactor(w io.Writer) *Redactor {
	return &Redactor{w: w}
}

// Write writes p to the underlying writer with PHI fields redacted. It
// returns len(p) on success, whatever the number of bytes written on.
func (r *Redactor) Write(p []byte) (int, error) {
	out := p
	// Fast path: most lines carry no deny-listed key and are not copied.
	if needsRedaction(p) {
		out = redactLines(p)
	}
	r.mu.Lock()
	_, err := r.w.Write(out)
	r.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// needsRedaction reports whether any line of p is a JSON object with a
// deny-listed key, by a byte scan that does not parse.
func needsRedaction(p []byte) bool {
	for len(p) > 0 {
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, p = p[:i], p[i+1:]
		} else {
			p = nil
		}
		if isObject(line) && hasDeniedKey(line) {
			return true
		}
	}
	return false
}

func isObject(line []byte) bool {
	line = bytes.TrimLeft(line, " \t\r")
	return len(line) > 0 && line[0] == '{'
}

// hasDeniedKey reports whether line has a quoted string followed by a colon
// (a JSON key) that is on the deny list. A key containing an escape is
// counted as denied, since "m\u0072n" is "mrn" once decoded; the slow path
// decodes it properly.
func hasDeniedKey(line []byte) bool {
	for {
		i := bytes.IndexByte(line, '"')
		if i < 0 {
			return false
		}
		line = line[i+1:]
		end, escaped := stringEnd(line)
		if end < 0 {
			return false
		}
		key := line[:end]
		line = line[end+1:]
		if !followedByColon(line) {
			continue
		}
		if escaped || deniedKey(key) {
			return true
		}
	}
}

// stringEnd returns the index of the quote closing the JSON string whose
// contents start s, or -1, and whether the string holds escapes.
func stringEnd(s []byte) (end int, escaped bool) {
	off := 0
	for {
		i := bytes.IndexByte(s[off:], '"')
		if i < 0 {
			return -1, escaped
		}
		end = off + i
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for j := end - 1; j >= 0 && s[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return end, escaped || bytes.IndexByte(s[:end], '\\') >= 0
		}
		escaped = true
		off = end + 1
	}
}

func followedByColon(s []byte) bool {
	for _, c := range s {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case ':':
			return true
		}
		return false
	}
	return false
}

// redactLines returns p with every JSON object line redacted.
func redactLines(p []byte) []byte {
	out := make([]byte, 0, len(p))
	for len(p) > 0 {
		line, rest, nl := p, []byte(nil), false
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, rest, nl = p[:i], p[i+1:], true
		}
		p = rest
		switch {
		case !isObject(line) || !hasDeniedKey(line):
			out = append(out, line...)
		default:
			spans, err := deniedSpans(line)
			if err != nil {
				out = append(out, withheld...)
				break
			}
			prev := 0
			for _, s := range spans {
				out = append(out, line[prev:s.start]...)
				out = append(out, redacted...)
				prev = s.end
			}
			out = append(out, line[prev:]...)
		}
		if nl {
			out = append(out, '\n')
		}
	}
	return out
}

type span struct{ start, end int }

// deniedSpans parses line as one JSON value and returns the byte ranges of
// the values of deny-listed fields, in order and without overlap (the value
// of a denied field is not searched further).
func deniedSpans(line []byte) ([]span, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var spans []span
	if err := walkValue(dec, &spans); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after JSON value")
	}
	return spans, nil
}

func walkValue(dec *json.Decoder, spans *[]span) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			key, ok := tok.(string)
			if !ok {
				return errors.New("object key is not a string")
			}
			if !deniedKey([]byte(key)) {
				if err := walkValue(dec, spans); err != nil {
					return err
				}
				continue
			}
			// Decoding into a RawMessage consumes the whole value; it holds
			// the value's exact bytes, which end at the new input offset.
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return err
			}
			end := int(dec.InputOffset())
			*spans = append(*spans, span{start: end - len(raw), end: end})
		}
		_, err = dec.Token() // '}'
		return err
	case json.Delim('['):
		for dec.More() {
			if err := walkValue(dec, spans); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
		return err
	}
	return nil
}
