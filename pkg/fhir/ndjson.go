package fhir

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// NDJSONReader reads newline-delimited resources (bulk $export output)
// one line at a time, with no limit on a line's length. A line that is
// not a resource is an *Error with its line number; reading continues
// with the next line, so one bad line loses nothing else.
type NDJSONReader struct {
	r    *bufio.Reader
	line int
	opts ParseOptions
}

// NewNDJSONReader reads from r.
func NewNDJSONReader(r io.Reader, o ParseOptions) *NDJSONReader {
	return &NDJSONReader{r: bufio.NewReaderSize(r, 64<<10), opts: o}
}

// Line is the number of the line last read (1-based).
func (n *NDJSONReader) Line() int { return n.line }

// Next returns the next resource, its line's bytes (a fresh copy the
// Resource keeps), or io.EOF. Blank lines are skipped. A line's *Error
// (Line set) is returned with the raw line so the caller can keep it.
func (n *NDJSONReader) Next() (*Resource, []byte, error) {
	for {
		b, err := n.r.ReadBytes('\n')
		if len(b) == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return nil, nil, io.EOF
			}
			return nil, nil, err
		}
		n.line++
		b = bytes.TrimRight(b, "\r\n")
		if len(bytes.TrimSpace(b)) == 0 {
			if err != nil {
				return nil, nil, io.EOF
			}
			continue
		}
		r, perr := Parse(b, n.opts)
		if perr != nil {
			var fe *Error
			if errors.As(perr, &fe) {
				fe.Line = n.line
			}
			return nil, b, perr
		}
		return r, b, nil
	}
}

// IsNDJSON guesses whether b is NDJSON rather than one JSON document: a
// first line that is a complete JSON value followed by more content.
func IsNDJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return false
	}
	first := bytes.TrimSpace(b[:i])
	rest := bytes.TrimSpace(b[i:])
	return len(first) > 0 && len(rest) > 0 && json.Valid(first)
}
