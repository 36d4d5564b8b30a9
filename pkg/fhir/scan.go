package fhir

import (
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// scanner is a validating, allocation-free JSON reader over a resource's
// bytes: Parse and Decode walk the few members they need with it and
// skip the rest in the same pass, instead of running encoding/json's
// validation and reflection over the whole resource twice. Syntax is
// checked as strictly as encoding/json does (RFC 8259); a syntax error
// sets bad and the caller reports it with syntaxError's offset.
type scanner struct {
	b     []byte
	i     int
	bad   bool
	depth int
}

// maxDepth bounds nesting as encoding/json does (10,000).
const maxDepth = 10000

var errSyntax = errors.New("fhir: malformed JSON")

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek is the next non-space byte (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) fail() error { s.bad = true; return errSyntax }

// str reads a string token and returns its content (escapes left as
// they are) and whether it has any.
func (s *scanner) str() ([]byte, bool, error) {
	if s.peek() != '"' {
		return nil, false, s.fail()
	}
	s.i++
	start, esc := s.i, false
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			out := s.b[start:s.i]
			s.i++
			return out, esc, nil
		case c == '\\':
			esc = true
			s.i++
			if s.i >= len(s.b) {
				return nil, false, s.fail()
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if s.i+4 >= len(s.b) {
					return nil, false, s.fail()
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return nil, false, s.fail()
					}
				}
				s.i += 5
			default:
				return nil, false, s.fail()
			}
		case c < 0x20:
			return nil, false, s.fail()
		default:
			s.i++
		}
	}
	return nil, false, s.fail()
}

// stringValue reads a string token as a Go string.
func (s *scanner) stringValue() (string, error) {
	start := s.i
	raw, esc, err := s.str()
	if err != nil {
		return "", err
	}
	if !esc && utf8.Valid(raw) {
		return string(raw), nil
	}
	// The rare escaped (or not UTF-8) string: encoding/json's unquoting,
	// which replaces invalid UTF-8 as it does everywhere (the token, after
	// any leading space, is valid).
	var v string
	if err := json.Unmarshal(s.b[start:s.i], &v); err != nil {
		return "", s.fail()
	}
	return v, nil
}

// number reads a number token (RFC 8259 grammar) and returns its text.
func (s *scanner) number() ([]byte, error) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
		}
	default:
		return nil, s.fail()
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.i >= len(s.b) || s.b[s.i] < '0' || s.b[s.i] > '9' {
			return nil, s.fail()
		}
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.i >= len(s.b) || s.b[s.i] < '0' || s.b[s.i] > '9' {
			return nil, s.fail()
		}
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
		}
	}
	return s.b[start:s.i], nil
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.fail()
	}
	s.i += len(lit)
	return nil
}

// null consumes a null and reports true, or consumes nothing.
func (s *scanner) null() bool {
	if s.peek() == 'n' && s.literal("null") == nil {
		return true
	}
	return false
}

// skip consumes one value of any kind, checking its syntax.
func (s *scanner) skip() error {
	switch c := s.peek(); {
	case c == '{':
		return s.object(func([]byte) error { return s.skip() })
	case c == '[':
		return s.array(func(int) error { return s.skip() })
	case c == '"':
		_, _, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		_, err := s.number()
		return err
	}
	return s.fail()
}

// object consumes an object, calling member for each key (escapes left
// in) with the scanner at the member's value, which member must consume.
func (s *scanner) object(member func(key []byte) error) error {
	if s.peek() != '{' || s.depth >= maxDepth {
		return s.fail()
	}
	s.i++
	s.depth++
	defer func() { s.depth-- }()
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		key, _, err := s.str()
		if err != nil {
			return err
		}
		if s.peek() != ':' {
			return s.fail()
		}
		s.i++
		if err := member(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.fail()
		}
	}
}

// array consumes an array, calling elem for each element.
func (s *scanner) array(elem func(i int) error) error {
	if s.peek() != '[' || s.depth >= maxDepth {
		return s.fail()
	}
	s.i++
	s.depth++
	defer func() { s.depth-- }()
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for n := 0; ; n++ {
		if err := elem(n); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.fail()
		}
	}
}

// end checks that only whitespace follows the top-level value.
func (s *scanner) end() error {
	if s.peek() != 0 {
		return s.fail()
	}
	return nil
}
