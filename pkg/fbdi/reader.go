package fbdi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxLineBytes bounds one line of a GlInterface.csv. A legitimate row is at
// most a few tens of kilobytes (149 fields of at most 240 characters); a
// longer line is reported, not buffered.
const MaxLineBytes = 1 << 20

// lineReader yields physical lines with bounded memory.
type lineReader struct {
	br   *bufio.Reader
	long []byte // assembles lines longer than br's buffer
	line int    // number of the line last returned
}

func newLineReader(r io.Reader) lineReader {
	return lineReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line without its LF or CRLF, valid until the next
// call. tooLong reports a line over MaxLineBytes, whose content is dropped.
// err is io.EOF after the last line, or the underlying reader's error.
func (lr *lineReader) next() (line []byte, tooLong bool, err error) {
	lr.long = lr.long[:0]
	for {
		frag, err := lr.br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			return nil, false, err
		}
		if err == io.EOF && len(frag) == 0 && len(lr.long) == 0 && !tooLong {
			return nil, false, io.EOF
		}
		if !tooLong && len(lr.long)+len(frag) > MaxLineBytes+2 { // +2: the CRLF
			tooLong = true
			lr.long = lr.long[:0]
		}
		if err == bufio.ErrBufferFull {
			if !tooLong {
				lr.long = append(lr.long, frag...)
			}
			continue
		}
		lr.line++
		if tooLong {
			return nil, true, nil
		}
		line = frag
		if len(lr.long) > 0 {
			lr.long = append(lr.long, frag...)
			line = lr.long
		}
		line = bytes.TrimSuffix(line, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) > MaxLineBytes {
			return nil, true, nil
		}
		return line, false, nil
	}
}

var (
	errUnterminated = fmt.Errorf("%w: no closing quote on the line", ErrQuote)
	errAfterQuote   = fmt.Errorf("%w: text after closing quote", ErrQuote)
)

// splitFields splits one line into fields the way SQL*Loader reads
// FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '"': a field whose first
// non-blank character is a quote runs to the matching quote ("" stands for
// one quote) and may be followed only by blanks before the comma; any other
// field runs to the next comma, blanks around it trimmed, quotes inside it
// taken literally. Fields alias line, or scratch for quoted ones; dst and
// scratch are reused.
func splitFields(dst [][]byte, scratch, line []byte) ([][]byte, []byte, error) {
	dst = dst[:0]
	// Unquoted text is never longer than the line, so sizing scratch once
	// keeps earlier fields valid while later ones are appended.
	if cap(scratch) < len(line) {
		scratch = make([]byte, 0, len(line))
	}
	scratch = scratch[:0]
	i := 0
	for {
		if i < len(line) && line[i] == ',' { // empty field: most of a GL_INTERFACE row
			dst = append(dst, line[i:i:i])
			i++
			continue
		}
		j := skipBlanks(line, i)
		if j < len(line) && line[j] == '"' {
			j++
			start := len(scratch)
			for {
				k := bytes.IndexByte(line[j:], '"')
				if k < 0 {
					return dst, scratch, errUnterminated
				}
				scratch = append(scratch, line[j:j+k]...)
				j += k + 1
				if j < len(line) && line[j] == '"' {
					scratch = append(scratch, '"')
					j++
					continue
				}
				break
			}
			dst = append(dst, scratch[start:len(scratch):len(scratch)])
			j = skipBlanks(line, j)
			if j == len(line) {
				return dst, scratch, nil
			}
			if line[j] != ',' {
				return dst, scratch, errAfterQuote
			}
			i = j + 1
			continue
		}
		// Most fields are short or empty: a plain loop beats IndexByte's call.
		k := i
		for k < len(line) && line[k] != ',' {
			k++
		}
		dst = append(dst, trimBlanks(line[i:k]))
		if k == len(line) {
			return dst, scratch, nil
		}
		i = k + 1
	}
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func skipBlanks(b []byte, i int) int {
	for i < len(b) && isBlank(b[i]) {
		i++
	}
	return i
}

func trimBlanks(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isBlank(b[i]) {
		i++
	}
	for j > i && isBlank(b[j-1]) {
		j--
	}
	return b[i:j:j]
}

// Reader reads the records of a GlInterface.csv with the splitting rules of
// the FBDI control file (see splitFields): one record per line, LF or CRLF
// line ends. It does not check the values; Check does.
type Reader struct {
	lr      lineReader
	fields  [][]byte
	scratch []byte
}

// NewReader returns a Reader reading from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{lr: newLineReader(r)}
}

// Read returns the fields of the next record. A line that cannot be split
// (bad quoting, longer than MaxLineBytes) gives a *LineError, after which
// Read goes on with the next line. At the end Read returns io.EOF.
func (r *Reader) Read() ([]string, error) {
	fields, err := r.ReadBytes()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = string(f)
	}
	return out, nil
}

// ReadBytes is Read without copies: the fields are valid only until the
// next call. Readers of large files use it to convert just the fields
// they need.
func (r *Reader) ReadBytes() ([][]byte, error) {
	line, tooLong, err := r.lr.next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("fbdi: reading line %d: %w", r.lr.line+1, err)
	}
	if tooLong {
		return nil, &LineError{Line: r.lr.line, Err: ErrLineTooLong}
	}
	r.fields, r.scratch, err = splitFields(r.fields, r.scratch, line)
	if err != nil {
		return nil, &LineError{Line: r.lr.line, Err: err}
	}
	return r.fields, nil
}

// Line returns the line number of the record last read.
func (r *Reader) Line() int { return r.lr.line }
