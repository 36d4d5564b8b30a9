package clarity_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/sinewhq/sinew/pkg/resolute"
	"github.com/sinewhq/sinew/pkg/resolute/clarity"
)

// extractRow is a Clarity extract row as a site might export it: a DATE
// posting date, a double debit and a DECIMAL(18,2) credit, both nullable.
type extractRow struct {
	BatchID     string   `parquet:"BATCH_ID"`
	BatchKind   string   `parquet:"batch_kind"`
	LineID      string   `parquet:"line_id"`
	PostingDate int32    `parquet:"posting_date,date"` // days since 1970-01-01
	ServiceArea string   `parquet:"service_area"`
	CostCenter  string   `parquet:"cost_center"`
	GLAccount   string   `parquet:"gl_account"`
	FinClass    string   `parquet:"fin_class"`
	Payor       string   `parquet:"payor"`
	TxType      string   `parquet:"tx_type"`
	Debit       *float64 `parquet:"debit,optional"`
	Credit      *int64   `parquet:"credit,optional,decimal(2:18)"`
	TxCount     int32    `parquet:"tx_count"`
	Description string   `parquet:"description"`
}

func writeParquet(t *testing.T, rows []extractRow) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "extract.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[extractRow](f)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func convert(t *testing.T, path, format string, c resolute.Clarity) (*resolute.Conversion, *resolute.Report, string) {
	t.Helper()
	src, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var pipe bytes.Buffer
	conv, err := clarity.Convert(&pipe, src, format, c, resolute.DefaultLayout())
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

func rows(n int, amount func(i int) (dr *float64, cr *int64)) []extractRow {
	day := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	var out []extractRow
	for i := range n {
		dr, cr := amount(i)
		out = append(out, extractRow{BatchID: "HB-PQ-1", BatchKind: "HB", LineID: "L" + string(rune('A'+i)), PostingDate: int32(day.Unix() / 86400),
			ServiceArea: "10", CostCenter: "6010", GLAccount: "40100", FinClass: "COM", Payor: "BCBS", TxType: "CHG",
			Debit: dr, Credit: cr, TxCount: 1, Description: "row"})
	}
	return out
}

func TestParquetExtractConverts(t *testing.T) {
	// Row 1 debits 12.34 (a double), rows 2 and 3 credit 10.00 and 2.34 (decimals).
	dr, c1, c2 := 12.34, int64(1000), int64(234)
	p := writeParquet(t, rows(3, func(i int) (*float64, *int64) {
		switch i {
		case 0:
			return &dr, nil
		case 1:
			return nil, &c1
		}
		return nil, &c2
	}))
	c := resolute.Clarity{Columns: resolute.ClarityColumns{BatchID: "batch_id"}} // matched case-insensitively
	conv, rep, pipe := convert(t, p, resolute.FormatClarityParquet, c)
	if !conv.OK() || !rep.OK() || rep.Lines != 3 || rep.Debit != 1234 || rep.Credit != 1234 {
		t.Fatalf("%+v %+v\n%s", conv.Findings, rep.Findings, pipe)
	}
	if !strings.Contains(pipe, "D|LA|2026-01-15|10|6010|40100|COM|BCBS|CHG|12.34||1|row\n") || !strings.Contains(pipe, "|CHG||2.34|1|row\n") {
		t.Errorf("pipe:\n%s", pipe)
	}
}

func TestParquetBadRowNamesRow(t *testing.T) {
	bad, ok := 1.005, int64(100)
	p := writeParquet(t, rows(3, func(i int) (*float64, *int64) {
		if i == 2 {
			return &bad, nil
		}
		return nil, &ok
	}))
	conv, rep, _ := convert(t, p, resolute.FormatClarityParquet, resolute.Clarity{})
	var all []string
	for _, f := range append(conv.Findings, rep.Findings...) {
		all = append(all, f.String())
	}
	if !strings.Contains(strings.Join(all, "\n"), "row 3: debit: \"1.005\" is not an amount") {
		t.Errorf("findings:\n%s", strings.Join(all, "\n"))
	}
	// Not Parquet at all: fatal, named.
	junk := filepath.Join(t.TempDir(), "junk.parquet")
	os.WriteFile(junk, []byte("not parquet"), 0o644)
	conv, _, _ = convert(t, junk, resolute.FormatClarityParquet, resolute.Clarity{})
	if !conv.Fatal || !strings.Contains(conv.Findings[0].String(), "batch: not a clarity-parquet extract") {
		t.Errorf("%+v", conv)
	}
}
