package resolute_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/resolute"
)

func TestValidFile(t *testing.T) {
	f, err := os.Open("testdata/hb_20260115.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []string
	rep, err := resolute.DefaultLayout().Read(f, func(l *resolute.Line) error {
		ids = append(ids, string(l.LineID))
		return nil
	})
	if err != nil || !rep.OK() {
		t.Fatalf("%v %v", err, rep.Findings)
	}
	if rep.Header.BatchID != "HB-20260115-001" || rep.Header.Kind != "HB" || rep.Lines != 5 ||
		rep.Debit != 210049 || rep.Credit != 210049 || len(rep.Journals) != 2 || len(ids) != 5 {
		t.Errorf("report %+v ids %v", rep, ids)
	}
	if j := rep.Journals[0]; j.Key != "2026-01-15|10" || j.Debit != 200050 || j.Lines != 3 {
		t.Errorf("journal %+v", j)
	}
}

// mutate applies a change to the valid file and expects findings.
func TestFindingsNameLineAndField(t *testing.T) {
	valid, err := os.ReadFile("testdata/hb_20260115.txt")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, from, to string
		want           []string
	}{
		{"three decimals", "|1250.00|", "|1250.001|", []string{"line 2: credit: \"1250.001\" is not an amount"}},
		{"both sides", "|2000.50||5|", "|2000.50|1.00|5|", []string{"line 4: credit: both debit and credit"}},
		{"neither side", "||99.99|1|Clinic", "|||1|Clinic", []string{"line 5: debit: neither debit nor credit"}},
		{"unbalanced journal and batch", "|2000.50||5|", "|2000.49||5|", []string{
			"journal 2026-01-15|10 is unbalanced: debits 2000.49, credits 2000.50", "batch is unbalanced"}},
		{"trailer count", "T|5|", "T|6|", []string{"line 7: record_count: trailer says 6 detail records, the file has 5"}},
		{"trailer total", "T|5|2100.49|2100.49", "T|5|2100.48|2100.49", []string{"total_debit: trailer says 2100.48, the lines sum to 2100.49"}},
		{"duplicate id", "D|L0002|", "D|L0001|", []string{"line 3: line_id: \"L0001\" repeats line 2"}},
		{"field count", "|Radiology charges", "|Radiology|charges", []string{"line 3: detail has 14 fields, want 13"}},
		{"bad date", "D|L0004|2026-01-15|", "D|L0004|2026-13-15|", []string{"line 5: posting_date: \"2026-13-15\" is not a date"}},
		{"empty account", "|6020|40100|", "|6020||", []string{"line 5: gl_account: empty"}},
		{"unknown record", "T|5|", "X|1\nT|5|", []string{"line 7: record_type: unknown record type \"X\""}},
		{"no trailer", "T|5|2100.49|2100.49\n", "", []string{"line 7: no trailer record"}},
		{"record after trailer", "T|5|2100.49|2100.49\n", "T|5|2100.49|2100.49\nD|L9|2026-01-15|10|1|2|3|4|5|1.00||1|x\n", []string{"line 8: record after the trailer"}},
		{"bad kind", "|HB|2026-01-15", "|XB|2026-01-15", []string{"line 1: kind: \"XB\" is neither HB nor PB"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(string(valid), tc.from, tc.to, 1)
			if in == string(valid) {
				t.Fatal("mutation did not apply")
			}
			rep, err := resolute.DefaultLayout().Read(strings.NewReader(in), nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatal("accepted")
			}
			var got []string
			for _, f := range rep.Findings {
				got = append(got, f.String())
			}
			all := strings.Join(got, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("findings lack %q:\n%s", w, all)
				}
			}
		})
	}
}

func TestGenerateIsValidAndBalanced(t *testing.T) {
	var buf bytes.Buffer
	lines, total, err := resolute.Generate(&buf, resolute.GenerateOptions{
		BatchID: "HB-X", Kind: "HB", PostingDate: time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC),
		Journals: 20, LinesPerJournal: 50, ServiceAreas: []string{"10", "20"},
		CostCenters: []string{"6010", "6020"}, RevenueAccounts: []string{"40100", "40200"}, ARAccount: "11010", Seed: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := resolute.DefaultLayout().Read(&buf, nil)
	if err != nil || !rep.OK() || rep.Lines != lines || rep.Debit != total || len(rep.Journals) != 2 {
		t.Fatalf("%v %v lines %d/%d total %s/%s journals %d", err, rep.Findings, rep.Lines, lines, rep.Debit, total, len(rep.Journals))
	}
}

func TestFindingsAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("H|B|2026-01-16T02:00:00Z|HB|2026-01-15\n")
	for range 5000 {
		b.WriteString("D|x|bad\n")
	}
	rep, err := resolute.Layout{MaxFindings: 10}.Read(strings.NewReader(b.String()), nil)
	if err != nil || len(rep.Findings) != 10 || rep.FindingsDropped == 0 {
		t.Errorf("%v %d findings, %d dropped", err, len(rep.Findings), rep.FindingsDropped)
	}
}

func BenchmarkRead(b *testing.B) {
	var buf bytes.Buffer
	if _, _, err := resolute.Generate(&buf, resolute.GenerateOptions{
		BatchID: "HB-BENCH", Kind: "HB", PostingDate: time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC),
		Journals: 100, LinesPerJournal: 1000, ServiceAreas: []string{"10", "20", "30"},
		CostCenters: []string{"6010", "6020", "6030", "6040"}, RevenueAccounts: []string{"40100", "40200", "40300"}, ARAccount: "11010", Seed: 1,
	}); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rep, err := resolute.DefaultLayout().Read(bytes.NewReader(data), func(*resolute.Line) error { return nil })
		if err != nil || !rep.OK() {
			b.Fatal(err, rep.Findings)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100000, "ns/line")
}
