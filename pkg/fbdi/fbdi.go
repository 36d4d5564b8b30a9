// Package fbdi writes and checks Oracle Fusion FBDI Journal Import files:
// the 149-column GlInterface.csv that the "Load Interface File for Import"
// job loads into GL_INTERFACE, zipped for erpintegrations importBulkData.
//
// The file has no header row. Each line is one GL_INTERFACE row, its fields
// in the fixed order of Columns, separated by commas. Fusion loads it with a
// SQL*Loader control file (fields terminated by ',' optionally enclosed by
// '"'), so this package follows SQL*Loader's rules rather than RFC 4180:
//
//   - a record is one physical line; a line break can never be part of a
//     value, quoted or not, so the Writer rejects CR and LF in values;
//   - a field may be enclosed in double quotes, with "" standing for one
//     quote; the Writer quotes only values that contain a comma or a quote
//     or begin or end with a blank (the loader trims unquoted blanks);
//   - lines end in LF, as in the observed loaders' files and the project's
//     synthetic sample; Check also accepts CRLF.
//
// Rows are 149 fields. Spreadsheet-template files end every row with an
// extra END field; files without it load as well, so the Writer leaves it
// out unless Options.WithEND is set, and Check accepts both.
//
// Money is exact: Amount counts hundredths in an int64, so the package suits
// currencies with two decimal places (USD and the like).
//
// Writer streams: memory does not grow with the number of lines, only with
// the number of distinct journals, whose control totals it keeps. Check
// reads a file the same way and reports every problem it finds with its
// line number, including journals, groups and currencies whose debits and
// credits differ (Journal Import itself accepts unbalanced journals).
package fbdi

import (
	"errors"
	"fmt"
	"time"
)

// NumColumns is the number of GL_INTERFACE fields on a row, END marker
// excluded.
const NumColumns = 149

// EndMarker is the optional 150th field of the spreadsheet template.
const EndMarker = "END"

// DefaultEntry is the name of the CSV inside the zip.
const DefaultEntry = "GlInterface.csv"

// columns is the order of Oracle's JournalImportTemplate GL_INTERFACE sheet
// (and of GlInterface.ctl). It is an array, so callers only get copies.
var columns = [NumColumns]string{
	"STATUS", "LEDGER_ID", "ACCOUNTING_DATE", "USER_JE_SOURCE_NAME",
	"USER_JE_CATEGORY_NAME", "CURRENCY_CODE", "DATE_CREATED", "ACTUAL_FLAG",
	"SEGMENT1", "SEGMENT2", "SEGMENT3", "SEGMENT4", "SEGMENT5", "SEGMENT6",
	"SEGMENT7", "SEGMENT8", "SEGMENT9", "SEGMENT10", "SEGMENT11", "SEGMENT12",
	"SEGMENT13", "SEGMENT14", "SEGMENT15", "SEGMENT16", "SEGMENT17", "SEGMENT18",
	"SEGMENT19", "SEGMENT20", "SEGMENT21", "SEGMENT22", "SEGMENT23", "SEGMENT24",
	"SEGMENT25", "SEGMENT26", "SEGMENT27", "SEGMENT28", "SEGMENT29", "SEGMENT30",
	"ENTERED_DR", "ENTERED_CR", "ACCOUNTED_DR", "ACCOUNTED_CR",
	"REFERENCE1", "REFERENCE2", "REFERENCE3", "REFERENCE4", "REFERENCE5",
	"REFERENCE6", "REFERENCE7", "REFERENCE8", "REFERENCE9", "REFERENCE10",
	"REFERENCE21", "REFERENCE22", "REFERENCE23", "REFERENCE24", "REFERENCE25",
	"REFERENCE26", "REFERENCE27", "REFERENCE28", "REFERENCE29", "REFERENCE30",
	"STAT_AMOUNT", "USER_CURRENCY_CONVERSION_TYPE", "CURRENCY_CONVERSION_DATE",
	"CURRENCY_CONVERSION_RATE", "GROUP_ID", "ATTRIBUTE_CATEGORY",
	"ATTRIBUTE1", "ATTRIBUTE2", "ATTRIBUTE3", "ATTRIBUTE4", "ATTRIBUTE5",
	"ATTRIBUTE6", "ATTRIBUTE7", "ATTRIBUTE8", "ATTRIBUTE9", "ATTRIBUTE10",
	"ATTRIBUTE11", "ATTRIBUTE12", "ATTRIBUTE13", "ATTRIBUTE14", "ATTRIBUTE15",
	"ATTRIBUTE16", "ATTRIBUTE17", "ATTRIBUTE18", "ATTRIBUTE19", "ATTRIBUTE20",
	"ATTRIBUTE_CATEGORY3", "AVERAGE_JOURNAL_FLAG", "ORIGINATING_BAL_SEG_VALUE",
	"LEDGER_NAME", "ENCUMBRANCE_TYPE_ID", "JGZZ_RECON_REF", "PERIOD_NAME",
	"REFERENCE18", "REFERENCE19", "REFERENCE20",
	"ATTRIBUTE_DATE1", "ATTRIBUTE_DATE2", "ATTRIBUTE_DATE3", "ATTRIBUTE_DATE4",
	"ATTRIBUTE_DATE5", "ATTRIBUTE_DATE6", "ATTRIBUTE_DATE7", "ATTRIBUTE_DATE8",
	"ATTRIBUTE_DATE9", "ATTRIBUTE_DATE10",
	"ATTRIBUTE_NUMBER1", "ATTRIBUTE_NUMBER2", "ATTRIBUTE_NUMBER3",
	"ATTRIBUTE_NUMBER4", "ATTRIBUTE_NUMBER5", "ATTRIBUTE_NUMBER6",
	"ATTRIBUTE_NUMBER7", "ATTRIBUTE_NUMBER8", "ATTRIBUTE_NUMBER9",
	"ATTRIBUTE_NUMBER10",
	"GLOBAL_ATTRIBUTE_CATEGORY",
	"GLOBAL_ATTRIBUTE1", "GLOBAL_ATTRIBUTE2", "GLOBAL_ATTRIBUTE3",
	"GLOBAL_ATTRIBUTE4", "GLOBAL_ATTRIBUTE5", "GLOBAL_ATTRIBUTE6",
	"GLOBAL_ATTRIBUTE7", "GLOBAL_ATTRIBUTE8", "GLOBAL_ATTRIBUTE9",
	"GLOBAL_ATTRIBUTE10", "GLOBAL_ATTRIBUTE11", "GLOBAL_ATTRIBUTE12",
	"GLOBAL_ATTRIBUTE13", "GLOBAL_ATTRIBUTE14", "GLOBAL_ATTRIBUTE15",
	"GLOBAL_ATTRIBUTE16", "GLOBAL_ATTRIBUTE17", "GLOBAL_ATTRIBUTE18",
	"GLOBAL_ATTRIBUTE19", "GLOBAL_ATTRIBUTE20",
	"GLOBAL_ATTRIBUTE_DATE1", "GLOBAL_ATTRIBUTE_DATE2", "GLOBAL_ATTRIBUTE_DATE3",
	"GLOBAL_ATTRIBUTE_DATE4", "GLOBAL_ATTRIBUTE_DATE5",
	"GLOBAL_ATTRIBUTE_NUMBER1", "GLOBAL_ATTRIBUTE_NUMBER2",
	"GLOBAL_ATTRIBUTE_NUMBER3", "GLOBAL_ATTRIBUTE_NUMBER4",
	"GLOBAL_ATTRIBUTE_NUMBER5",
}

// Columns returns the GL_INTERFACE column names in file order.
func Columns() [NumColumns]string { return columns }

// Indexes (0-based) of the columns this package reads or writes.
const (
	colStatus         = 0
	colLedgerID       = 1
	colAccountingDate = 2
	colSource         = 3
	colCategory       = 4
	colCurrency       = 5
	colDateCreated    = 6
	colActualFlag     = 7
	colSegment1       = 8 // SEGMENT1..SEGMENT30 are 8..37
	colEnteredDR      = 38
	colEnteredCR      = 39
	colAccountedDR    = 40
	colAccountedCR    = 41
	colReference1     = 42
	colReference2     = 43
	colReference4     = 45
	colReference5     = 46
	colReference10    = 51
	colReference21    = 52
	colConvDate       = 64
	colGroupID        = 66
	colLedgerName     = 91
	colPeriodName     = 94
)

// MaxSegments is the number of SEGMENTn columns.
const MaxSegments = 30

// maxLen is the column width, in characters, of the text columns this
// package checks. Widths are those of Oracle's GL_INTERFACE table reference;
// SQL*Loader rejects the whole row when a value does not fit.
var maxLen = func() (m [NumColumns]int) {
	m[colStatus] = 50
	m[colSource] = 25
	m[colCategory] = 25
	m[colCurrency] = 15
	m[colActualFlag] = 1
	for i := range MaxSegments {
		m[colSegment1+i] = 25
	}
	m[colReference1] = 100
	m[colReference2] = 240
	m[colReference4] = 100
	m[colReference5] = 240
	m[colReference10] = 240
	for i := range 10 { // REFERENCE21..REFERENCE30
		m[colReference21+i] = 240
	}
	m[colLedgerName] = 30
	m[colPeriodName] = 15
	return m
}()

// Errors that findings and Write wrap; test with errors.Is.
var (
	ErrFieldCount  = errors.New("wrong number of fields")
	ErrQuote       = errors.New("malformed quoted field")
	ErrLineTooLong = errors.New("line too long")
	ErrCharacter   = errors.New("forbidden character")
	ErrRequired    = errors.New("required value missing")
	ErrValue       = errors.New("invalid value")
	ErrTooLong     = errors.New("value too long")
	ErrDate        = errors.New("invalid date (want YYYY/MM/DD)")
	ErrAmount      = errors.New("invalid amount")
	ErrZeroAmount  = errors.New("zero amount")
	ErrBothSides   = errors.New("both ENTERED_DR and ENTERED_CR set")
	ErrNoSide      = errors.New("neither ENTERED_DR nor ENTERED_CR set")
	ErrUnbalanced  = errors.New("debits differ from credits")
	ErrNoEntry     = errors.New("no GL interface CSV in zip")
	ErrClosed      = errors.New("fbdi: writer closed")
)

// LineError is a problem with one line of a GlInterface.csv: a Check
// finding, or the reason Writer.Write refused a Line.
type LineError struct {
	Line   int    // 1-based line number; 0 when the finding is about the whole file
	Column string // GL_INTERFACE column name; "" when about the whole line
	Err    error  // wraps one of the Err* values
}

func (e *LineError) Error() string {
	switch {
	case e.Line == 0 && e.Column == "":
		return "fbdi: file: " + e.Err.Error()
	case e.Line == 0:
		return fmt.Sprintf("fbdi: file: %s: %v", e.Column, e.Err)
	case e.Column == "":
		return fmt.Sprintf("fbdi: line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("fbdi: line %d: %s: %v", e.Line, e.Column, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// Balance scopes of an UnbalancedError.
const (
	ScopeJournal = "journal" // REFERENCE4 within a GROUP_ID and currency
	ScopeGroup   = "group"   // GROUP_ID and currency
	ScopeFile    = "file"    // currency
)

// UnbalancedError reports a journal, group or file whose debits differ from
// its credits. It matches ErrUnbalanced under errors.Is.
type UnbalancedError struct {
	Scope    string // ScopeJournal, ScopeGroup or ScopeFile
	GroupID  int64  // 0 for ScopeFile, or for rows with an empty GROUP_ID
	Currency string
	Journal  string // REFERENCE4; ScopeJournal only
	DR, CR   Amount
	// First and Last are the file lines of the currency (ScopeFile only;
	// 0 when not known).
	First, Last int
}

func (e *UnbalancedError) Error() string {
	switch e.Scope {
	case ScopeJournal:
		return fmt.Sprintf("journal %q of group %d unbalanced in %s: DR %v, CR %v",
			e.Journal, e.GroupID, e.Currency, e.DR, e.CR)
	case ScopeGroup:
		return fmt.Sprintf("group %d unbalanced in %s: DR %v, CR %v", e.GroupID, e.Currency, e.DR, e.CR)
	}
	if e.First > 0 {
		return fmt.Sprintf("file unbalanced in %s (lines %d–%d): DR %v, CR %v", e.Currency, e.First, e.Last, e.DR, e.CR)
	}
	return fmt.Sprintf("file unbalanced in %s: DR %v, CR %v", e.Currency, e.DR, e.CR)
}

func (e *UnbalancedError) Is(target error) bool { return target == ErrUnbalanced }

// Options configures NewWriter and Check. The zero value is ready to use.
type Options struct {
	// Entry is the CSV's name inside the zip: the one NewWriter creates and
	// the one CheckZip looks for (falling back to the zip's only .csv).
	// Default DefaultEntry.
	Entry string

	// WithEND makes the Writer end every row with the END marker field of
	// the spreadsheet template. Check accepts rows with or without it.
	WithEND bool

	// AllowZero lets a line carry 0.00 on its side. By default Write
	// refuses such lines and Check reports them: a zero line moves no money
	// and usually means a mapping fault upstream.
	AllowZero bool

	// CSVOnly makes the Writer write the bare CSV instead of a zip.
	CSVOnly bool

	// Level is the Writer's deflate level, from flate.BestSpeed (1) to
	// flate.BestCompression (9). 0 means flate.BestSpeed: on journal lines
	// it deflates about twice as fast as level 6 for a zip about 1.5 times
	// the size, and the upload is rarely the bottleneck.
	Level int

	// Modified is the zip entry's modification time. Default 1980-01-01
	// UTC, so that the same lines always give the same zip bytes.
	Modified time.Time

	// MaxFindings caps the findings a Report keeps (the rest are counted
	// in Report.Omitted). Default 1000; negative means no cap.
	MaxFindings int
}
