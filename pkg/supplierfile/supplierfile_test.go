package supplierfile

import (
	"errors"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/mfn"
)

var update = flag.Bool("update", false, "rewrite golden files")

func sample() (Header, []mfn.Supplier) {
	h := Header{ControlID: "SNW0001", Created: time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC), Sender: "SINEW", Facility: "STMARYS"}
	return h, []mfn.Supplier{
		{Number: "7700", Name: "Northwind Surgical", Active: true, Sites: []mfn.SupplierSite{
			{Site: "NW-HQ", ProcurementBU: "Main Hospital BU", Address: "1 Harbor Way", City: "Portland", PostalCode: "97201", Country: "US"},
			{Site: "NW-EAST", ProcurementBU: "Main Hospital BU", Address: "2 Dock St", City: "Salem", PostalCode: "97301", Country: "US"}}},
		{Number: "7701", Name: `Smith | Sons \ Co`, Active: false},
	}
}

// TestBuildGoldenAndParseBack: the layout is the golden file, and Parse
// reads back exactly what Build wrote (escaped delimiter and backslash too).
func TestBuildGoldenAndParseBack(t *testing.T) {
	h, sups := sample()
	got, err := Build(h, '|', sups...)
	if err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/two_suppliers.txt"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("Build:\n%s\nwant:\n%s", got, want)
	}
	f, err := Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if f.Header != h || f.Delimiter != '|' || !reflect.DeepEqual(f.Suppliers, sups) {
		t.Fatalf("parsed %+v", f)
	}
	// Another site's delimiter, and CRLF line ends.
	semi, err := Build(h, ';', sups...)
	if err != nil {
		t.Fatal(err)
	}
	f, err = Parse([]byte(strings.ReplaceAll(string(semi), "\n", "\r\n")))
	if err != nil || f.Delimiter != ';' || !reflect.DeepEqual(f.Suppliers, sups) {
		t.Fatalf("; file: %+v %v", f, err)
	}
}

// TestParseRefusesBadFilesNamingLineAndField: every refusal is an *Error
// placing it, and its text holds no value from the file.
func TestParseRefusesBadFilesNamingLineAndField(t *testing.T) {
	head := "H|SUPREF|1|C1|20260302093000|SINEW|STMARYS\n"
	cases := []struct {
		name, file  string
		line, field int
	}{
		{"no header", "S|1|Acme|A\nZ|1|2\n", 1, 0},
		{"letter delimiter", "HxSUPREFx1\n", 1, 1},
		{"other kind", "H|ITEMS|1|C1|20260302093000|SINEW|STMARYS\nZ|0|2\n", 1, 1},
		{"bad created", "H|SUPREF|1|C1|yesterday|SINEW|STMARYS\nZ|0|2\n", 1, 4},
		{"no control id", "H|SUPREF|1||20260302093000|SINEW|STMARYS\nZ|0|2\n", 1, 3},
		{"status", head + "S|7700|Northwind|X\nZ|1|3\n", 2, 3},
		{"no number", head + "S||Northwind|A\nZ|1|3\n", 2, 1},
		{"short supplier", head + "S|7700|Northwind\nZ|1|3\n", 2, 3},
		{"site first", head + "T|NW|BU|1 Way|Portland|97201|US\nZ|0|3\n", 2, 0},
		{"site without code", head + "S|7700|Northwind|A\nT||BU|1 Way|Portland|97201|US\nZ|1|4\n", 3, 1},
		{"bad escape", head + "S|7700|North\\Xwind|A\nZ|1|3\n", 2, 2},
		{"count", head + "S|7700|Northwind|A\nZ|2|3\n", 3, 1},
		{"lines", head + "S|7700|Northwind|A\nZ|1|9\n", 3, 2},
		{"no trailer", head + "S|7700|Northwind|A\n", 2, 0},
		{"after trailer", head + "Z|0|3\nS|7700|Northwind|A\n", 3, 0},
		{"cut mid-line", head + "S|7700|North", 2, 0},
		{"unknown record", head + "Q|1\nZ|0|3\n", 2, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.file))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse: %v, want an *Error", err)
			}
			if e.Line != c.line || e.Field != c.field {
				t.Fatalf("refused at line %d field %d (%s), want line %d field %d", e.Line, e.Field, e.Why, c.line, c.field)
			}
			if strings.Contains(e.Error(), "Northwind") {
				t.Fatalf("error carries a value: %v", e)
			}
		})
	}
}

func TestResultRoundTrip(t *testing.T) {
	for _, r := range []Result{
		{ControlID: "SNW1", Code: CodeAccepted},
		{ControlID: "SNW2", Code: CodeRejected, Line: 3, Field: 1, Text: "site code required | see spec"},
	} {
		got, err := ParseResult(BuildResult(r, '|'))
		if err != nil || got != r {
			t.Fatalf("%+v: %+v %v", r, got, err)
		}
	}
	if _, err := ParseResult([]byte("A|SNW1|OK|0|0|\n")); err == nil {
		t.Fatal("code OK accepted")
	}
	if got := ResultName(Name("SNW1")); got != "SUPSNW1.ack" {
		t.Fatalf("result name %s", got)
	}
}

// FuzzParse: Parse never panics, and what it accepts builds back into a
// file it reads the same.
func FuzzParse(f *testing.F) {
	h, sups := sample()
	good, _ := Build(h, '|', sups...)
	f.Add(good)
	f.Add([]byte("H;SUPREF;1;C;20260302093000;S;F\nZ;0;2\n"))
	f.Add([]byte("A|SNW1|AA|0|0|\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseResult(data)
		p, err := Parse(data)
		if err != nil {
			return
		}
		again, err := Build(p.Header, p.Delimiter, p.Suppliers...)
		if err != nil {
			return // e.g. an empty supplier name Parse refuses too
		}
		q, err := Parse(again)
		if err != nil || !reflect.DeepEqual(q.Suppliers, p.Suppliers) {
			t.Fatalf("rebuilt file reads differently: %v", err)
		}
	})
}
