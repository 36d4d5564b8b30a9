package resolute

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/money"
)

// Clarity extracts: a table of journal detail rows, one per line of a
// Resolute file, without the header and trailer records. ConvertClarity
// turns one into the canonical Resolute record stream — header from the
// first row, trailer computed from the rows — so the same validation and
// mapping apply to both sources.

// Clarity column fields, in the order of a Resolute detail record after
// the batch fields.
var clarityFields = [...]string{"batch_id", "batch_kind", "line_id", "posting_date", "service_area", "cost_center",
	"gl_account", "fin_class", "payor", "tx_type", "debit", "credit", "tx_count", "description"}

const (
	cBatchID = iota
	cBatchKind
	cLineID
	cPostingDate
	cServiceArea
	cCostCenter
	cGLAccount
	cFinClass
	cPayor
	cTxType
	cDebit
	cCredit
	cTxCount
	cDescription
	clarityCols
)

// ClarityColumns names a site's extract columns; an empty name means the
// field's own name (batch_id, batch_kind, ...). Names match case-insensitively.
type ClarityColumns struct {
	BatchID     string `yaml:"batch_id"`
	BatchKind   string `yaml:"batch_kind"`
	LineID      string `yaml:"line_id"`
	PostingDate string `yaml:"posting_date"`
	ServiceArea string `yaml:"service_area"`
	CostCenter  string `yaml:"cost_center"`
	GLAccount   string `yaml:"gl_account"`
	FinClass    string `yaml:"fin_class"`
	Payor       string `yaml:"payor"`
	TxType      string `yaml:"tx_type"`
	Debit       string `yaml:"debit"`
	Credit      string `yaml:"credit"`
	TxCount     string `yaml:"tx_count"`
	Description string `yaml:"description"`
}

// Clarity is how a site's Clarity extract looks (flows.yaml, clarity: of
// the flow).
type Clarity struct {
	Columns ClarityColumns `yaml:"columns"`
	// Comma separates CSV fields: one byte, "," when empty.
	Comma string `yaml:"comma"`
	// DateLayout is posting_date's Go layout in the extract, "2006-01-02"
	// when empty (Parquet DATE columns are read as such).
	DateLayout string `yaml:"date_layout"`
}

// Names returns the column name of every field, defaults applied, in the
// order batch_id, batch_kind, line_id, posting_date, service_area,
// cost_center, gl_account, fin_class, payor, tx_type, debit, credit,
// tx_count, description.
func (c Clarity) Names() []string {
	k := c.Columns
	names := []string{k.BatchID, k.BatchKind, k.LineID, k.PostingDate, k.ServiceArea, k.CostCenter, k.GLAccount,
		k.FinClass, k.Payor, k.TxType, k.Debit, k.Credit, k.TxCount, k.Description}
	for i, n := range names {
		if strings.TrimSpace(n) == "" {
			names[i] = clarityFields[i]
		}
	}
	return names
}

// ClarityRows is an extract read one row at a time.
type ClarityRows interface {
	// Columns returns the column names, in the order of Next's values.
	Columns() []string
	// Next returns the next row's values and where it is (its CSV line or
	// Parquet row, 1-based), io.EOF after the last. The slice is reused.
	// A *RowError is a bad row: it is reported and the read goes on.
	Next() (values []string, at int, err error)
	// Unit names a position: "line" (CSV) or "row" (Parquet).
	Unit() string
}

// RowError is a row that cannot be read (a CSV syntax error).
type RowError struct {
	At  int
	Err error
}

func (e *RowError) Error() string { return fmt.Sprintf("%d: %v", e.At, e.Err) }
func (e *RowError) Unwrap() error { return e.Err }

// csvRows reads a CSV extract with a header row.
type csvRows struct {
	r    *csv.Reader
	cols []string
}

// ReadClarityCSV reads a CSV extract (header row first) from r.
func ReadClarityCSV(r io.Reader, c Clarity) (ClarityRows, error) {
	cr := csv.NewReader(bufio.NewReaderSize(r, 256<<10))
	if c.Comma != "" {
		if len(c.Comma) != 1 {
			return nil, fmt.Errorf("resolute: clarity comma %q must be one byte", c.Comma)
		}
		cr.Comma = rune(c.Comma[0])
	}
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("line 1: empty file: no header row")
	}
	if err != nil {
		return nil, fmt.Errorf("header row: %w", err)
	}
	cols := append([]string(nil), header...)
	if len(cols) > 0 {
		cols[0] = strings.TrimPrefix(cols[0], "\ufeff")
	}
	return &csvRows{r: cr, cols: cols}, nil
}

func (c *csvRows) Columns() []string { return c.cols }
func (c *csvRows) Unit() string      { return "line" }

func (c *csvRows) Next() ([]string, int, error) {
	rec, err := c.r.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, pe.StartLine, &RowError{At: pe.StartLine, Err: pe.Err}
		}
		return nil, 0, err
	}
	line, _ := c.r.FieldPos(0)
	return rec, line, nil
}

// Conversion is what ConvertClarity did: the rows it wrote, what it found,
// and where each record of the Resolute stream came from.
type Conversion struct {
	Unit     string // "line" (CSV) or "row" (Parquet)
	Rows     int64  // detail records written
	Findings []Finding
	// Fatal is set when the extract could not be read as a table at all
	// (missing columns, not CSV or Parquet): nothing was written.
	Fatal   bool
	breaks  []lineBreak
	trailer int // the trailer's line in the Resolute stream
	first   int // where the first row is (the header's position)
}

type lineBreak struct{ line, delta int }

// OK reports whether the conversion found nothing wrong.
func (c *Conversion) OK() bool { return len(c.Findings) == 0 }

// Locate rewrites findings about the Resolute stream to name the extract's
// CSV line or Parquet row: the header is the first row, the trailer and
// whole-batch findings are line 0 (the batch). Findings must not be
// located twice.
func (c *Conversion) Locate(fs []Finding) {
	for i := range fs {
		f := &fs[i]
		if f.Unit != "" {
			continue
		}
		f.Line = c.locate(f.Line)
		if f.Last > 0 {
			f.Last = c.locate(f.Last)
		}
		f.Unit = c.Unit
	}
}

// locate is the extract's line (or row) of line n of the converted stream.
func (c *Conversion) locate(n int) int {
	switch {
	case n <= 0 || n >= c.trailer:
		return 0
	case n == 1:
		return c.first
	}
	if k := sort.Search(len(c.breaks), func(j int) bool { return c.breaks[j].line > n }) - 1; k >= 0 {
		n += c.breaks[k].delta
	}
	return n
}

// ConvertClarity writes the extract's rows to w as a Resolute file in
// layout lay: an H record from the first row (batch id, kind, its posting
// date as both creation and posting date), a D record per row, and a T
// record with the count and totals computed from the rows (an extract
// carries no control records). It reads the rows once, in bounded memory.
// A row it cannot write is a finding located in the extract, and is left
// out (the batch is rejected); values it passes through are checked by
// Layout.Read like any Resolute file.
func ConvertClarity(w io.Writer, rows ClarityRows, c Clarity, lay Layout) (*Conversion, error) {
	conv := &Conversion{Unit: rows.Unit()}
	if lay.Delimiter == "" {
		lay.Delimiter = DefaultLayout().Delimiter
	}
	if len(lay.Delimiter) != 1 {
		return nil, fmt.Errorf("resolute: delimiter %q must be one byte", lay.Delimiter)
	}
	if lay.DateLayout == "" {
		lay.DateLayout = DefaultLayout().DateLayout
	}
	inLayout := c.DateLayout
	if inLayout == "" {
		inLayout = "2006-01-02"
	}
	maxFindings := lay.MaxFindings
	if maxFindings <= 0 {
		maxFindings = 1000
	}
	find := func(at int, field, msg string) {
		if len(conv.Findings) < maxFindings {
			conv.Findings = append(conv.Findings, Finding{Line: at, Field: field, Msg: msg, Unit: conv.Unit})
		}
	}
	// Column positions.
	names := c.Names()
	var idx [clarityCols]int
	for i, n := range names {
		idx[i] = -1
		for j, col := range rows.Columns() {
			if strings.EqualFold(strings.TrimSpace(col), strings.TrimSpace(n)) {
				idx[i] = j
				break
			}
		}
		if idx[i] < 0 {
			find(1, clarityFields[i], fmt.Sprintf("column %q is missing (columns: %s)", n, truncateString(strings.Join(rows.Columns(), ","))))
		}
	}
	if len(conv.Findings) > 0 {
		if conv.Unit == "row" {
			for i := range conv.Findings {
				conv.Findings[i].Line = 0 // a Parquet schema has no row
			}
		}
		conv.Fatal = true
		return conv, nil
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	sep := lay.Delimiter[0]
	var batchID, kind string
	var debit, credit money.Sum
	line := 1 // the H record
	var vals [clarityCols]string
	var lastIn, lastOut string
	var buf []byte
	for {
		rec, at, err := rows.Next()
		if err == io.EOF {
			break
		}
		var re *RowError
		if errors.As(err, &re) {
			find(re.At, "", re.Err.Error())
			continue
		}
		if err != nil {
			return conv, err
		}
		ok := true
		for i, j := range idx {
			if j >= len(rec) {
				find(at, "", fmt.Sprintf("row has %d columns, the header %d", len(rec), len(rows.Columns())))
				ok = false
				break
			}
			v := strings.TrimSpace(rec[j])
			if i == cDescription {
				v = strings.Map(func(r rune) rune {
					if r == rune(sep) || r == '\n' || r == '\r' {
						return ' '
					}
					return r
				}, v)
			} else if strings.IndexByte(v, sep) >= 0 || strings.ContainsAny(v, "\r\n") {
				find(at, clarityFields[i], fmt.Sprintf("%q holds the delimiter or a line break", truncateString(v)))
				ok = false
			}
			vals[i] = v
		}
		if !ok {
			continue
		}
		// Dates in the extract's layout become the Resolute layout's.
		if d := vals[cPostingDate]; d != lastIn || lastIn == "" {
			t, err := time.Parse(inLayout, d)
			if err != nil && inLayout != "2006-01-02" {
				t, err = time.Parse("2006-01-02", d)
			}
			if err != nil {
				find(at, "posting_date", fmt.Sprintf("%q is not a date (%s)", truncateString(d), inLayout))
				continue
			}
			lastIn, lastOut = d, t.Format(lay.DateLayout)
		}
		vals[cPostingDate] = lastOut
		if conv.Rows == 0 {
			batchID, kind = vals[cBatchID], vals[cBatchKind]
			conv.first = at
			buf = append(buf[:0], 'H', sep)
			buf = append(buf, batchID...)
			buf = append(append(buf, sep), vals[cPostingDate]...)
			buf = append(append(buf, sep), kind...)
			buf = append(append(buf, sep), vals[cPostingDate]...)
			buf = append(buf, '\n')
			bw.Write(buf)
		} else {
			if vals[cBatchID] != batchID {
				find(at, "batch_id", fmt.Sprintf("%q differs from the extract's batch %q (first row): one extract is one batch", truncateString(vals[cBatchID]), truncateString(batchID)))
				continue
			}
			if vals[cBatchKind] != kind {
				find(at, "batch_kind", fmt.Sprintf("%q differs from the extract's %q (first row)", truncateString(vals[cBatchKind]), truncateString(kind)))
				continue
			}
		}
		if a, err := money.Parse(vals[cDebit]); err == nil && vals[cDebit] != "" {
			debit.Add(a)
		}
		if a, err := money.Parse(vals[cCredit]); err == nil && vals[cCredit] != "" {
			credit.Add(a)
		}
		line++
		conv.Rows++
		if delta := at - line; len(conv.breaks) == 0 || conv.breaks[len(conv.breaks)-1].delta != delta {
			conv.breaks = append(conv.breaks, lineBreak{line: line, delta: delta})
		}
		buf = append(buf[:0], 'D')
		for _, v := range vals[cLineID:] {
			buf = append(append(buf, sep), v...)
		}
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return conv, err
		}
	}
	if conv.Rows == 0 && len(conv.Findings) == 0 {
		find(0, "", "the extract has no rows")
	}
	if debit.Overflow || credit.Overflow {
		find(0, "", "batch total overflows")
	}
	conv.trailer = line + 1
	fmt.Fprintf(bw, "T%c%d%c%s%c%s\n", sep, conv.Rows, sep, debit.Total, sep, credit.Total)
	return conv, bw.Flush()
}

// WriteClarityCSV writes a Resolute file (layout lay) as a Clarity CSV
// extract with the site's column names: the synthetic extracts of
// epicsim and the tests.
func WriteClarityCSV(w io.Writer, r io.Reader, c Clarity, lay Layout) error {
	cw := csv.NewWriter(w)
	if c.Comma != "" {
		cw.Comma = rune(c.Comma[0])
	}
	if err := cw.Write(c.Names()); err != nil {
		return err
	}
	// The header record first: every row carries its batch id and kind.
	br := bufio.NewReader(r)
	first, err := br.ReadString('\n')
	if err != nil && err != io.EOF {
		return err
	}
	delim := cmp(lay.Delimiter, "|")
	h := strings.Split(strings.TrimRight(first, "\r\n"), delim)
	if len(h) != 5 || h[0] != "H" {
		return fmt.Errorf("%w: line 1 is not a header record", ErrRejected)
	}
	hdr := Header{BatchID: h[1], Kind: h[3]}
	rec := make([]string, clarityCols)
	rep, err := lay.Read(io.MultiReader(strings.NewReader(first), br), func(l *Line) error {
		rec[cBatchID], rec[cBatchKind], rec[cLineID] = hdr.BatchID, hdr.Kind, string(l.LineID)
		rec[cPostingDate] = l.PostingDate.Format(cmp(c.DateLayout, "2006-01-02"))
		rec[cServiceArea], rec[cCostCenter], rec[cGLAccount] = string(l.ServiceArea), string(l.CostCenter), string(l.GLAccount)
		rec[cFinClass], rec[cPayor], rec[cTxType] = string(l.FinClass), string(l.Payor), string(l.TxType)
		rec[cDebit], rec[cCredit] = "", ""
		if l.Debit != 0 {
			rec[cDebit] = l.Debit.String()
		}
		if l.Credit != 0 {
			rec[cCredit] = l.Credit.String()
		}
		rec[cTxCount], rec[cDescription] = fmt.Sprint(l.TxCount), string(l.Description)
		return cw.Write(rec)
	})
	if err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("%w: %s", ErrRejected, rep.Findings[0])
	}
	cw.Flush()
	return cw.Error()
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
