package fbdi

import (
	"archive/zip"
	"bufio"
	"compress/flate"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Line is one GL_INTERFACE row as Sinew fills it. Columns without a field
// here are written empty.
type Line struct {
	LedgerID   string // LEDGER_ID, digits; or leave empty and set LedgerName
	LedgerName string // LEDGER_NAME

	AccountingDate time.Time // ACCOUNTING_DATE: the calendar date in t's own location
	DateCreated    time.Time // DATE_CREATED: likewise; required, the loader fails without it

	Source   string // USER_JE_SOURCE_NAME: the source's name, not its id
	Category string // USER_JE_CATEGORY_NAME: the category's name
	Currency string // CURRENCY_CODE, e.g. USD

	Segments []string // SEGMENT1..SEGMENTn in chart-of-accounts order, 1 to 30 values

	// Exactly one side is set per line; the amount of the other side must
	// be zero. Negative amounts are allowed (corrections).
	EnteredDR, EnteredCR Amount
	HasDR, HasCR         bool

	BatchName          string // REFERENCE1
	BatchDescription   string // REFERENCE2
	JournalName        string // REFERENCE4; lines are balanced per JournalName within a GroupID
	JournalDescription string // REFERENCE5
	LineDescription    string // REFERENCE10
	Reference21        string // REFERENCE21: the source line key, matched by tier-3 reconciliation

	GroupID int64  // GROUP_ID, > 0; see GroupID
	Period  string // PERIOD_NAME, e.g. "Jan-26"; optional (Fusion derives it from the date)
}

// Writer streams Lines into a GlInterface.csv, inside a zip unless
// Options.CSVOnly. Each line goes straight through a buffer into the
// compressor, so memory does not depend on the number of lines.
//
// A Writer is not safe for concurrent use.
type Writer struct {
	o      Options
	zw     *zip.Writer // nil when CSVOnly
	bw     *bufio.Writer
	buf    []byte
	t      tally
	err    error // sticky: the first I/O error
	closed bool
}

// zipEpoch is the default entry time: the earliest a zip can express.
var zipEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// NewWriter starts a file on w. Close finishes it; w itself is not closed.
func NewWriter(w io.Writer, o Options) (*Writer, error) {
	if o.Entry == "" {
		o.Entry = DefaultEntry
	}
	if o.Level == 0 {
		o.Level = flate.BestSpeed
	}
	if o.Level < flate.BestSpeed || o.Level > flate.BestCompression {
		return nil, fmt.Errorf("fbdi: deflate level %d out of range [1, 9]", o.Level)
	}
	if o.Modified.IsZero() {
		o.Modified = zipEpoch
	}
	wr := &Writer{o: o, buf: make([]byte, 0, 1024)}
	dst := w
	if !o.CSVOnly {
		wr.zw = zip.NewWriter(w)
		level := o.Level
		// Registered on this zip.Writer only: no global state.
		wr.zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
			return flate.NewWriter(w, level)
		})
		// Deflate, never Store: the entry is streamed, so its sizes follow
		// in a data descriptor, which Java's ZipInputStream only accepts
		// for deflated entries.
		entry, err := wr.zw.CreateHeader(&zip.FileHeader{Name: o.Entry, Method: zip.Deflate, Modified: o.Modified})
		if err != nil {
			return nil, fmt.Errorf("fbdi: creating zip entry %q: %w", o.Entry, err)
		}
		dst = entry
	}
	wr.bw = bufio.NewWriterSize(dst, 64<<10)
	return wr, nil
}

// Write validates l and appends it as one row, with STATUS NEW and
// ACTUAL_FLAG A. A refused line is reported as a *LineError (numbered as
// the line it would have been) and leaves the file unchanged.
func (w *Writer) Write(l *Line) error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	n := int(w.t.lines) + 1
	if l == nil {
		return &LineError{Line: n, Err: fmt.Errorf("%w: nil Line", ErrValue)}
	}
	if err := w.validate(l); err != nil {
		err.Line = n
		return err
	}
	if !w.t.hit(l.GroupID, l.Currency, l.JournalName) {
		w.t.use(n, l.GroupID, l.Currency, l.JournalName)
	}
	var dr, cr Amount
	if l.HasDR {
		dr = l.EnteredDR
	} else {
		cr = l.EnteredCR
	}
	if err := w.t.add(dr, cr); err != nil {
		return &LineError{Line: n, Column: columns[colEnteredDR], Err: err}
	}
	w.buf = w.encode(w.buf[:0], l)
	if _, err := w.bw.Write(w.buf); err != nil {
		w.err = fmt.Errorf("fbdi: writing line %d: %w", n, err)
		return w.err
	}
	return nil
}

// Close flushes the CSV and finishes the zip. Totals stay available.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("fbdi: flushing: %w", err)
		return w.err
	}
	if w.zw != nil {
		if err := w.zw.Close(); err != nil {
			w.err = fmt.Errorf("fbdi: finishing zip: %w", err)
			return w.err
		}
	}
	return nil
}

// Totals returns the control totals of the lines written so far.
func (w *Writer) Totals() Totals { return w.t.totals() }

func (w *Writer) validate(l *Line) *LineError {
	bad := func(col int, err error) *LineError { return &LineError{Column: columns[col], Err: err} }
	if l.LedgerID == "" && l.LedgerName == "" {
		return bad(colLedgerID, fmt.Errorf("%w: LEDGER_ID or LEDGER_NAME", ErrRequired))
	}
	if l.LedgerID != "" && !isID(l.LedgerID) {
		return bad(colLedgerID, fmt.Errorf("%w: want 1 to 18 digits", ErrValue))
	}
	for _, d := range [...]struct {
		col int
		t   time.Time
	}{{colAccountingDate, l.AccountingDate}, {colDateCreated, l.DateCreated}} {
		if d.t.IsZero() {
			return bad(d.col, ErrRequired)
		}
		if y := d.t.Year(); y < 1 || y > 9999 {
			return bad(d.col, fmt.Errorf("%w: year %d", ErrDate, y))
		}
	}
	for _, r := range [...]struct {
		col int
		v   string
	}{{colSource, l.Source}, {colCategory, l.Category}, {colCurrency, l.Currency}} {
		if r.v == "" {
			return bad(r.col, ErrRequired)
		}
	}
	if len(l.Segments) == 0 {
		return bad(colSegment1, ErrRequired)
	}
	if len(l.Segments) > MaxSegments {
		return bad(colSegment1, fmt.Errorf("%w: %d segments, at most %d", ErrValue, len(l.Segments), MaxSegments))
	}
	for i, s := range l.Segments {
		if s == "" {
			return bad(colSegment1+i, ErrRequired)
		}
		if err := checkText(colSegment1+i, s); err != nil {
			return err
		}
	}
	for _, t := range [...]struct {
		col int
		v   string
	}{
		{colLedgerName, l.LedgerName}, {colSource, l.Source}, {colCategory, l.Category},
		{colCurrency, l.Currency}, {colReference1, l.BatchName}, {colReference2, l.BatchDescription},
		{colReference4, l.JournalName}, {colReference5, l.JournalDescription},
		{colReference10, l.LineDescription}, {colReference21, l.Reference21}, {colPeriodName, l.Period},
	} {
		if err := checkText(t.col, t.v); err != nil {
			return err
		}
	}
	switch {
	case l.HasDR && l.HasCR:
		return bad(colEnteredCR, ErrBothSides)
	case !l.HasDR && !l.HasCR:
		return bad(colEnteredDR, ErrNoSide)
	case l.HasDR && l.EnteredCR != 0:
		return bad(colEnteredCR, fmt.Errorf("%w: %v on the unset side", ErrValue, l.EnteredCR))
	case l.HasCR && l.EnteredDR != 0:
		return bad(colEnteredDR, fmt.Errorf("%w: %v on the unset side", ErrValue, l.EnteredDR))
	case !w.o.AllowZero && l.HasDR && l.EnteredDR == 0:
		return bad(colEnteredDR, ErrZeroAmount)
	case !w.o.AllowZero && l.HasCR && l.EnteredCR == 0:
		return bad(colEnteredCR, ErrZeroAmount)
	}
	if l.GroupID <= 0 || l.GroupID > maxGroupID {
		return bad(colGroupID, fmt.Errorf("%w: GROUP_ID %d not in [1, %d]", ErrValue, l.GroupID, int64(maxGroupID)))
	}
	return nil
}

// maxGroupID is the largest NUMBER(18).
const maxGroupID = 999_999_999_999_999_999

// Byte classes for the one-pass scans of checkText and appendField.
const (
	clControl  = 1 << iota // C0 controls except tab, and DEL
	clSpecial              // comma or quote: needs enclosing
	clNonASCII             // start or part of a multi-byte sequence
)

var byteClass = func() (t [256]uint8) {
	for c := range 0x20 {
		if c != '\t' {
			t[c] = clControl
		}
	}
	t[0x7f] = clControl
	t[','], t['"'] = clSpecial, clSpecial
	for c := 0x80; c < 0x100; c++ {
		t[c] = clNonASCII
	}
	return t
}()

func classes[T string | []byte](s T) (cl uint8) {
	for i := 0; i < len(s); i++ {
		cl |= byteClass[s[i]]
	}
	return cl
}

// checkText refuses what the loader cannot take in a value: line breaks
// (they end the record), other control characters, invalid UTF-8, and
// values wider than the column.
func checkText(col int, s string) *LineError {
	cl := classes(s)
	if cl&clControl != 0 {
		i := strings.IndexFunc(s, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f })
		what := "control character"
		if s[i] == '\r' || s[i] == '\n' {
			what = "CR or LF"
		}
		return &LineError{Column: columns[col], Err: fmt.Errorf("%w: %s at byte %d", ErrCharacter, what, i)}
	}
	if cl&clNonASCII != 0 && !utf8.ValidString(s) {
		return &LineError{Column: columns[col], Err: fmt.Errorf("%w: invalid UTF-8", ErrCharacter)}
	}
	if m := maxLen[col]; m > 0 && len(s) > m {
		if n := utf8.RuneCountInString(s); n > m {
			return &LineError{Column: columns[col], Err: fmt.Errorf("%w: %d characters, at most %d", ErrTooLong, n, m)}
		}
	}
	return nil
}

// isID reports whether s is 1 to 18 digits (a NUMBER(18) id).
func isID[T string | []byte](s T) bool {
	if len(s) == 0 || len(s) > 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// commas is enough separators for any gap between columns.
var commas = strings.Repeat(",", NumColumns)

// row appends one record's fields in column order; columns skipped are left
// empty.
type row struct {
	b      []byte
	commas int // separators written = index of the next field
}

func (r *row) at(col int) {
	if gap := col - r.commas; gap > 0 {
		r.b = append(r.b, commas[:gap]...)
		r.commas = col
	}
}

func (r *row) text(col int, s string) {
	r.at(col)
	r.b = appendField(r.b, s)
}

func (r *row) date(col int, t time.Time) {
	r.at(col)
	r.b = appendDate(r.b, t)
}

func (w *Writer) encode(b []byte, l *Line) []byte {
	r := row{b: b}
	r.text(colStatus, "NEW")
	r.text(colLedgerID, l.LedgerID)
	r.date(colAccountingDate, l.AccountingDate)
	r.text(colSource, l.Source)
	r.text(colCategory, l.Category)
	r.text(colCurrency, l.Currency)
	r.date(colDateCreated, l.DateCreated)
	r.text(colActualFlag, "A")
	for i, s := range l.Segments {
		r.text(colSegment1+i, s)
	}
	if l.HasDR {
		r.at(colEnteredDR)
		r.b = l.EnteredDR.Append(r.b)
	} else {
		r.at(colEnteredCR)
		r.b = l.EnteredCR.Append(r.b)
	}
	r.text(colReference1, l.BatchName)
	r.text(colReference2, l.BatchDescription)
	r.text(colReference4, l.JournalName)
	r.text(colReference5, l.JournalDescription)
	r.text(colReference10, l.LineDescription)
	r.text(colReference21, l.Reference21)
	r.at(colGroupID)
	r.b = strconv.AppendInt(r.b, l.GroupID, 10)
	r.text(colLedgerName, l.LedgerName)
	r.text(colPeriodName, l.Period)
	r.at(NumColumns - 1)
	if w.o.WithEND {
		r.b = append(r.b, ","+EndMarker...)
	}
	return append(r.b, '\n')
}

// appendField appends s, enclosed in quotes when the loader would otherwise
// split it (comma), misread it (leading quote) or trim it (outer blanks).
func appendField(b []byte, s string) []byte {
	if !needsQuotes(s) {
		return append(b, s...)
	}
	b = append(b, '"')
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			break
		}
		b = append(b, s[:i+1]...)
		b = append(b, '"')
		s = s[i+1:]
	}
	b = append(b, s...)
	return append(b, '"')
}

func needsQuotes(s string) bool {
	if s == "" {
		return false
	}
	return isBlank(s[0]) || isBlank(s[len(s)-1]) || classes(s)&clSpecial != 0
}

// appendDate appends t's calendar date (in t's location) as YYYY/MM/DD.
func appendDate(b []byte, t time.Time) []byte {
	y, m, d := t.Date()
	return append(b,
		byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '/',
		byte('0'+int(m)/10), byte('0'+int(m)%10), '/',
		byte('0'+d/10), byte('0'+d%10))
}
