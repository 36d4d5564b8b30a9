package fbdi_test

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/sinewhq/sinew/pkg/fbdi"
)

func TestReader(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want [][]string // nil entry: a *LineError for that record
	}{
		{"a,b,c\n", [][]string{{"a", "b", "c"}}},
		{"a,,\n", [][]string{{"a", "", ""}}},
		{"\n", [][]string{{""}}},
		{"a\r\nb\n", [][]string{{"a"}, {"b"}}},
		{"a\nb", [][]string{{"a"}, {"b"}}},
		{` a , b ` + "\t\n", [][]string{{"a", "b"}}},
		{`"a,b","c""d",""` + "\n", [][]string{{"a,b", `c"d`, ""}}},
		{` "  x  " ,y` + "\n", [][]string{{"  x  ", "y"}}},
		{`ab"c,d` + "\n", [][]string{{`ab"c`, "d"}}},
		{`"""",","` + "\n", [][]string{{`"`, ","}}},
		{"\"open\nnext\n", [][]string{nil, {"next"}}},
		{"\"a\"b,c\nok\n", [][]string{nil, {"ok"}}},
		{"a\rb\n", [][]string{{"a\rb"}}},
	} {
		for _, chunked := range []bool{false, true} {
			var src io.Reader = strings.NewReader(tc.in)
			if chunked {
				src = iotest.OneByteReader(src)
			}
			r := fbdi.NewReader(src)
			var got [][]string
			for {
				rec, err := r.Read()
				if err == io.EOF {
					break
				}
				var le *fbdi.LineError
				if err != nil && (!errors.As(err, &le) || !errors.Is(err, fbdi.ErrQuote) || le.Line != r.Line()) {
					t.Fatalf("%q: Read error %v", tc.in, err)
				}
				got = append(got, rec)
			}
			if !slices.EqualFunc(got, tc.want, func(a, b []string) bool { return slices.Equal(a, b) && (a == nil) == (b == nil) }) {
				t.Errorf("%q (one byte at a time: %v):\n got %q\nwant %q", tc.in, chunked, got, tc.want)
			}
		}
	}
}

func TestReaderLongLine(t *testing.T) {
	in := strings.Repeat("y", fbdi.MaxLineBytes+1) + "\nok\n" + strings.Repeat("z", fbdi.MaxLineBytes) + "\n"
	r := fbdi.NewReader(strings.NewReader(in))
	if _, err := r.Read(); !errors.Is(err, fbdi.ErrLineTooLong) || r.Line() != 1 {
		t.Fatalf("long line: %v at %d", err, r.Line())
	}
	if rec, err := r.Read(); err != nil || !slices.Equal(rec, []string{"ok"}) || r.Line() != 2 {
		t.Fatalf("after long line: %q %v", rec, err)
	}
	if rec, err := r.Read(); err != nil || len(rec[0]) != fbdi.MaxLineBytes {
		t.Fatalf("line of exactly MaxLineBytes: %v", err)
	}
	if _, err := r.Read(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}
