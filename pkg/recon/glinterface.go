package recon

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/fbdi"
	"github.com/sinewhq/sinew/pkg/money"
)

// glColumns are the indexes of the GL_INTERFACE columns tier 3 reads.
type glColumns struct {
	groupID, ref1, ref4, ref21, segment1, dr, cr, ledgerName, ledgerID, period, date, currency int
}

func findColumns() (glColumns, error) {
	idx := make(map[string]int, fbdi.NumColumns)
	for i, name := range fbdi.Columns() {
		idx[name] = i
	}
	var c glColumns
	var missing []string
	for _, f := range []struct {
		name string
		dst  *int
	}{
		{"GROUP_ID", &c.groupID}, {"REFERENCE1", &c.ref1}, {"REFERENCE4", &c.ref4}, {"REFERENCE21", &c.ref21},
		{"SEGMENT1", &c.segment1}, {"ENTERED_DR", &c.dr}, {"ENTERED_CR", &c.cr}, {"LEDGER_NAME", &c.ledgerName},
		{"LEDGER_ID", &c.ledgerID}, {"PERIOD_NAME", &c.period}, {"ACCOUNTING_DATE", &c.date}, {"CURRENCY_CODE", &c.currency},
	} {
		i, ok := idx[f.name]
		if !ok {
			missing = append(missing, f.name)
		}
		*f.dst = i
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("recon: fbdi has no column %s", strings.Join(missing, ", "))
	}
	return c, nil
}

// ReadGlInterface streams the lines of a GlInterface.csv, or of the zip
// that holds one (told by its signature; the entry GlInterface.csv, else
// the zip's only .csv), read from r of size bytes, calling fn for each.
// The *SourceLine is reused: fn must copy the struct to keep it (its
// strings may be kept). An error from fn stops the reading and is
// returned.
//
// The file is one transform built and pkg/fbdi checked, so a line whose
// GROUP_ID or amounts cannot be read is an error naming the line, not a
// finding. PERIOD_NAME, when empty, is derived from ACCOUNTING_DATE the
// way the resolute-gl mapper names periods ("Jan-26"); LEDGER_ID stands in
// for an empty LEDGER_NAME.
func ReadGlInterface(r io.ReaderAt, size int64, fn func(*SourceLine) error) error {
	var sig [4]byte
	n, err := r.ReadAt(sig[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("recon: reading GlInterface: %w", err)
	}
	if n == 4 && (string(sig[:]) == "PK\x03\x04" || string(sig[:]) == "PK\x05\x06") {
		zr, err := zip.NewReader(r, size)
		if err != nil {
			return fmt.Errorf("recon: opening GlInterface zip: %w", err)
		}
		f, err := csvEntry(zr)
		if err != nil {
			return err
		}
		rc, err := f.Open()
		if err != nil {
			return fmt.Errorf("recon: opening zip entry %q: %w", f.Name, err)
		}
		defer rc.Close()
		if err := ReadGlInterfaceCSV(rc, fn); err != nil {
			return fmt.Errorf("zip entry %q: %w", f.Name, err)
		}
		return nil
	}
	return ReadGlInterfaceCSV(io.NewSectionReader(r, 0, size), fn)
}

func csvEntry(zr *zip.Reader) (*zip.File, error) {
	var csv []*zip.File
	for _, f := range zr.File {
		if f.Name == fbdi.DefaultEntry {
			return f, nil
		}
		if strings.EqualFold(path.Ext(f.Name), ".csv") {
			csv = append(csv, f)
		}
	}
	if len(csv) == 1 {
		return csv[0], nil
	}
	return nil, fmt.Errorf("recon: %w: no entry %q and %d other .csv entries", fbdi.ErrNoEntry, fbdi.DefaultEntry, len(csv))
}

// ReadGlInterfaceCSV is ReadGlInterface for a bare GlInterface.csv stream.
func ReadGlInterfaceCSV(r io.Reader, fn func(*SourceLine) error) error {
	c, err := findColumns()
	if err != nil {
		return err
	}
	fr := fbdi.NewReader(r)
	var l SourceLine
	var acct []byte
	// Batch, journal, ledger, period, currency and account repeat on every
	// line: one string each, not one per line.
	intern := make(map[string]string)
	in := func(b []byte) string {
		if v, ok := intern[string(b)]; ok {
			return v
		}
		s := string(b)
		if len(intern) < 1<<12 {
			intern[s] = s
		}
		return s
	}
	lastDate, lastPeriod := "", ""
	for {
		f, err := fr.ReadBytes()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("recon: reading GlInterface: %w", err)
		}
		line := fr.Line()
		if len(f) < fbdi.NumColumns {
			return fmt.Errorf("recon: GlInterface line %d: %d fields, want %d", line, len(f), fbdi.NumColumns)
		}
		l = SourceLine{Reference21: string(f[c.ref21]), Batch: in(f[c.ref1]), Journal: in(f[c.ref4]),
			Ledger: in(f[c.ledgerName]), Period: in(f[c.period]), Currency: in(f[c.currency])}
		if l.Ledger == "" {
			l.Ledger = in(f[c.ledgerID])
		}
		if l.Period == "" {
			if d := f[c.date]; string(d) != lastDate {
				t, err := time.Parse("2006/01/02", string(d))
				if err != nil {
					return fmt.Errorf("recon: GlInterface line %d: ACCOUNTING_DATE %q: %w", line, d, err)
				}
				lastDate, lastPeriod = string(d), in([]byte(t.Format("Jan-06")))
			}
			l.Period = lastPeriod
		}
		if l.GroupID, err = parseInt(f[c.groupID]); err != nil {
			return fmt.Errorf("recon: GlInterface line %d: GROUP_ID %q: %w", line, f[c.groupID], err)
		}
		if l.DR, err = amount(f[c.dr]); err != nil {
			return fmt.Errorf("recon: GlInterface line %d: ENTERED_DR: %w", line, err)
		}
		if l.CR, err = amount(f[c.cr]); err != nil {
			return fmt.Errorf("recon: GlInterface line %d: ENTERED_CR: %w", line, err)
		}
		acct = acct[:0]
		for i := range fbdi.MaxSegments {
			s := f[c.segment1+i]
			if len(s) == 0 {
				break // segments are filled from SEGMENT1 on
			}
			if i > 0 {
				acct = append(acct, '-')
			}
			acct = append(acct, s...)
		}
		l.Account = in(acct)
		if err := fn(&l); err != nil {
			return err
		}
	}
}

func amount(b []byte) (money.Amount, error) {
	if len(b) == 0 {
		return 0, nil
	}
	return money.ParseBytes(b)
}

// parseInt parses a non-negative decimal without a string copy.
func parseInt(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 18 {
		return 0, fmt.Errorf("%q: %w", b, strconv.ErrSyntax)
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q: %w", b, strconv.ErrSyntax)
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}
