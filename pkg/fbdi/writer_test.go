package fbdi_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/fbdi"
)

func write(t testing.TB, o fbdi.Options, lines []*fbdi.Line) ([]byte, fbdi.Totals) {
	t.Helper()
	var buf bytes.Buffer
	w, err := fbdi.NewWriter(&buf, o)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range lines {
		if err := w.Write(l); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.Totals()
}

func unzip(t testing.TB, b []byte, name string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != name || zr.File[0].Method != zip.Deflate {
		t.Fatalf("zip holds %d entries, first %q method %d; want one deflated %q",
			len(zr.File), zr.File[0].Name, zr.File[0].Method, name)
	}
	rc, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWriterCorpusSample: the corpus's four synthetic rows, re-expressed
// as Lines, come out byte for byte as the corpus file (149 fields, LF, no
// END), bare and zipped. TestWriterSample does the same in-repo.
func TestWriterCorpusSample(t *testing.T) {
	want := corpusFile(t, "GlInterface.synthetic.csv")
	got, tot := write(t, fbdi.Options{CSVOnly: true}, syntheticLines())
	if !bytes.Equal(got, want) {
		t.Fatalf("CSV differs from the corpus sample:\n got %q\nwant %q", got, want)
	}
	z, _ := write(t, fbdi.Options{}, syntheticLines())
	if got := unzip(t, z, "GlInterface.csv"); !bytes.Equal(got, want) {
		t.Fatalf("zipped CSV differs from the corpus sample")
	}
	if tot.Lines != 4 || tot.DR != 126000 || tot.CR != 126000 || !tot.Balanced() {
		t.Errorf("totals %+v", tot)
	}
	wantGroups := []fbdi.GroupTotals{{GroupID: 700001, Currency: "USD", Lines: 4, DR: 126000, CR: 126000}}
	if !equalSlices(tot.Groups, wantGroups) {
		t.Errorf("groups %+v, want %+v", tot.Groups, wantGroups)
	}
	wantJournals := []fbdi.JournalTotals{
		{GroupID: 700001, Currency: "USD", Journal: "EPICHB-20260115-J0001", Lines: 2, DR: 125000, CR: 125000},
		{GroupID: 700001, Currency: "USD", Journal: "EPICHB-20260115-J0002", Lines: 2, DR: 1000, CR: 1000},
	}
	if !equalSlices(tot.Journals, wantJournals) {
		t.Errorf("journals %+v, want %+v", tot.Journals, wantJournals)
	}
}

func equalSlices[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestWriterGolden covers what the corpus sample does not: quoting, the
// END marker, negative amounts, 30 segments, local-time dates, name-only
// ledgers and an empty period.
func TestWriterGolden(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.FixedZone("EST", -5*3600)
	}
	late := time.Date(2026, 1, 31, 23, 30, 0, 0, ny) // already Feb 1 in UTC: the local date is written
	segs := make([]string, fbdi.MaxSegments)
	for i := range segs {
		segs[i] = string(rune('A' + i%26))
	}
	lines := []*fbdi.Line{
		{
			LedgerName: "US Primary, Ledger", AccountingDate: late, DateCreated: late,
			Source: "Epic Resolute PB", Category: "Adjustment", Currency: "USD",
			Segments: []string{"101", "6010", "40100"}, EnteredDR: -320, HasDR: true,
			BatchName: `Batch "B1"`, JournalName: "J1", LineDescription: "  leading and trailing blanks ",
			Reference21: "EPIC:PB:1,2", GroupID: fbdi.GroupID("golden:J1"),
		},
		{
			LedgerName: "US Primary, Ledger", AccountingDate: late, DateCreated: late,
			Source: "Epic Resolute PB", Category: "Adjustment", Currency: "USD",
			Segments: segs, EnteredCR: -320, HasCR: true,
			BatchName: `Batch "B1"`, JournalName: "J1", LineDescription: `"quoted" café`,
			Reference21: "EPIC:PB:1,3", GroupID: fbdi.GroupID("golden:J1"), Period: "Jan-26",
		},
	}
	for _, tc := range []struct {
		name string
		o    fbdi.Options
	}{
		{"quoting_end.csv", fbdi.Options{CSVOnly: true, WithEND: true}},
		{"quoting.csv", fbdi.Options{CSVOnly: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := write(t, tc.o, lines)
			golden := filepath.Join("testdata", "golden", tc.name)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("differs from %s:\n got %q\nwant %q", golden, got, want)
			}
			// The checker reads back exactly what was written.
			rep, err := fbdi.CheckCSV(context.Background(), bytes.NewReader(got), fbdi.Options{})
			if err != nil || !rep.OK() {
				t.Fatalf("Check: %v %v", err, codes(rep.Findings))
			}
			r := fbdi.NewReader(bytes.NewReader(got))
			rec, err := r.Read()
			if err != nil {
				t.Fatal(err)
			}
			cols := fbdi.Columns()
			for i, want := range map[string]string{
				"LEDGER_NAME": "US Primary, Ledger", "ACCOUNTING_DATE": "2026/01/31", "ENTERED_DR": "-3.20",
				"REFERENCE1": `Batch "B1"`, "REFERENCE10": "  leading and trailing blanks ", "LEDGER_ID": "",
			} {
				for c, name := range cols {
					if name == i && rec[c] != want {
						t.Errorf("%s = %q, want %q", name, rec[c], want)
					}
				}
			}
		})
	}
}

// TestWriterZip: the zip reads back with archive/zip, the entry name is
// configurable, and the same lines always give the same bytes.
func TestWriterZip(t *testing.T) {
	o := fbdi.Options{Entry: "Journals_20260115.csv"}
	a, _ := write(t, o, syntheticLines())
	b, _ := write(t, o, syntheticLines())
	if !bytes.Equal(a, b) {
		t.Fatal("same lines, different zip bytes")
	}
	bare, _ := write(t, fbdi.Options{CSVOnly: true}, syntheticLines())
	if got := unzip(t, a, o.Entry); !bytes.Equal(got, bare) {
		t.Fatal("zip content differs")
	}
	rep, err := fbdi.Check(context.Background(), bytes.NewReader(a), int64(len(a)), o)
	if err != nil || !rep.OK() || rep.Entry != o.Entry || rep.Totals.Lines != 4 {
		t.Fatalf("Check: %v, %+v", err, rep)
	}
	// Without the entry name, the only .csv is found.
	rep, err = fbdi.Check(context.Background(), bytes.NewReader(a), int64(len(a)), fbdi.Options{})
	if err != nil || rep.Entry != o.Entry {
		t.Fatalf("Check without entry name: %v", err)
	}
	for _, level := range []int{1, 6, 9} {
		z, _ := write(t, fbdi.Options{Level: level}, syntheticLines())
		if got := unzip(t, z, fbdi.DefaultEntry); !bytes.Equal(got, bare) {
			t.Errorf("level %d: content differs", level)
		}
	}
	if _, err := fbdi.NewWriter(io.Discard, fbdi.Options{Level: 10}); err == nil {
		t.Error("level 10 accepted")
	}
}

// TestWriterRefuses: every refused line names its column and reason and
// leaves the output as it was.
func TestWriterRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(l *fbdi.Line)
		opts   fbdi.Options
		want   string // code() of the error
	}{
		{"no ledger", func(l *fbdi.Line) { l.LedgerID, l.LedgerName = "", "" }, fbdi.Options{}, "1:LEDGER_ID:required"},
		{"ledger id not digits", func(l *fbdi.Line) { l.LedgerID = "3e14" }, fbdi.Options{}, "1:LEDGER_ID:value"},
		{"no accounting date", func(l *fbdi.Line) { l.AccountingDate = time.Time{} }, fbdi.Options{}, "1:ACCOUNTING_DATE:required"},
		{"no date created", func(l *fbdi.Line) { l.DateCreated = time.Time{} }, fbdi.Options{}, "1:DATE_CREATED:required"},
		{"year 10000", func(l *fbdi.Line) { l.DateCreated = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, fbdi.Options{}, "1:DATE_CREATED:date"},
		{"no source", func(l *fbdi.Line) { l.Source = "" }, fbdi.Options{}, "1:USER_JE_SOURCE_NAME:required"},
		{"no category", func(l *fbdi.Line) { l.Category = "" }, fbdi.Options{}, "1:USER_JE_CATEGORY_NAME:required"},
		{"no currency", func(l *fbdi.Line) { l.Currency = "" }, fbdi.Options{}, "1:CURRENCY_CODE:required"},
		{"no segments", func(l *fbdi.Line) { l.Segments = nil }, fbdi.Options{}, "1:SEGMENT1:required"},
		{"31 segments", func(l *fbdi.Line) { l.Segments = make([]string, 31) }, fbdi.Options{}, "1:SEGMENT1:value"},
		{"empty segment", func(l *fbdi.Line) { l.Segments[2] = "" }, fbdi.Options{}, "1:SEGMENT3:required"},
		{"segment too long", func(l *fbdi.Line) { l.Segments[1] = strings.Repeat("9", 26) }, fbdi.Options{}, "1:SEGMENT2:too-long"},
		{"LF in description", func(l *fbdi.Line) { l.LineDescription = "two\nlines" }, fbdi.Options{}, "1:REFERENCE10:character"},
		{"CR in journal name", func(l *fbdi.Line) { l.JournalName = "J\r1" }, fbdi.Options{}, "1:REFERENCE4:character"},
		{"NUL in reference", func(l *fbdi.Line) { l.Reference21 = "a\x00" }, fbdi.Options{}, "1:REFERENCE21:character"},
		{"bad UTF-8", func(l *fbdi.Line) { l.BatchDescription = "caf\xe9" }, fbdi.Options{}, "1:REFERENCE2:character"},
		{"description too long", func(l *fbdi.Line) { l.LineDescription = strings.Repeat("é", 241) }, fbdi.Options{}, "1:REFERENCE10:too-long"},
		{"period too long", func(l *fbdi.Line) { l.Period = "January-2026-adj" }, fbdi.Options{}, "1:PERIOD_NAME:too-long"},
		{"both sides", func(l *fbdi.Line) { l.HasCR = true }, fbdi.Options{}, "1:ENTERED_CR:both-sides"},
		{"no side", func(l *fbdi.Line) { l.HasDR = false }, fbdi.Options{}, "1:ENTERED_DR:no-side"},
		{"amount on unset side", func(l *fbdi.Line) { l.EnteredCR = 5 }, fbdi.Options{}, "1:ENTERED_CR:value"},
		{"zero", func(l *fbdi.Line) { l.EnteredDR = 0 }, fbdi.Options{}, "1:ENTERED_DR:zero"},
		{"no group", func(l *fbdi.Line) { l.GroupID = 0 }, fbdi.Options{}, "1:GROUP_ID:value"},
		{"negative group", func(l *fbdi.Line) { l.GroupID = -7 }, fbdi.Options{}, "1:GROUP_ID:value"},
		{"group of 19 digits", func(l *fbdi.Line) { l.GroupID = 1_000_000_000_000_000_000 }, fbdi.Options{}, "1:GROUP_ID:value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := fbdi.NewWriter(&buf, fbdi.Options{CSVOnly: true, AllowZero: tc.opts.AllowZero})
			if err != nil {
				t.Fatal(err)
			}
			l := syntheticLines()[0]
			tc.mutate(l)
			err = w.Write(l)
			var le *fbdi.LineError
			if !errors.As(err, &le) {
				t.Fatalf("Write = %v, want a *LineError", err)
			}
			if got := code(le); got != tc.want {
				t.Fatalf("Write = %v (%s), want %s", err, got, tc.want)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if buf.Len() != 0 || w.Totals().Lines != 0 {
				t.Fatalf("refused line left %d bytes, %d lines", buf.Len(), w.Totals().Lines)
			}
		})
	}
}

func TestWriterAllowZero(t *testing.T) {
	l := syntheticLines()[0]
	l.EnteredDR = 0
	got, tot := write(t, fbdi.Options{CSVOnly: true, AllowZero: true}, []*fbdi.Line{l})
	if tot.Lines != 1 || !bytes.Contains(got, []byte(",0.00,")) {
		t.Fatalf("zero line: %q %+v", got, tot)
	}
	rep, err := fbdi.CheckCSV(context.Background(), bytes.NewReader(got), fbdi.Options{AllowZero: true})
	if err != nil || !rep.OK() {
		t.Fatalf("Check: %v %v", err, codes(rep.Findings))
	}
	rep, _ = fbdi.CheckCSV(context.Background(), bytes.NewReader(got), fbdi.Options{})
	if c := codes(rep.Findings); len(c) != 1 || c[0] != "1:ENTERED_DR:zero" {
		t.Fatalf("Check without AllowZero: %v", c)
	}
}

func TestWriterClosed(t *testing.T) {
	w, err := fbdi.NewWriter(io.Discard, fbdi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(syntheticLines()[0]); !errors.Is(err, fbdi.ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// TestWriterIOError: an I/O failure sticks and surfaces from Write or Close.
func TestWriterIOError(t *testing.T) {
	w, err := fbdi.NewWriter(&failWriter{n: 100}, fbdi.Options{CSVOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	for i := 0; i < 1000 && werr == nil; i++ {
		werr = w.Write(syntheticLines()[i%4])
	}
	cerr := w.Close()
	if werr == nil && cerr == nil {
		t.Fatal("no error from a failing writer")
	}
	if cerr == nil || !strings.Contains(cerr.Error(), "disk full") {
		t.Fatalf("Close = %v", cerr)
	}
}

// TestWriterMemoryFlat: heap in use does not grow with the number of lines
// (only with the number of journals, fixed here).
func TestWriterMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 220,000 lines")
	}
	w, err := fbdi.NewWriter(io.Discard, fbdi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lines := syntheticLines()
	writeN := func(n int) {
		for i := range n {
			if err := w.Write(lines[i%4]); err != nil {
				t.Fatal(err)
			}
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	writeN(20_000)
	before := heap()
	writeN(200_000)
	after := heap()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("heap in use after 20k lines %d KiB, after 220k %d KiB", before>>10, after>>10)
	if after > before+1<<20 {
		t.Fatalf("heap grew from %d to %d bytes over 200,000 lines", before, after)
	}
	if w.Totals().Lines != 220_000 {
		t.Fatalf("lines %d", w.Totals().Lines)
	}
}
