// Package supplierfile is the supplier reference file a site's Epic
// (Willow, Beaker) takes over SFTP instead of MFN over MLLP, and the
// result file Epic answers it with.
//
// A supplier file is lines of fields (LF or CRLF); the character after
// the leading H is the file's delimiter (like HL7's MSH), "|" in the
// examples:
//
//	H|SUPREF|1|<control id>|<created yyyymmddhhmmss>|<sender>|<facility>
//	S|<supplier number>|<name>|<A/I>
//	T|<site>|<procurement BU>|<address>|<city>|<postal code>|<country>   (the supplier's sites)
//	Z|<supplier count>|<line count, H and Z included>
//
// A value holding the delimiter, a backslash, CR or LF is escaped: \F,
// \E, \R, \N. Epic applies every supplier of a file or none: a bad
// file is refused whole, and the result names its line and field.
//
// The result file, put beside the supplier file under the same name
// with .ack for .txt, is one line in the same delimiter:
//
//	A|<control id>|<AA/AE/AR>|<line>|<field>|<text>
package supplierfile

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/mfn"
)

// Kind and Version are H-2 and H-3.
const (
	Kind    = "SUPREF"
	Version = "1"
)

// Header is a supplier file's H line.
type Header struct {
	ControlID string
	Created   time.Time
	Sender    string
	Facility  string
}

// File is a parsed supplier file.
type File struct {
	Header
	Delimiter byte
	Suppliers []mfn.Supplier
}

// Error is a refused file's place: line (from 1) and field (from 1, the
// record type being field 0), and why. Never a value.
type Error struct {
	Line, Field int
	Why         string
}

func (e *Error) Error() string {
	return fmt.Sprintf("supplierfile: line %d field %d: %s", e.Line, e.Field, e.Why)
}

// Name is the file name of control id ctrl's supplier file; ResultName
// the name of its result.
func Name(ctrl string) string       { return "SUP" + ctrl + ".txt" }
func ResultName(name string) string { return strings.TrimSuffix(name, ".txt") + ".ack" }

// Build encodes suppliers in a file with delimiter delim ('|' when 0).
func Build(h Header, delim byte, sups ...mfn.Supplier) ([]byte, error) {
	if delim == 0 {
		delim = '|'
	}
	if err := checkDelimiter(delim); err != nil {
		return nil, err
	}
	if h.ControlID == "" {
		return nil, errors.New("supplierfile: a file needs a control id")
	}
	var b strings.Builder
	lines := 0
	line := func(fields ...string) {
		for i, f := range fields {
			if i > 0 {
				b.WriteByte(delim)
			}
			if i == 0 {
				b.WriteString(f)
				continue
			}
			b.WriteString(escape(f, delim))
		}
		b.WriteByte('\n')
		lines++
	}
	line("H", Kind, Version, h.ControlID, h.Created.UTC().Format("20060102150405"), h.Sender, h.Facility)
	for i, s := range sups {
		if s.Number == "" || s.Name == "" {
			return nil, fmt.Errorf("supplierfile: supplier %d needs a number and a name", i+1)
		}
		status := "I"
		if s.Active {
			status = "A"
		}
		line("S", s.Number, s.Name, status)
		for _, st := range s.Sites {
			line("T", st.Site, st.ProcurementBU, st.Address, st.City, st.PostalCode, st.Country)
		}
	}
	line("Z", strconv.Itoa(len(sups)), strconv.Itoa(lines+1))
	return []byte(b.String()), nil
}

func checkDelimiter(d byte) error {
	if d <= ' ' || d >= 0x7f || d == '\\' || d >= '0' && d <= '9' || d >= 'A' && d <= 'Z' || d >= 'a' && d <= 'z' {
		return fmt.Errorf("supplierfile: delimiter %q must be one punctuation character other than a backslash", d)
	}
	return nil
}

func escape(s string, delim byte) string {
	if !strings.ContainsAny(s, string([]byte{delim, '\\', '\r', '\n'})) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case delim:
			b.WriteString(`\F`)
		case '\\':
			b.WriteString(`\E`)
		case '\r':
			b.WriteString(`\R`)
		case '\n':
			b.WriteString(`\N`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func unescape(s string, delim byte) (string, bool) {
	if !strings.Contains(s, `\`) {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", false
		}
		i++
		switch s[i] {
		case 'F':
			b.WriteByte(delim)
		case 'E':
			b.WriteByte('\\')
		case 'R':
			b.WriteByte('\r')
		case 'N':
			b.WriteByte('\n')
		default:
			return "", false
		}
	}
	return b.String(), true
}

// split reads one line's fields, unescaped.
func split(line string, delim byte, n int) ([]string, *Error) {
	raw := strings.Split(line, string(delim))
	if len(raw) != n {
		return nil, &Error{Field: min(len(raw), n), Why: fmt.Sprintf("%s record has %d fields, want %d", raw[0], len(raw)-1, n-1)}
	}
	for i, r := range raw {
		v, ok := unescape(r, delim)
		if !ok {
			return nil, &Error{Field: i, Why: "bad escape (\\F, \\E, \\R or \\N)"}
		}
		raw[i] = v
	}
	return raw, nil
}

// Parse reads a supplier file; an error is an *Error naming the line and field.
func Parse(data []byte) (*File, error) {
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	if !strings.HasSuffix(text, "\n") {
		return nil, &Error{Line: strings.Count(text, "\n") + 1, Why: "the file does not end with a line end (cut short?)"}
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines[0]) < 2 || lines[0][0] != 'H' {
		return nil, &Error{Line: 1, Why: "the file does not start with an H record"}
	}
	f := &File{Delimiter: lines[0][1]}
	if err := checkDelimiter(f.Delimiter); err != nil {
		return nil, &Error{Line: 1, Field: 1, Why: "the character after H is not a usable delimiter"}
	}
	h, e := split(lines[0], f.Delimiter, 7)
	if e != nil {
		e.Line = 1
		return nil, e
	}
	if h[1] != Kind || h[2] != Version {
		return nil, &Error{Line: 1, Field: 1, Why: "not a " + Kind + " version " + Version + " file"}
	}
	if h[3] == "" {
		return nil, &Error{Line: 1, Field: 3, Why: "control id required"}
	}
	created, err := time.Parse("20060102150405", h[4])
	if err != nil {
		return nil, &Error{Line: 1, Field: 4, Why: "created is not yyyymmddhhmmss"}
	}
	f.Header = Header{ControlID: h[3], Created: created, Sender: h[5], Facility: h[6]}
	trailer := false
	for i := 1; i < len(lines); i++ {
		n := i + 1
		l := lines[i]
		if trailer {
			return nil, &Error{Line: n, Why: "a record after the Z trailer"}
		}
		typ, _, _ := strings.Cut(l, string(f.Delimiter))
		switch typ {
		case "S":
			v, e := split(l, f.Delimiter, 4)
			if e != nil {
				e.Line = n
				return nil, e
			}
			if v[1] == "" {
				return nil, &Error{Line: n, Field: 1, Why: "supplier number required"}
			}
			if v[2] == "" {
				return nil, &Error{Line: n, Field: 2, Why: "supplier name required"}
			}
			if v[3] != "A" && v[3] != "I" {
				return nil, &Error{Line: n, Field: 3, Why: "status must be A or I"}
			}
			f.Suppliers = append(f.Suppliers, mfn.Supplier{Number: v[1], Name: v[2], Active: v[3] == "A"})
		case "T":
			if len(f.Suppliers) == 0 {
				return nil, &Error{Line: n, Why: "a T site record before any S supplier record"}
			}
			v, e := split(l, f.Delimiter, 7)
			if e != nil {
				e.Line = n
				return nil, e
			}
			if v[1] == "" {
				return nil, &Error{Line: n, Field: 1, Why: "site code required"}
			}
			s := &f.Suppliers[len(f.Suppliers)-1]
			s.Sites = append(s.Sites, mfn.SupplierSite{Site: v[1], ProcurementBU: v[2], Address: v[3], City: v[4], PostalCode: v[5], Country: v[6]})
		case "Z":
			v, e := split(l, f.Delimiter, 3)
			if e != nil {
				e.Line = n
				return nil, e
			}
			if c, err := strconv.Atoi(v[1]); err != nil || c != len(f.Suppliers) {
				return nil, &Error{Line: n, Field: 1, Why: fmt.Sprintf("supplier count differs from the %d S records", len(f.Suppliers))}
			}
			if c, err := strconv.Atoi(v[2]); err != nil || c != len(lines) {
				return nil, &Error{Line: n, Field: 2, Why: fmt.Sprintf("line count differs from the file's %d lines", len(lines))}
			}
			trailer = true
		default:
			return nil, &Error{Line: n, Why: "record type is not S, T or Z"}
		}
	}
	if !trailer {
		return nil, &Error{Line: len(lines), Why: "no Z trailer (the file is cut short)"}
	}
	return f, nil
}

// Result codes, as HL7's MSA-1.
const (
	CodeAccepted = "AA"
	CodeError    = "AE" // Epic could not apply a good file now (sent again later)
	CodeRejected = "AR" // the file is refused
)

// Result is Epic's answer to one supplier file.
type Result struct {
	ControlID string
	Code      string
	// Line and Field place a refusal (0 when it is not the file's fault).
	Line, Field int
	Text        string
}

// BuildResult encodes r with delimiter delim ('|' when 0).
func BuildResult(r Result, delim byte) []byte {
	if delim == 0 {
		delim = '|'
	}
	d := string(delim)
	return []byte(strings.Join([]string{"A", escape(r.ControlID, delim), escape(r.Code, delim), strconv.Itoa(r.Line), strconv.Itoa(r.Field), escape(r.Text, delim)}, d) + "\n")
}

// ParseResult reads a result file.
func ParseResult(data []byte) (Result, error) {
	line := strings.TrimRight(string(data), "\r\n")
	if len(line) < 2 || line[0] != 'A' || checkDelimiter(line[1]) != nil {
		return Result{}, errors.New("supplierfile: result does not start with A and a delimiter")
	}
	v, e := split(line, line[1], 6)
	if e != nil {
		return Result{}, fmt.Errorf("supplierfile: result: %s", e.Why)
	}
	r := Result{ControlID: v[1], Code: v[2], Text: v[5]}
	var err1, err2 error
	r.Line, err1 = strconv.Atoi(v[3])
	r.Field, err2 = strconv.Atoi(v[4])
	if err1 != nil || err2 != nil {
		return Result{}, errors.New("supplierfile: result line and field must be numbers")
	}
	switch r.Code {
	case CodeAccepted, CodeError, CodeRejected:
	default:
		return Result{}, errors.New("supplierfile: result code is not AA, AE or AR")
	}
	return r, nil
}
