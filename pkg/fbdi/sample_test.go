package fbdi_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/fbdi"
)

// samplePath is the in-repo GlInterface.csv the Check and Writer tests
// read: synthetic (ledger, accounts, names and amounts invented here), in
// the shape of the conformance corpus's GlInterface.synthetic.csv, which
// a clone lacks. Rows: journal J0001 balanced (842.17), journal J0002 a
// 10.00 DR on the invalid natural account 99999 (Fusion's EF04) and its
// offset; one GROUP_ID. Rewritten by go test -run TestWriterSample -update.
var samplePath = filepath.Join("testdata", "synthetic", "GlInterface.csv")

func sample(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sampleLines re-expresses the four rows of the in-repo sample.
func sampleLines() []*fbdi.Line {
	day := time.Date(2026, 2, 12, 0, 0, 0, 0, time.UTC)
	mk := func(seg string, dr bool, amount fbdi.Amount, journal, desc, ref21 string) *fbdi.Line {
		l := &fbdi.Line{
			LedgerID: "300000000000042", LedgerName: "Sinew Synthetic Ledger",
			AccountingDate: day, DateCreated: day,
			Source: "Epic Resolute HB", Category: "Revenue", Currency: "USD",
			Segments:  strings.Split(seg, "."),
			BatchName: "SYNHB-20260212-B0042", BatchDescription: "Synthetic HB revenue 2026-02-12",
			JournalName: journal, JournalDescription: "Synthetic charges by cost center",
			LineDescription: desc, Reference21: ref21,
			GroupID: 700042, Period: "Feb-26",
		}
		if dr {
			l.EnteredDR, l.HasDR = amount, true
		} else {
			l.EnteredCR, l.HasCR = amount, true
		}
		return l
	}
	return []*fbdi.Line{
		mk("201.1100.11010.000.0000.000", true, 84217, "SYNHB-20260212-J0001",
			"Synthetic charges cc 6110", "SYN:HB:20260212:0001:1"),
		mk("201.6110.40100.310.0000.000", false, 84217, "SYNHB-20260212-J0001",
			"Synthetic revenue cc 6110", "SYN:HB:20260212:0001:2"),
		mk("201.6120.99999.310.0000.000", true, 1000, "SYNHB-20260212-J0002",
			"Invalid natural account 99999", "SYN:HB:20260212:0002:1"),
		mk("201.1100.11010.000.0000.000", false, 1000, "SYNHB-20260212-J0002",
			"Offset", "SYN:HB:20260212:0002:2"),
	}
}

// TestWriterSample: the sample's rows, re-expressed as Lines, come out
// byte for byte as the sample (149 fields, LF, no END), bare and zipped.
func TestWriterSample(t *testing.T) {
	got, tot := write(t, fbdi.Options{CSVOnly: true}, sampleLines())
	if *update {
		if err := os.WriteFile(samplePath, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := sample(t)
	if !bytes.Equal(got, want) {
		t.Fatalf("CSV differs from %s:\n got %q\nwant %q", samplePath, got, want)
	}
	z, _ := write(t, fbdi.Options{}, sampleLines())
	if got := unzip(t, z, "GlInterface.csv"); !bytes.Equal(got, want) {
		t.Fatalf("zipped CSV differs from the sample")
	}
	if n := bytes.Count(want, []byte("\n")); n != 4 || bytes.Count(want, []byte(",")) != 4*(fbdi.NumColumns-1) {
		t.Errorf("%d lines, %d commas", n, bytes.Count(want, []byte(",")))
	}
	if tot.Lines != 4 || tot.DR != 85217 || tot.CR != 85217 || !tot.Balanced() {
		t.Errorf("totals %+v", tot)
	}
	wantGroups := []fbdi.GroupTotals{{GroupID: 700042, Currency: "USD", Lines: 4, DR: 85217, CR: 85217}}
	if !equalSlices(tot.Groups, wantGroups) {
		t.Errorf("groups %+v, want %+v", tot.Groups, wantGroups)
	}
	wantJournals := []fbdi.JournalTotals{
		{GroupID: 700042, Currency: "USD", Journal: "SYNHB-20260212-J0001", Lines: 2, DR: 84217, CR: 84217},
		{GroupID: 700042, Currency: "USD", Journal: "SYNHB-20260212-J0002", Lines: 2, DR: 1000, CR: 1000},
	}
	if !equalSlices(tot.Journals, wantJournals) {
		t.Errorf("journals %+v, want %+v", tot.Journals, wantJournals)
	}
}

// TestCheckCorpusSample: the conformance corpus's GlInterface sample is
// clean and balanced; TestCheckSynthetic checks the in-repo sample.
func TestCheckCorpusSample(t *testing.T) {
	b := corpusFile(t, "GlInterface.synthetic.csv")
	rep, err := fbdi.Check(context.Background(), bytes.NewReader(b), int64(len(b)), fbdi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tot := rep.Totals
	if !rep.OK() || rep.Lines != 4 || tot.DR != 126000 || tot.CR != 126000 || len(tot.Groups) != 1 || len(tot.Journals) != 2 {
		t.Fatalf("report %+v", rep)
	}
	if j := tot.Journals[1]; j.Journal != "EPICHB-20260115-J0002" || j.DR != 1000 || j.CR != 1000 {
		t.Fatalf("J0002 %+v", j)
	}
}
