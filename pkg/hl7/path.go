package hl7

import (
	"fmt"
	"strconv"
)

// Path addresses a value: Segment(SegRep)-Field(Rep)-Component-Subcomponent.
// SegRep and Rep are 0-based; Field, Component and Subcomponent 1-based,
// with 0 meaning "the whole field" or "the whole component".
type Path struct {
	Segment      string
	SegRep       int
	Field        int
	Rep          int
	Component    int
	Subcomponent int
}

func (p Path) String() string {
	s := p.Segment
	if p.SegRep > 0 {
		s += "(" + strconv.Itoa(p.SegRep) + ")"
	}
	if p.Field == 0 {
		return s
	}
	s += "-" + strconv.Itoa(p.Field)
	if p.Rep > 0 {
		s += "(" + strconv.Itoa(p.Rep) + ")"
	}
	if p.Component > 0 {
		s += "-" + strconv.Itoa(p.Component)
		if p.Subcomponent > 0 {
			s += "-" + strconv.Itoa(p.Subcomponent)
		}
	}
	return s
}

// ParsePath parses "PID-5-1", "PID-3(1)-4-2", "OBX(2)-5" or "MSH-9"; "."
// is accepted in place of "-".
func ParsePath(s string) (Path, error) {
	var p Path
	bad := func(why string) (Path, error) { return Path{}, fmt.Errorf("hl7: path %q: %s", s, why) }
	if len(s) < 3 {
		return bad("too short")
	}
	p.Segment = s[:3]
	if !isSegName([]byte(p.Segment)) {
		return bad("segment name must be 3 upper-case letters or digits")
	}
	i := 3
	num := func() (int, bool) {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i || j-i > 6 {
			return 0, false
		}
		n, _ := strconv.Atoi(s[i:j])
		i = j
		return n, true
	}
	rep := func() (int, bool) {
		if i >= len(s) || s[i] != '(' {
			return 0, true
		}
		i++
		n, ok := num()
		if !ok || i >= len(s) || s[i] != ')' {
			return 0, false
		}
		i++
		return n, true
	}
	var ok bool
	if p.SegRep, ok = rep(); !ok {
		return bad("bad segment repetition")
	}
	parts := []*int{&p.Field, &p.Component, &p.Subcomponent}
	for k, dst := range parts {
		if i == len(s) {
			break
		}
		if s[i] != '-' && s[i] != '.' {
			return bad(fmt.Sprintf("unexpected %q", s[i]))
		}
		i++
		n, ok := num()
		if !ok || n == 0 {
			return bad("numbers are 1-based")
		}
		*dst = n
		if k == 0 {
			if p.Rep, ok = rep(); !ok {
				return bad("bad field repetition")
			}
		}
	}
	if i != len(s) {
		return bad("trailing characters")
	}
	return p, nil
}

// MustPath is ParsePath for constant paths; it panics on error.
func MustPath(s string) Path {
	p, err := ParsePath(s)
	if err != nil {
		panic(err)
	}
	return p
}

// Raw returns the bytes at p, escapes not decoded, and whether the segment
// and field exist. It does not allocate.
func (m *Message) Raw(p Path) ([]byte, bool) {
	i := m.find(p.Segment, p.SegRep)
	if i < 0 {
		return nil, false
	}
	if p.Field == 0 {
		return m.Segment(i), true
	}
	f := m.field(i, p.Field)
	if f == nil {
		return nil, false
	}
	if m.isMSH2(i, p.Field) || p.Segment == "MSH" && p.Field == 1 {
		return f, true // the delimiters themselves are not split
	}
	d := m.delims
	v := nth(f, d.Repetition, p.Rep)
	if p.Component > 0 {
		v = nth(v, d.Component, p.Component-1)
		if p.Subcomponent > 0 {
			v = nth(v, d.Subcomponent, p.Subcomponent-1)
		}
	}
	return v, v != nil
}

// Value returns the text at p: escapes resolved, converted from the
// message's charset to UTF-8; "" when absent. As with HAPI's Terser, a path
// without a component reads component 1, and without a subcomponent reads
// subcomponent 1 (PID-5 is the family name); Raw returns whole fields.
func (m *Message) Value(p Path) string {
	if p.Field > 0 && !(p.Segment == "MSH" && p.Field <= 2) {
		p.Component = max(p.Component, 1)
		p.Subcomponent = max(p.Subcomponent, 1)
	}
	b, ok := m.Raw(p)
	if !ok || len(b) == 0 {
		return ""
	}
	i := m.find(p.Segment, p.SegRep)
	if p.Field == 1 && p.Segment == "MSH" || m.isMSH2(i, p.Field) {
		return string(b)
	}
	return string(m.decode(nil, b))
}

// Get is Value for a path string; an invalid path yields "".
func (m *Message) Get(path string) string {
	p, err := ParsePath(path)
	if err != nil {
		return ""
	}
	return m.Value(p)
}

// Repetitions returns how many repetitions field p.Field of the addressed
// segment has.
func (m *Message) Repetitions(p Path) int {
	i := m.find(p.Segment, p.SegRep)
	if i < 0 || p.Field == 0 {
		return 0
	}
	f := m.field(i, p.Field)
	if m.isMSH2(i, p.Field) {
		return count(f, 0)
	}
	return count(f, m.delims.Repetition)
}
