package fbdi

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"unicode/utf8"
)

// Report is the outcome of Check.
type Report struct {
	Entry    string       // the zip entry checked; "" for a bare CSV
	Lines    int          // lines read
	Totals   Totals       // over the lines whose amounts and GROUP_ID could be read
	Findings []*LineError // by line; whole-file findings (Line 0) last
	Omitted  int          // findings beyond Options.MaxFindings, counted but not kept
}

// OK reports whether the file passed every check.
func (r *Report) OK() bool { return len(r.Findings) == 0 && r.Omitted == 0 }

// Err returns nil when the file passed, else an error that counts the
// findings and wraps the first one.
func (r *Report) Err() error {
	if r.OK() {
		return nil
	}
	return fmt.Errorf("fbdi: %d problem(s), first: %w", len(r.Findings)+r.Omitted, r.Findings[0])
}

// Check checks a GlInterface.csv, or a zip holding one, read from r of
// size bytes; a zip is told by its signature. In a zip the entry checked is
// the one named Options.Entry (default GlInterface.csv), else the zip's only
// .csv entry; a zip with neither gives an error wrapping ErrNoEntry.
//
// Line by line, Check verifies what Fusion's loader and Journal Import need:
//
//   - 149 fields, or 150 with END last; quoting the loader can split;
//     no control characters, valid UTF-8, values within column widths;
//   - STATUS NEW; LEDGER_ID (digits) or LEDGER_NAME; ACCOUNTING_DATE and
//     DATE_CREATED as valid YYYY/MM/DD dates; journal source, category and
//     currency; ACTUAL_FLAG A, B or E; at least one segment;
//   - exactly one of ENTERED_DR and ENTERED_CR, an exact amount with at
//     most two decimals (not zero unless Options.AllowZero); GROUP_ID empty
//     or a positive NUMBER(18);
//
// and, over the file, that debits equal credits per journal (REFERENCE4
// within a GROUP_ID), per GROUP_ID and per file, each in its currency.
//
// Problems with the content are findings in the Report, never errors; the
// error is for unreadable input (I/O, a broken zip) and ctx's end. Memory
// is bounded by the number of journals and Options.MaxFindings, not by the
// file size.
func Check(ctx context.Context, r io.ReaderAt, size int64, o Options) (*Report, error) {
	var sig [4]byte
	n, err := r.ReadAt(sig[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("fbdi: %w", err)
	}
	if n == 4 && (string(sig[:]) == "PK\x03\x04" || string(sig[:]) == "PK\x05\x06") {
		return checkZip(ctx, r, size, o)
	}
	return CheckCSV(ctx, io.NewSectionReader(r, 0, size), o)
}

// CheckCSV is Check for a bare GlInterface.csv read as a stream.
func CheckCSV(ctx context.Context, r io.Reader, o Options) (*Report, error) {
	c := newChecker(o)
	if err := c.run(ctx, r); err != nil {
		return nil, err
	}
	return c.finish(), nil
}

func checkZip(ctx context.Context, r io.ReaderAt, size int64, o Options) (*Report, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("fbdi: opening zip: %w", err)
	}
	f, err := findEntry(zr, o.Entry)
	if err != nil {
		return nil, err
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("fbdi: opening zip entry %q: %w", f.Name, err)
	}
	defer rc.Close()
	c := newChecker(o)
	if err := c.run(ctx, rc); err != nil {
		return nil, fmt.Errorf("fbdi: zip entry %q: %w", f.Name, err)
	}
	rep := c.finish()
	rep.Entry = f.Name
	return rep, nil
}

func findEntry(zr *zip.Reader, name string) (*zip.File, error) {
	if name == "" {
		name = DefaultEntry
	}
	var csv []*zip.File
	for _, f := range zr.File {
		if f.Name == name {
			return f, nil
		}
		if strings.EqualFold(path.Ext(f.Name), ".csv") {
			csv = append(csv, f)
		}
	}
	if len(csv) == 1 {
		return csv[0], nil
	}
	return nil, fmt.Errorf("fbdi: %w: no entry %q and %d other .csv entries", ErrNoEntry, name, len(csv))
}

type checker struct {
	o       Options
	max     int
	rep     Report
	t       tally
	fields  [][]byte
	scratch []byte
}

func newChecker(o Options) *checker {
	c := &checker{o: o, max: o.MaxFindings}
	if c.max == 0 {
		c.max = 1000
	}
	return c
}

// ctxEvery is how many lines pass between looks at the context.
const ctxEvery = 4096

func (c *checker) run(ctx context.Context, r io.Reader) error {
	lr := newLineReader(r)
	for {
		if lr.line%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("fbdi: check stopped at line %d: %w", lr.line, err)
			}
		}
		line, tooLong, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("fbdi: reading line %d: %w", lr.line+1, err)
		}
		c.rep.Lines = lr.line
		if tooLong {
			c.find(lr.line, "", fmt.Errorf("%w: over %d bytes", ErrLineTooLong, MaxLineBytes))
			continue
		}
		c.record(lr.line, line)
	}
	if c.rep.Lines == 0 {
		c.find(0, "", fmt.Errorf("%w: no lines", ErrRequired))
	}
	return nil
}

func (c *checker) finish() *Report {
	for _, f := range c.t.unbalanced() {
		c.find(f.Line, f.Column, f.Err)
	}
	slices.SortStableFunc(c.rep.Findings, compareFindings)
	c.rep.Totals = c.t.totals()
	return &c.rep
}

func (c *checker) find(line int, col string, err error) {
	if c.max >= 0 && len(c.rep.Findings) >= c.max {
		c.rep.Omitted++
		return
	}
	c.rep.Findings = append(c.rep.Findings, &LineError{Line: line, Column: col, Err: err})
}

func (c *checker) findCol(line, col int, err error) { c.find(line, columns[col], err) }

// record checks one line.
func (c *checker) record(n int, line []byte) {
	if len(line) == 0 {
		c.find(n, "", fmt.Errorf("%w: empty line", ErrFieldCount))
		return
	}
	var err error
	c.fields, c.scratch, err = splitFields(c.fields, c.scratch, line)
	if err != nil {
		c.find(n, "", err)
		return
	}
	f := c.fields
	switch {
	case len(f) == NumColumns+1 && string(f[NumColumns]) == EndMarker:
		f = f[:NumColumns]
	case len(f) == NumColumns+1:
		c.find(n, "", fmt.Errorf("%w: 150 fields but the last is not %s", ErrFieldCount, EndMarker))
		return
	case len(f) != NumColumns:
		c.find(n, "", fmt.Errorf("%w: %d fields, want %d (or %d ending %s)",
			ErrFieldCount, len(f), NumColumns, NumColumns+1, EndMarker))
		return
	}

	// Characters are checked on the whole line first (quoted values hold a
	// subset of its bytes) and field by field only when something is off.
	if classes(line)&(clControl|clNonASCII) != 0 {
		for i, v := range f {
			c.text(n, i, v)
		}
	} else {
		for i, v := range f {
			if m := maxLen[i]; m > 0 && len(v) > m { // ASCII: bytes are characters
				c.findCol(n, i, fmt.Errorf("%w: %d characters, at most %d", ErrTooLong, len(v), m))
			}
		}
	}
	if string(f[colStatus]) != "NEW" {
		c.findCol(n, colStatus, fmt.Errorf("%w: %s, want NEW", ErrValue, quote(f[colStatus])))
	}
	switch id := f[colLedgerID]; {
	case len(id) == 0 && len(f[colLedgerName]) == 0:
		c.findCol(n, colLedgerID, fmt.Errorf("%w: LEDGER_ID or LEDGER_NAME", ErrRequired))
	case len(id) > 0 && !isID(id):
		c.findCol(n, colLedgerID, fmt.Errorf("%w: %s, want 1 to 18 digits", ErrValue, quote(id)))
	}
	c.date(n, colAccountingDate, f, true)
	c.date(n, colDateCreated, f, true)
	c.date(n, colConvDate, f, false)
	for _, col := range [...]int{colSource, colCategory, colCurrency} {
		if len(f[col]) == 0 {
			c.findCol(n, col, ErrRequired)
		}
	}
	switch flag := string(f[colActualFlag]); flag {
	case "A", "B", "E":
	case "":
		c.findCol(n, colActualFlag, ErrRequired)
	default:
		c.findCol(n, colActualFlag, fmt.Errorf("%w: %s, want A, B or E", ErrValue, quote(f[colActualFlag])))
	}
	if !slices.ContainsFunc(f[colSegment1:colSegment1+MaxSegments], func(s []byte) bool { return len(s) > 0 }) {
		c.findCol(n, colSegment1, fmt.Errorf("%w: no segment value", ErrRequired))
	}

	dr, drOK := c.amount(n, colEnteredDR, f)
	cr, crOK := c.amount(n, colEnteredCR, f)
	c.amount(n, colAccountedDR, f)
	c.amount(n, colAccountedCR, f)
	hasDR, hasCR := len(f[colEnteredDR]) > 0, len(f[colEnteredCR]) > 0
	switch {
	case hasDR && hasCR:
		c.findCol(n, colEnteredCR, ErrBothSides)
	case !hasDR && !hasCR:
		c.findCol(n, colEnteredDR, ErrNoSide)
	case !c.o.AllowZero && hasDR && drOK && dr == 0:
		c.findCol(n, colEnteredDR, ErrZeroAmount)
	case !c.o.AllowZero && hasCR && crOK && cr == 0:
		c.findCol(n, colEnteredCR, ErrZeroAmount)
	}

	group, groupOK := int64(0), true
	if g := f[colGroupID]; len(g) > 0 {
		groupOK = isID(g)
		if groupOK {
			for _, d := range g {
				group = group*10 + int64(d-'0')
			}
			groupOK = group > 0
		}
		if !groupOK {
			c.findCol(n, colGroupID, fmt.Errorf("%w: %s, want a positive number of up to 18 digits", ErrValue, quote(g)))
		}
	}

	// Money counts when it can be read, whatever else is wrong with the line,
	// so that balance findings and totals describe what the file holds.
	if !groupOK || !drOK || !crOK || (!hasDR && !hasCR) {
		return
	}
	if !c.t.hitBytes(group, f[colCurrency], f[colReference4]) {
		c.t.use(n, group, string(f[colCurrency]), string(f[colReference4]))
	}
	c.t.lastF.last = n // a whole-file finding names the lines it covers
	if err := c.t.add(dr, cr); err != nil {
		c.findCol(n, colEnteredDR, err)
	}
}

// text checks the characters and width of field col.
func (c *checker) text(n, col int, v []byte) {
	cl := classes(v)
	if cl&clControl != 0 {
		i := slices.IndexFunc(v, func(b byte) bool { return byteClass[b] == clControl })
		c.findCol(n, col, fmt.Errorf("%w: control character 0x%02x at byte %d", ErrCharacter, v[i], i))
		return
	}
	if cl&clNonASCII != 0 && !utf8.Valid(v) {
		c.findCol(n, col, fmt.Errorf("%w: invalid UTF-8", ErrCharacter))
		return
	}
	if m := maxLen[col]; m > 0 && len(v) > m {
		if k := utf8.RuneCount(v); k > m {
			c.findCol(n, col, fmt.Errorf("%w: %d characters, at most %d", ErrTooLong, k, m))
		}
	}
}

func (c *checker) date(n, col int, f [][]byte, required bool) {
	v := f[col]
	if len(v) == 0 {
		if required {
			c.findCol(n, col, ErrRequired)
		}
		return
	}
	if !validDate(v) {
		c.findCol(n, col, fmt.Errorf("%w: %s", ErrDate, quote(v)))
	}
}

// amount parses field col if set; ok is false only for an unreadable value.
func (c *checker) amount(n, col int, f [][]byte) (a Amount, ok bool) {
	v := f[col]
	if len(v) == 0 {
		return 0, true
	}
	a, err := parseAmount(v)
	if err != nil {
		c.findCol(n, col, fmt.Errorf("%w: %s", err, quote(v)))
		return 0, false
	}
	return a, true
}

// validDate reports whether v is a real calendar date written YYYY/MM/DD.
func validDate(v []byte) bool {
	if len(v) != 10 || v[4] != '/' || v[7] != '/' {
		return false
	}
	num := func(b []byte) int {
		n := 0
		for _, d := range b {
			if d < '0' || d > '9' {
				return -1
			}
			n = n*10 + int(d-'0')
		}
		return n
	}
	y, m, d := num(v[0:4]), num(v[5:7]), num(v[8:10])
	if y < 1 || m < 1 || m > 12 || d < 1 {
		return false
	}
	days := [...]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m-1]
	if m == 2 && y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		days = 29
	}
	return d <= days
}

// quote renders a structured value (date, amount, flag, id) for a finding,
// cut short: findings end up in logs, and only free-text columns could
// carry anything sensitive, so those are never quoted.
func quote(v []byte) string {
	const max = 32
	if len(v) > max {
		return fmt.Sprintf("%q…", bytes.ToValidUTF8(v[:max], nil))
	}
	return fmt.Sprintf("%q", v)
}
