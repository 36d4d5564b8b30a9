package fbdi_test

import (
	"errors"
	"flag"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/corpus"
	"github.com/sinewhq/sinew/pkg/fbdi"
)

var update = flag.Bool("update", false, "rewrite golden files")

// corpusFile reads a file of the conformance corpus's Fusion facts
// (../shared/corpus/fusion, read in place); the test skips without it.
// The in-repo equivalents are sample() and testdata/golden/columns.txt.
func corpusFile(t testing.TB, name string) []byte {
	t.Helper()
	return corpus.ReadFile(t, "fusion/"+name)
}

// syntheticLines re-expresses the four rows of the corpus's
// GlInterface.synthetic.csv; without the corpus they are just four lines.
func syntheticLines() []*fbdi.Line {
	day := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	mk := func(seg string, dr bool, amount fbdi.Amount, journal, desc, ref21 string) *fbdi.Line {
		l := &fbdi.Line{
			LedgerID: "300000000000001", LedgerName: "Example Primary Ledger",
			AccountingDate: day, DateCreated: day,
			Source: "Epic Resolute HB", Category: "Revenue", Currency: "USD",
			Segments:  strings.Split(seg, "."),
			BatchName: "EPICHB-20260115-B0001", BatchDescription: "Epic HB daily revenue 2026-01-15",
			JournalName: journal, JournalDescription: "HB charges by cost center",
			LineDescription: desc, Reference21: ref21,
			GroupID: 700001, Period: "Jan-26",
		}
		if dr {
			l.EnteredDR, l.HasDR = amount, true
		} else {
			l.EnteredCR, l.HasCR = amount, true
		}
		return l
	}
	return []*fbdi.Line{
		mk("101.1000.11010.000.0000.000", true, 125000, "EPICHB-20260115-J0001",
			"HAR charges cc 6010 rev 0300", "EPIC:HB:20260115:0001:1"),
		mk("101.6010.40100.300.0000.000", false, 125000, "EPICHB-20260115-J0001",
			"Lab revenue rev code 0300", "EPIC:HB:20260115:0001:2"),
		mk("101.6020.99999.300.0000.000", true, 1000, "EPICHB-20260115-J0002",
			"Invalid natural account (expect EF04)", "EPIC:HB:20260115:0002:1"),
		mk("101.1000.11010.000.0000.000", false, 1000, "EPICHB-20260115-J0002",
			"Offset", "EPIC:HB:20260115:0002:2"),
	}
}

// sentinels names the errors findings wrap, for compact expectations.
var sentinels = []struct {
	err  error
	name string
}{
	{fbdi.ErrFieldCount, "fields"},
	{fbdi.ErrQuote, "quote"},
	{fbdi.ErrLineTooLong, "line-too-long"},
	{fbdi.ErrCharacter, "character"},
	{fbdi.ErrRequired, "required"},
	{fbdi.ErrValue, "value"},
	{fbdi.ErrTooLong, "too-long"},
	{fbdi.ErrDate, "date"},
	{fbdi.ErrAmount, "amount"},
	{fbdi.ErrZeroAmount, "zero"},
	{fbdi.ErrBothSides, "both-sides"},
	{fbdi.ErrNoSide, "no-side"},
}

// code renders a finding as "line:COLUMN:kind".
func code(e *fbdi.LineError) string {
	var u *fbdi.UnbalancedError
	kind := "?"
	if errors.As(e.Err, &u) {
		kind = "unbalanced-" + u.Scope
	} else {
		for _, s := range sentinels {
			if errors.Is(e.Err, s.err) {
				kind = s.name
				break
			}
		}
	}
	return strings.Join([]string{strconv.Itoa(e.Line), e.Column, kind}, ":")
}

func codes(findings []*fbdi.LineError) []string {
	out := make([]string, len(findings))
	for i, f := range findings {
		out[i] = code(f)
	}
	return out
}
