package resolute_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/resolute"
)

func convertCSV(t *testing.T, csv string, c resolute.Clarity) (*resolute.Conversion, *resolute.Report, string) {
	t.Helper()
	rows, err := resolute.ReadClarityCSV(strings.NewReader(csv), c)
	if err != nil {
		t.Fatal(err)
	}
	var pipe bytes.Buffer
	conv, err := resolute.ConvertClarity(&pipe, rows, c, resolute.DefaultLayout())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := resolute.DefaultLayout().Read(bytes.NewReader(pipe.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	conv.Locate(rep.Findings)
	return conv, rep, pipe.String()
}

// A generated Resolute file written as a Clarity extract converts back to
// a valid file with the same lines and totals, header and trailer computed.
func TestClarityCSVRoundTrip(t *testing.T) {
	var src bytes.Buffer
	lines, total, err := resolute.Generate(&src, resolute.GenerateOptions{BatchID: "HB-CL-1", Kind: "HB",
		PostingDate: time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), Journals: 3, LinesPerJournal: 7,
		ServiceAreas: []string{"10", "20"}, CostCenters: []string{"6010"}, RevenueAccounts: []string{"40100"}, ARAccount: "11010", Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Site column names, upper case, semicolon-separated.
	c := resolute.Clarity{Comma: ";", Columns: resolute.ClarityColumns{BatchID: "JRNL_BATCH", GLAccount: "GL_ACCT", Debit: "DR_AMT", Credit: "CR_AMT"}}
	var csv bytes.Buffer
	if err := resolute.WriteClarityCSV(&csv, &src, c, resolute.DefaultLayout()); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(csv.String(), "JRNL_BATCH;batch_kind;line_id;posting_date;service_area;cost_center;GL_ACCT;") {
		t.Fatalf("header %q", strings.SplitN(csv.String(), "\n", 2)[0])
	}
	conv, rep, pipe := convertCSV(t, csv.String(), c)
	if !conv.OK() || !rep.OK() || rep.Lines != lines || rep.Debit != total || rep.Header.BatchID != "HB-CL-1" || rep.Header.Kind != "HB" {
		t.Fatalf("conv %+v report %+v\n%s", conv.Findings, rep, pipe)
	}
	if !strings.HasPrefix(pipe, "H|HB-CL-1|2026-01-15|HB|2026-01-15\n") || !strings.HasSuffix(pipe, "T|21|"+total.String()+"|"+total.String()+"\n") {
		t.Errorf("control records:\n%s", pipe)
	}
}

const clarityHeader = "batch_id,batch_kind,line_id,posting_date,service_area,cost_center,gl_account,fin_class,payor,tx_type,debit,credit,tx_count,description\n"

// Findings name the extract's CSV line, also after a quoted multi-line value.
func TestClarityCSVFindingsNameCSVLine(t *testing.T) {
	csv := clarityHeader +
		"HB-X,HB,L1,2026-01-15,10,6010,40100,COM,BCBS,CHG,,5.00,1,\"two\nlines\"\n" + // lines 2-3
		"HB-X,HB,L2,2026-01-15,10,6010,11010,COM,BCBS,CHG,5.001,,1,bad amount\n" + // line 4
		"HB-X,HB,L3,2026-01-15,10,6010,11010,COM,BCBS,CHG,1.00,,1\n" + // line 5: short row
		"HB-Y,HB,L4,2026-01-15,10,6010,11010,COM,BCBS,CHG,1.00,,1,other batch\n" + // line 6
		"HB-X,HB,L5,15/01/2026,10,6010,11010,COM,BCBS,CHG,1.00,,1,bad date\n" // line 7
	conv, rep, _ := convertCSV(t, csv, resolute.Clarity{})
	var got []string
	for _, f := range append(conv.Findings, rep.Findings...) {
		got = append(got, f.String())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"line 4: debit: \"5.001\" is not an amount",
		"line 5: row has 13 columns, the header 14",
		"line 6: batch_id: \"HB-Y\" differs",
		"line 7: posting_date: \"15/01/2026\" is not a date",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in\n%s", want, all)
		}
	}
	// An unbalanced journal names its first row.
	csv = clarityHeader + "HB-Z,HB,L1,2026-01-15,10,6010,40100,COM,BCBS,CHG,,5.00,1,x\n\n" +
		"HB-Z,HB,L2,2026-01-15,10,6010,11010,COM,BCBS,CHG,4.00,,1,y\n"
	conv, rep, _ = convertCSV(t, csv, resolute.Clarity{})
	got = got[:0]
	for _, f := range rep.Findings {
		got = append(got, f.String())
	}
	all = strings.Join(got, "\n")
	if !conv.OK() || !strings.Contains(all, "line 2: journal 2026-01-15|10 is unbalanced") || !strings.Contains(all, "batch: batch is unbalanced") {
		t.Errorf("findings:\n%s", all)
	}
	// A missing column is fatal and named.
	rows, _ := resolute.ReadClarityCSV(strings.NewReader("batch_id,line_id\nA,1\n"), resolute.Clarity{})
	conv, err := resolute.ConvertClarity(&bytes.Buffer{}, rows, resolute.Clarity{}, resolute.DefaultLayout())
	if err != nil || !conv.Fatal || !strings.Contains(conv.Findings[0].String(), "line 1: batch_kind: column \"batch_kind\" is missing") {
		t.Errorf("%v %+v", err, conv)
	}
}

func TestFormatOf(t *testing.T) {
	for name, want := range map[string]string{"a.csv": resolute.FormatClarityCSV, "B.PARQUET": resolute.FormatClarityParquet,
		"hb.txt": resolute.FormatResolute, "hb": resolute.FormatResolute} {
		if got := resolute.FormatOf(name); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}
