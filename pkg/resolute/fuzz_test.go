package resolute_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/resolute"
)

// Fuzz targets for the Resolute journal file and the Clarity CSV extract:
// outside bytes from Epic's drop folder or SFTP share. Neither may panic;
// a file that reads OK keeps its totals balanced as the trailer says.

func resoluteSeeds(f *testing.F) [][]byte {
	b, err := os.ReadFile("testdata/hb_20260115.txt")
	if err != nil {
		f.Fatal(err)
	}
	var gen bytes.Buffer
	if _, _, err := resolute.Generate(&gen, resolute.GenerateOptions{BatchID: "HB-FZ-1", Kind: "HB",
		PostingDate: time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), Journals: 2, LinesPerJournal: 3,
		ServiceAreas: []string{"10"}, CostCenters: []string{"6010"}, RevenueAccounts: []string{"40100"}, ARAccount: "11010", Seed: 1}); err != nil {
		f.Fatal(err)
	}
	return [][]byte{b, gen.Bytes(), []byte("H|X|2026-01-15|HB|2026-01-15\nT|0|0|0\n"), []byte("\ufeffH||||\r\nD|||||||||99999999999999999999.99|\r\n")}
}

func FuzzRead(f *testing.F) {
	for _, s := range resoluteSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var lines int64
		rep, err := resolute.DefaultLayout().Read(bytes.NewReader(b), func(*resolute.Line) error { lines++; return nil })
		if err != nil {
			return
		}
		if rep.OK() && rep.Debit != rep.Credit {
			t.Fatalf("OK file with debit %v credit %v", rep.Debit, rep.Credit)
		}
		_ = lines
	})
}

func FuzzReadClarityCSV(f *testing.F) {
	for _, s := range resoluteSeeds(f) {
		var csv bytes.Buffer
		if err := resolute.WriteClarityCSV(&csv, bytes.NewReader(s), resolute.Clarity{}, resolute.DefaultLayout()); err == nil {
			f.Add(csv.Bytes())
		}
	}
	f.Add([]byte(clarityHeader + "\"a\nb\",HB,L1,2026-01-15,10,6010,40100,COM,BCBS,CHG,1e999,,1,x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := resolute.ReadClarityCSV(bytes.NewReader(b), resolute.Clarity{})
		if err != nil {
			return
		}
		var pipe bytes.Buffer
		conv, err := resolute.ConvertClarity(&pipe, rows, resolute.Clarity{}, resolute.DefaultLayout())
		if err != nil {
			return
		}
		rep, err := resolute.DefaultLayout().Read(bytes.NewReader(pipe.Bytes()), nil)
		if err != nil {
			return
		}
		conv.Locate(rep.Findings)
		if strings.Count(pipe.String(), "\n") > 0 && rep.Lines < 0 {
			t.Fatal("negative line count")
		}
	})
}
