package resolutegl_test

import (
	"archive/zip"
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/fbdi"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/resolute"
	resolutegl "github.com/sinewhq/sinew/services/transform/flows/resolute-gl"
)

var update = flag.Bool("update", false, "rewrite golden files")

func options(t testing.TB) resolutegl.Options {
	t.Helper()
	f, err := os.Open("../../../../deploy/demo/coa.csv") // the demo crosswalk make run uses
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	xw, err := crosswalk.Parse(f, "demo-v1")
	if err != nil {
		t.Fatal(err)
	}
	demoChart, err := os.ReadFile("../../../../deploy/demo/chart.csv")
	if err != nil {
		t.Fatal(err)
	}
	// The demo chart without 101.6010.40200: the wildcard rule maps fin
	// class XXX there, so the chart catches it.
	chart, err := crosswalk.ParseChart(strings.NewReader(strings.Replace(string(demoChart), "101,6010,40200,300,000\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	return resolutegl.Options{
		Chart:     chart,
		Layout:    resolute.DefaultLayout(),
		GL:        flows.GL{Ledger: "US Primary Ledger", Source: "Epic Resolute", Category: "Revenue", Currency: "USD"},
		Crosswalk: xw,
		Created:   time.Date(2026, 1, 16, 0, 0, 0, 0, time.UTC),
	}
}

func unzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != "GlInterface.csv" {
		t.Fatalf("zip holds %d files", len(zr.File))
	}
	rc, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	csv, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return csv
}

func TestGoldenBatch(t *testing.T) {
	src, err := os.ReadFile("testdata/hb_20260115.txt")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := resolutegl.Build(context.Background(), bytes.NewReader(src), &out, options(t))
	if err != nil || !res.Accepted {
		t.Fatalf("%v %v", err, res.AllFindings())
	}
	if res.Lines != 5 || res.Debit != 210049 || res.Credit != 210049 || len(res.Groups) != 2 || res.CrosswalkVersion != "demo-v1" {
		t.Errorf("result %+v", res)
	}
	if res.Groups[0].ID != fbdi.GroupID(resolutegl.GroupKey("HB-20260115-001", "2026-01-15|10")) {
		t.Errorf("GROUP_ID %d is not derived from the journal key", res.Groups[0].ID)
	}
	csv := unzip(t, out.Bytes())
	rep, err := fbdi.Check(context.Background(), bytes.NewReader(out.Bytes()), int64(out.Len()), fbdi.Options{})
	if err != nil || !rep.OK() {
		t.Errorf("fbdi check: %v %+v", err, rep)
	}
	const golden = "testdata/GlInterface.golden.csv"
	if *update {
		if err := os.WriteFile(golden, csv, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(csv, want) {
		t.Errorf("GlInterface.csv differs from %s:\n%s", golden, csv)
	}
	// Deterministic: the same batch gives the same bytes.
	var again bytes.Buffer
	if _, err := resolutegl.Build(context.Background(), bytes.NewReader(src), &again, options(t)); err != nil || !bytes.Equal(unzip(t, again.Bytes()), csv) {
		t.Error("a second build differs")
	}
}

func TestRejectedBatchesWriteNothing(t *testing.T) {
	src, err := os.ReadFile("testdata/hb_20260115.txt")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, from, to, want string }{
		{"unmapped account", "|6020|40100|", "|6020|49999|", "line 5: gl_account: no crosswalk mapping for service area 20, cost center 6020, account 49999"},
		{"invalid combination", "|10|6010|40200|MCR|", "|10|6010|40200|XXX|", "is not a valid combination"},
		{"unbalanced file", "|2000.50||5|", "|2000.00||5|", "journal 2026-01-15|10 is unbalanced"},
		{"bad amount", "|1250.00|", "|12.5.0|", "line 2: credit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(string(src), tc.from, tc.to, 1)
			var out bytes.Buffer
			res, err := resolutegl.Build(context.Background(), strings.NewReader(in), &out, options(t))
			if err != nil {
				t.Fatal(err)
			}
			if res.Accepted || out.Len() != 0 {
				t.Fatalf("accepted=%v, %d bytes written", res.Accepted, out.Len())
			}
			var all []string
			for _, f := range res.AllFindings() {
				all = append(all, f.String())
			}
			if !strings.Contains(strings.Join(all, "\n"), tc.want) {
				t.Errorf("findings lack %q:\n%s", tc.want, strings.Join(all, "\n"))
			}
		})
	}
}

// BenchmarkBuild1M is 1,000,000 journal lines validated, mapped and
// written as GlInterface.zip; ns/op is for the whole file.
func BenchmarkBuild1M(b *testing.B) {
	f, err := os.CreateTemp(b.TempDir(), "resolute-*.txt")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, _, err := resolute.Generate(f, resolute.GenerateOptions{
		BatchID: "HB-20260115-BIG", Kind: "HB", PostingDate: time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC),
		Journals: 1000, LinesPerJournal: 1000, ServiceAreas: []string{"10"},
		CostCenters: []string{"6010"}, RevenueAccounts: []string{"40100", "40200"}, ARAccount: "11010", Seed: 1,
	}); err != nil {
		b.Fatal(err)
	}
	o := options(b)
	// The full demo chart (options leaves one combination out for a test).
	if o.Chart, err = crosswalk.ReadChart("../../../../deploy/demo/chart.csv"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			b.Fatal(err)
		}
		res, err := resolutegl.Build(context.Background(), f, io.Discard, o)
		if err != nil || !res.Accepted || res.Lines != 1000000 {
			b.Fatalf("%v accepted=%v lines=%d %v", err, res.Accepted, res.Lines, res.AllFindings())
		}
	}
}
