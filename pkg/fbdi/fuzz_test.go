package fbdi_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sinewhq/sinew/pkg/corpus"
	"github.com/sinewhq/sinew/pkg/fbdi"
)

// FuzzCheck: CheckCSV never panics nor fails on in-memory input, its
// findings are located inside the file and wrap an error; Check, which
// takes the same bytes for a zip when they start like one, never panics.
func FuzzCheck(f *testing.F) {
	f.Add(sample(f))
	addCorpusSeeds(f)
	for _, tc := range checkCases() {
		f.Add([]byte(tc.input(f)))
	}
	z, _ := write(f, fbdi.Options{}, syntheticLines())
	f.Add(z)
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := fbdi.CheckCSV(context.Background(), bytes.NewReader(data), fbdi.Options{MaxFindings: -1})
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		if want := bytes.Count(data, []byte{'\n'}); rep.Lines != want && rep.Lines != want+1 {
			t.Fatalf("%d lines read from %d newlines", rep.Lines, want)
		}
		for _, fd := range rep.Findings {
			if fd.Err == nil || fd.Line < 0 || fd.Line > rep.Lines || fd.Error() == "" {
				t.Fatalf("bad finding %#v", fd)
			}
		}
		if rep.OK() && rep.Totals.Lines != int64(rep.Lines) {
			t.Fatalf("clean file, but %d of %d lines in totals", rep.Totals.Lines, rep.Lines)
		}
		if rep.OK() && !rep.Totals.Balanced() {
			t.Fatal("clean file with unbalanced totals")
		}
		if _, err := fbdi.Check(context.Background(), bytes.NewReader(data), int64(len(data)), fbdi.Options{}); err != nil &&
			!bytes.HasPrefix(data, []byte("PK")) {
			t.Fatalf("Check on a non-zip: %v", err)
		}
	})
}

// FuzzReader: the Reader never panics, and every record it returns,
// written back with the Writer's quoting, reads back the same.
func FuzzReader(f *testing.F) {
	f.Add(sample(f))
	addCorpusSeeds(f)
	f.Add([]byte(`"a,b","c""d",""` + "\n" + ` "  x  " ,y` + "\r\n" + `ab"c,"open` + "\n"))
	f.Add([]byte("\n\n\r\n\"\"\"\",\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := fbdi.NewReader(bytes.NewReader(data))
		for {
			rec, err := r.Read()
			if err == io.EOF {
				return
			}
			if err != nil {
				var le *fbdi.LineError
				if !errors.As(err, &le) || le.Line != r.Line() {
					t.Fatalf("Read error %v", err)
				}
				continue
			}
			if slices.ContainsFunc(rec, func(v string) bool { return strings.Contains(v, "\n") }) {
				t.Fatalf("record %q holds a line feed", rec)
			}
			if slices.ContainsFunc(rec, func(v string) bool { return strings.Contains(v, "\r") }) {
				continue // a bare CR is data to the loader, but the Writer refuses it
			}
			var line strings.Builder
			for i, v := range rec {
				if i > 0 {
					line.WriteByte(',')
				}
				line.WriteString(quoteField(v))
			}
			again, err := fbdi.NewReader(strings.NewReader(line.String() + "\n")).Read()
			if err != nil || !slices.Equal(again, rec) {
				t.Fatalf("record %q re-encoded as %q reads back as %q, %v", rec, line.String(), again, err)
			}
		}
	})
}

// quoteField mirrors the Writer's rule: quote values with a comma, a quote
// or outer blanks.
func quoteField(v string) string {
	if v == "" {
		return v
	}
	if strings.ContainsAny(v, `,"`) || strings.ContainsAny(v[:1], " \t") || strings.ContainsAny(v[len(v)-1:], " \t") {
		return `"` + strings.ReplaceAll(v, `"`, `""`) + `"`
	}
	return v
}

// FuzzWriter: any Line the Writer accepts is read back by Check as written:
// one clean line whose fields hold the Line's values.
func FuzzWriter(f *testing.F) {
	f.Add("EPICHB-20260115-J0001", "HAR charges, cc 6010", "101.6010.40100", int64(125000), true)
	f.Add(` "x" `, "", "", int64(-1), false)
	f.Add("J\n", "caf\xe9", "a..b", int64(0), true)
	f.Fuzz(func(t *testing.T, journal, desc, segs string, amount int64, dr bool) {
		l := syntheticLines()[0]
		l.JournalName, l.LineDescription, l.Segments = journal, desc, strings.Split(segs, ".")
		l.HasDR, l.HasCR, l.EnteredDR, l.EnteredCR = dr, !dr, 0, 0
		if dr {
			l.EnteredDR = fbdi.Amount(amount)
		} else {
			l.EnteredCR = fbdi.Amount(amount)
		}
		var buf bytes.Buffer
		w, err := fbdi.NewWriter(&buf, fbdi.Options{CSVOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(l); err != nil {
			if buf.Len() != 0 {
				t.Fatal("refused line was written")
			}
			return
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !utf8.Valid(buf.Bytes()) || bytes.Count(buf.Bytes(), []byte{'\n'}) != 1 {
			t.Fatalf("output %q", buf.Bytes())
		}
		rep, err := fbdi.CheckCSV(context.Background(), bytes.NewReader(buf.Bytes()), fbdi.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// The single line is unbalanced by construction; nothing else may be wrong.
		for _, fd := range rep.Findings {
			if !errors.Is(fd, fbdi.ErrUnbalanced) {
				t.Fatalf("finding on Writer output %q: %v", buf.Bytes(), fd)
			}
		}
		rec, err := fbdi.NewReader(bytes.NewReader(buf.Bytes())).Read()
		if err != nil || rec[45] != journal || rec[51] != desc {
			t.Fatalf("read back %q: %v", rec, err)
		}
	})
}

// FuzzParseAmount: a parsed amount formats and parses back to itself.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"1250", "1250.5", "-3.20", "1e3", "0.001", "92233720368547758.07", "-", "00.10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := fbdi.ParseAmount(s)
		if err != nil {
			if !errors.Is(err, fbdi.ErrAmount) {
				t.Fatalf("error %v does not wrap ErrAmount", err)
			}
			return
		}
		b, err := fbdi.ParseAmount(a.String())
		if err != nil || b != a {
			t.Fatalf("%q → %v → %v, %v", s, a, b, err)
		}
	})
}

// addCorpusSeeds adds the conformance corpus's GlInterface sample when it
// is there: seeds only add breadth.
func addCorpusSeeds(f *testing.F) {
	for _, file := range corpus.Seeds(f, "fusion", "GlInterface*.csv") {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
}
