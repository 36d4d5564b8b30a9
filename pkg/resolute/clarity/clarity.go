// Package clarity reads Clarity extracts of Resolute journal detail — CSV
// with a header row or Parquet — and converts them into the canonical
// Resolute record stream (resolute.ConvertClarity). It is apart from
// package resolute so that only the programs that read Parquet depend on
// the Parquet library.
package clarity

import (
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/sinewhq/sinew/pkg/resolute"
)

// Convert reads the extract in src (format resolute.FormatClarityCSV or
// FormatClarityParquet) and writes it to dst as a Resolute file in layout
// lay. An extract that is not a table of the configured columns gives a
// Conversion with Fatal set and its findings; an I/O error is returned.
func Convert(dst io.Writer, src *os.File, format string, c resolute.Clarity, lay resolute.Layout) (*resolute.Conversion, error) {
	var rows resolute.ClarityRows
	var err error
	unit := "line"
	switch format {
	case resolute.FormatClarityCSV:
		rows, err = resolute.ReadClarityCSV(src, c)
	case resolute.FormatClarityParquet:
		unit = "row"
		var info os.FileInfo
		if info, err = src.Stat(); err == nil {
			rows, err = ReadParquet(src, info.Size())
		}
	default:
		err = fmt.Errorf("unknown format %q", format)
	}
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, err
		}
		// Not readable as the format at all: the batch is rejected.
		return &resolute.Conversion{Unit: unit, Fatal: true,
			Findings: []resolute.Finding{{Line: 0, Unit: unit, Msg: "not a " + format + " extract: " + err.Error()}}}, nil
	}
	return resolute.ConvertClarity(dst, rows, c, lay)
}

// parquetRows reads a flat Parquet table row by row.
type parquetRows struct {
	r    parquet.Rows
	cols []string
	conv []func(parquet.Value) string
	buf  []parquet.Row
	n, i int
	row  int
	vals []string
}

// ReadParquet reads a Parquet extract: a flat schema whose leaf columns are
// the extract's columns. Values are read as text: DATE and TIMESTAMP as
// 2006-01-02, DECIMAL exactly, numbers in their shortest form.
func ReadParquet(r io.ReaderAt, size int64) (resolute.ClarityRows, error) {
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return nil, err
	}
	p := &parquetRows{r: parquet.MultiRowGroup(f.RowGroups()...).Rows(), buf: make([]parquet.Row, 256)}
	for _, path := range f.Schema().Columns() {
		leaf, _ := f.Schema().Lookup(path...)
		p.cols = append(p.cols, path[len(path)-1])
		p.conv = append(p.conv, valueText(leaf.Node))
	}
	p.vals = make([]string, len(p.cols))
	return p, nil
}

func (p *parquetRows) Columns() []string { return p.cols }
func (p *parquetRows) Unit() string      { return "row" }

func (p *parquetRows) Next() ([]string, int, error) {
	if p.i >= p.n {
		n, err := p.r.ReadRows(p.buf)
		if n == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				return nil, 0, io.EOF
			}
			return nil, 0, err
		}
		p.n, p.i = n, 0
	}
	row := p.buf[p.i]
	p.i++
	p.row++
	for k := range p.vals {
		p.vals[k] = ""
	}
	for _, v := range row {
		if c := v.Column(); c >= 0 && c < len(p.vals) && !v.IsNull() {
			p.vals[c] = p.conv[c](v)
		}
	}
	return p.vals, p.row, nil
}

// valueText returns how a column's values read as text.
func valueText(n parquet.Node) func(parquet.Value) string {
	lt := n.Type().LogicalType()
	if lt != nil {
		switch t := lt.Value.(type) {
		case *format.DateType:
			return func(v parquet.Value) string {
				return time.Unix(int64(v.Int32())*86400, 0).UTC().Format("2006-01-02")
			}
		case *format.TimestampType:
			mult := int64(time.Millisecond)
			switch t.Unit.Value.(type) {
			case *format.MicroSeconds:
				mult = int64(time.Microsecond)
			case *format.NanoSeconds:
				mult = 1
			}
			return func(v parquet.Value) string {
				return time.Unix(0, v.Int64()*mult).UTC().Format("2006-01-02")
			}
		case *format.DecimalType:
			scale := int(t.Scale)
			return func(v parquet.Value) string {
				var u *big.Int
				switch v.Kind() {
				case parquet.Int32:
					u = big.NewInt(int64(v.Int32()))
				case parquet.Int64:
					u = big.NewInt(v.Int64())
				default:
					b := v.ByteArray()
					u = new(big.Int).SetBytes(b)
					if len(b) > 0 && b[0]&0x80 != 0 { // two's complement
						u.Sub(u, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
					}
				}
				return decimalText(u, scale)
			}
		}
	}
	return func(v parquet.Value) string {
		switch v.Kind() {
		case parquet.Boolean:
			return strconv.FormatBool(v.Boolean())
		case parquet.Int32:
			return strconv.FormatInt(int64(v.Int32()), 10)
		case parquet.Int64:
			return strconv.FormatInt(v.Int64(), 10)
		case parquet.Float:
			return strconv.FormatFloat(float64(v.Float()), 'f', -1, 32)
		case parquet.Double:
			return strconv.FormatFloat(v.Double(), 'f', -1, 64)
		case parquet.Int96:
			return v.String()
		}
		return string(v.ByteArray())
	}
}

func decimalText(u *big.Int, scale int) string {
	s := u.String()
	if scale <= 0 {
		return s
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for len(s) <= scale {
		s = "0" + s
	}
	s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	if neg {
		s = "-" + s
	}
	return s
}
