// Package resolute reads Epic Resolute HB/PB general-ledger journal files
// and validates them whole before anything is posted: record layout, every
// field, exact money, header and trailer control totals, unique line ids,
// and debits equal to credits per journal and per batch.
//
// The default layout is pipe-delimited, one record per line:
//
//	H|batch_id|created_at|HB or PB|posting_date
//	D|line_id|posting_date|service_area|cost_center|gl_account|fin_class|payor|tx_type|debit|credit|tx_count|description
//	T|record_count|total_debit|total_credit
//
// Sites differ, so the delimiter, date format and what keys a journal are
// configuration (flows.yaml).
package resolute

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"strconv"
	"time"

	"github.com/sinewhq/sinew/pkg/money"
)

// Layout is a site's file layout.
type Layout struct {
	// Delimiter separates fields: one byte; "|" when empty.
	Delimiter string `yaml:"delimiter"`
	// DateLayout is a Go time layout for dates; "2006-01-02" when empty.
	DateLayout string `yaml:"date_layout"`
	// JournalBy names the detail fields whose values key a journal:
	// posting_date, service_area, cost_center, fin_class, payor, tx_type.
	// Default: posting_date and service_area.
	JournalBy []string `yaml:"journal_by"`
	// MaxFindings bounds the report (1000 when 0); the rest are counted.
	MaxFindings int `yaml:"max_findings"`
	// MaxLineBytes bounds one record (64 KiB when 0).
	MaxLineBytes int `yaml:"max_line_bytes"`
}

// DefaultLayout is the layout above.
func DefaultLayout() Layout {
	return Layout{Delimiter: "|", DateLayout: "2006-01-02", JournalBy: []string{"posting_date", "service_area"}}
}

// Header is the H record.
type Header struct {
	BatchID     string
	CreatedAt   time.Time
	Kind        string // HB or PB
	PostingDate time.Time
}

// Trailer is the T record.
type Trailer struct {
	RecordCount int64
	TotalDebit  money.Amount
	TotalCredit money.Amount
}

// Line is one D record. Its byte fields point into the reader's buffer and
// are valid only until the callback returns; copy what you keep.
type Line struct {
	Number      int // line number in the file, 1-based
	LineID      []byte
	PostingDate time.Time
	ServiceArea []byte
	CostCenter  []byte
	GLAccount   []byte
	FinClass    []byte
	Payor       []byte
	TxType      []byte
	Debit       money.Amount
	Credit      money.Amount
	TxCount     int
	Description []byte
}

// Amount is the line's signed amount: debit positive, credit negative.
func (l *Line) Amount() money.Amount { return l.Debit - l.Credit }

// Finding is one reason a batch is rejected, located by line and field.
type Finding struct {
	Line int
	// Last, when after Line, makes the finding a span: lines Line to Last
	// (a journal's lines on one balancing segment).
	Last  int
	Field string
	Msg   string
	// Unit names what Line counts when it is not a line of a Resolute
	// file: "line" of a Clarity CSV extract, "row" of a Parquet one (see
	// Conversion.Locate). Line 0 of an extract is the batch as a whole.
	Unit string
}

func (f Finding) String() string {
	unit := f.Unit
	if unit == "" {
		unit = "line"
	}
	where := fmt.Sprintf("%s %d", unit, f.Line)
	switch {
	case f.Unit != "" && f.Line == 0:
		where = "batch"
	case f.Last > f.Line && f.Line > 0:
		where = fmt.Sprintf("%ss %d–%d", unit, f.Line, f.Last)
	}
	if f.Field == "" {
		return where + ": " + f.Msg
	}
	return where + ": " + f.Field + ": " + f.Msg
}

// JournalTotal is one journal's debits and credits.
type JournalTotal struct {
	Key           string
	Debit, Credit money.Amount
	Lines         int64
	FirstLine     int
}

// Report is the verdict on a file.
type Report struct {
	Header          Header
	Trailer         Trailer
	Lines           int64        // D records read
	Debit, Credit   money.Amount // sums of the D records
	Journals        []JournalTotal
	Findings        []Finding
	FindingsDropped int
}

// OK reports whether the batch may be posted.
func (r *Report) OK() bool { return len(r.Findings) == 0 && r.FindingsDropped == 0 }

// ErrRejected wraps a report that is not OK.
var ErrRejected = errors.New("resolute: batch rejected")

// detail field positions in a D record.
const (
	fRecord = iota
	fLineID
	fPostingDate
	fServiceArea
	fCostCenter
	fGLAccount
	fFinClass
	fPayor
	fTxType
	fDebit
	fCredit
	fTxCount
	fDescription
	detailFields
)

var detailNames = [detailFields]string{"record_type", "line_id", "posting_date", "service_area", "cost_center",
	"gl_account", "fin_class", "payor", "tx_type", "debit", "credit", "tx_count", "description"}

// Read validates the file from r, calling fn (when not nil) for each
// detail line that passed its own checks. It reads the file once, in
// bounded memory apart from one 8-byte hash per line id and one total per
// journal. A callback error stops the read and is returned. Whether the
// batch as a whole may be posted is Report.OK: callers that must post
// nothing of a bad batch read it twice — once to validate, once to post.
func (lay Layout) Read(r io.Reader, fn func(*Line) error) (*Report, error) {
	def := DefaultLayout()
	if lay.Delimiter == "" {
		lay.Delimiter = def.Delimiter
	}
	if len(lay.Delimiter) != 1 {
		return nil, fmt.Errorf("resolute: delimiter %q must be one byte", lay.Delimiter)
	}
	if lay.DateLayout == "" {
		lay.DateLayout = def.DateLayout
	}
	if len(lay.JournalBy) == 0 {
		lay.JournalBy = def.JournalBy
	}
	if lay.MaxFindings <= 0 {
		lay.MaxFindings = 1000
	}
	if lay.MaxLineBytes <= 0 {
		lay.MaxLineBytes = 64 << 10
	}
	keyFields := make([]int, 0, len(lay.JournalBy))
	for _, name := range lay.JournalBy {
		k := -1
		for i, n := range detailNames {
			if n == name && i >= fPostingDate && i <= fTxType {
				k = i
			}
		}
		if k < 0 {
			return nil, fmt.Errorf("resolute: journal_by: %q is not a detail field that can key a journal", name)
		}
		keyFields = append(keyFields, k)
	}
	v := &validator{lay: lay, keyFields: keyFields, rep: &Report{}, ids: make(map[uint64]int32),
		journals: map[string]*JournalTotal{}, seed: maphash.MakeSeed()}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), lay.MaxLineBytes)
	var fields [detailFields + 1][]byte
	var line Line
	n := 0
	sawTrailer := false
	for sc.Scan() {
		n++
		rec := bytes.TrimRight(sc.Bytes(), "\r")
		if len(bytes.TrimSpace(rec)) == 0 {
			continue
		}
		f := split(rec, lay.Delimiter[0], fields[:0])
		if sawTrailer {
			v.find(n, "", "record after the trailer")
			continue
		}
		switch string(f[0]) {
		case "H":
			v.header(n, f)
		case "D":
			if v.rep.Header.BatchID == "" && !v.sawHeader {
				v.find(n, "", "detail record before the header")
			}
			if !v.detail(n, f, &line) {
				continue
			}
			if fn != nil {
				if err := fn(&line); err != nil {
					return v.rep, err
				}
			}
		case "T":
			sawTrailer = true
			v.trailer(n, f)
		default:
			v.find(n, "record_type", fmt.Sprintf("unknown record type %q (want H, D or T)", truncate(f[0])))
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			v.find(n+1, "", fmt.Sprintf("record longer than %d bytes", lay.MaxLineBytes))
		} else {
			return v.rep, fmt.Errorf("resolute: read: %w", err)
		}
	}
	v.finish(n, sawTrailer)
	return v.rep, nil
}

// split cuts rec at sep into dst; it never allocates beyond dst's capacity
// for well-formed records.
func split(rec []byte, sep byte, dst [][]byte) [][]byte {
	for {
		i := bytes.IndexByte(rec, sep)
		if i < 0 {
			return append(dst, rec)
		}
		dst = append(dst, rec[:i])
		rec = rec[i+1:]
	}
}

type validator struct {
	lay       Layout
	keyFields []int
	rep       *Report
	sawHeader bool
	ids       map[uint64]int32 // line id hash -> first line number
	seed      maphash.Seed
	journals  map[string]*JournalTotal
	order     []*JournalTotal
	keyBuf    []byte
	lastDate  []byte
	lastTime  time.Time
}

func (v *validator) find(line int, field, msg string) {
	if len(v.rep.Findings) >= v.lay.MaxFindings {
		v.rep.FindingsDropped++
		return
	}
	v.rep.Findings = append(v.rep.Findings, Finding{Line: line, Field: field, Msg: msg})
}

func (v *validator) date(b []byte) (time.Time, bool) {
	if bytes.Equal(b, v.lastDate) && len(b) > 0 {
		return v.lastTime, true
	}
	t, err := time.Parse(v.lay.DateLayout, string(b))
	if err != nil {
		return time.Time{}, false
	}
	v.lastDate = append(v.lastDate[:0], b...)
	v.lastTime = t
	return t, true
}

func (v *validator) header(n int, f [][]byte) {
	if v.sawHeader {
		v.find(n, "", "second header record")
		return
	}
	v.sawHeader = true
	if n != 1 && len(v.rep.Findings) == 0 {
		v.find(n, "", "header is not the first record")
	}
	if len(f) != 5 {
		v.find(n, "", fmt.Sprintf("header has %d fields, want 5", len(f)))
		return
	}
	h := &v.rep.Header
	h.BatchID = string(f[1])
	if h.BatchID == "" {
		v.find(n, "batch_id", "empty")
	}
	created, err := parseTimestamp(string(f[2]), v.lay.DateLayout)
	if err != nil {
		v.find(n, "created_at", err.Error())
	}
	h.CreatedAt = created
	h.Kind = string(f[3])
	if h.Kind != "HB" && h.Kind != "PB" {
		v.find(n, "kind", fmt.Sprintf("%q is neither HB nor PB", truncate(f[3])))
	}
	if d, ok := v.date(f[4]); ok {
		h.PostingDate = d
	} else {
		v.find(n, "posting_date", fmt.Sprintf("%q is not a date (%s)", truncate(f[4]), v.lay.DateLayout))
	}
}

// parseTimestamp accepts RFC 3339, "2006-01-02 15:04:05" or a date.
func parseTimestamp(s, dateLayout string) (time.Time, error) {
	for _, l := range []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02T15:04:05", dateLayout} {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a timestamp", truncateString(s))
}

func (v *validator) detail(n int, f [][]byte, l *Line) bool {
	if len(f) != detailFields {
		v.find(n, "", fmt.Sprintf("detail has %d fields, want %d", len(f), detailFields))
		return false
	}
	ok := true
	bad := func(field int, msg string) {
		v.find(n, detailNames[field], msg)
		ok = false
	}
	*l = Line{Number: n, LineID: f[fLineID], ServiceArea: f[fServiceArea], CostCenter: f[fCostCenter],
		GLAccount: f[fGLAccount], FinClass: f[fFinClass], Payor: f[fPayor], TxType: f[fTxType], Description: f[fDescription]}
	if len(l.LineID) == 0 {
		bad(fLineID, "empty")
	} else {
		h := maphash.Bytes(v.seed, l.LineID)
		if first, dup := v.ids[h]; dup {
			bad(fLineID, fmt.Sprintf("%q repeats line %d", truncate(l.LineID), first))
		} else {
			v.ids[h] = int32(n)
		}
	}
	if d, dok := v.date(f[fPostingDate]); dok {
		l.PostingDate = d
	} else {
		bad(fPostingDate, fmt.Sprintf("%q is not a date (%s)", truncate(f[fPostingDate]), v.lay.DateLayout))
	}
	for _, k := range []int{fServiceArea, fCostCenter, fGLAccount} {
		if len(f[k]) == 0 {
			bad(k, "empty")
		}
	}
	amount := func(k int) money.Amount {
		if len(f[k]) == 0 {
			return 0
		}
		a, err := money.ParseBytes(f[k])
		if err != nil {
			bad(k, fmt.Sprintf("%q is not an amount with at most two decimals", truncate(f[k])))
			return 0
		}
		if a < 0 {
			bad(k, "negative")
		}
		return a
	}
	l.Debit, l.Credit = amount(fDebit), amount(fCredit)
	switch {
	case l.Debit != 0 && l.Credit != 0:
		bad(fCredit, "both debit and credit on one line")
	case l.Debit == 0 && l.Credit == 0 && ok:
		bad(fDebit, "neither debit nor credit")
	}
	if c, err := strconv.Atoi(string(f[fTxCount])); err != nil || c < 0 {
		bad(fTxCount, fmt.Sprintf("%q is not a count", truncate(f[fTxCount])))
	} else {
		l.TxCount = c
	}
	if !ok {
		return false
	}
	v.rep.Lines++
	sumInto(&v.rep.Debit, l.Debit, func() { v.find(n, "debit", "batch total overflows") })
	sumInto(&v.rep.Credit, l.Credit, func() { v.find(n, "credit", "batch total overflows") })
	v.keyBuf = v.keyBuf[:0]
	for i, k := range v.keyFields {
		if i > 0 {
			v.keyBuf = append(v.keyBuf, '|')
		}
		v.keyBuf = append(v.keyBuf, f[k]...)
	}
	j := v.journals[string(v.keyBuf)]
	if j == nil {
		j = &JournalTotal{Key: string(v.keyBuf), FirstLine: n}
		v.journals[j.Key] = j
		v.order = append(v.order, j)
	}
	j.Lines++
	sumInto(&j.Debit, l.Debit, func() { v.find(n, "debit", "journal total overflows") })
	sumInto(&j.Credit, l.Credit, func() { v.find(n, "credit", "journal total overflows") })
	return true
}

func sumInto(dst *money.Amount, a money.Amount, overflow func()) {
	s, err := money.Add(*dst, a)
	if err != nil {
		overflow()
		return
	}
	*dst = s
}

func (v *validator) trailer(n int, f [][]byte) {
	if len(f) != 4 {
		v.find(n, "", fmt.Sprintf("trailer has %d fields, want 4", len(f)))
		return
	}
	t := &v.rep.Trailer
	c, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil || c < 0 {
		v.find(n, "record_count", fmt.Sprintf("%q is not a count", truncate(f[1])))
	}
	t.RecordCount = c
	if t.TotalDebit, err = money.ParseBytes(f[2]); err != nil {
		v.find(n, "total_debit", fmt.Sprintf("%q is not an amount", truncate(f[2])))
	}
	if t.TotalCredit, err = money.ParseBytes(f[3]); err != nil {
		v.find(n, "total_credit", fmt.Sprintf("%q is not an amount", truncate(f[3])))
	}
}

// finish checks what needs the whole file: header, trailer, control
// totals, balance per journal and per batch.
func (v *validator) finish(lines int, sawTrailer bool) {
	rep := v.rep
	if !v.sawHeader {
		v.find(1, "", "no header record")
	}
	if !sawTrailer {
		v.find(lines+1, "", "no trailer record (the file may be cut short)")
	}
	if sawTrailer && len(rep.Findings) == 0 {
		t := rep.Trailer
		if t.RecordCount != rep.Lines {
			v.find(lines, "record_count", fmt.Sprintf("trailer says %d detail records, the file has %d", t.RecordCount, rep.Lines))
		}
		if t.TotalDebit != rep.Debit {
			v.find(lines, "total_debit", fmt.Sprintf("trailer says %s, the lines sum to %s", t.TotalDebit, rep.Debit))
		}
		if t.TotalCredit != rep.Credit {
			v.find(lines, "total_credit", fmt.Sprintf("trailer says %s, the lines sum to %s", t.TotalCredit, rep.Credit))
		}
	}
	for _, j := range v.order {
		rep.Journals = append(rep.Journals, *j)
		if j.Debit != j.Credit {
			v.find(j.FirstLine, "", fmt.Sprintf("journal %s is unbalanced: debits %s, credits %s", j.Key, j.Debit, j.Credit))
		}
	}
	if rep.Debit != rep.Credit {
		v.find(lines, "", fmt.Sprintf("batch is unbalanced: debits %s, credits %s", rep.Debit, rep.Credit))
	}
}

// truncate shows at most 40 bytes of a value in a finding.
func truncate(b []byte) string { return truncateString(string(b)) }

func truncateString(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}
