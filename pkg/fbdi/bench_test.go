package fbdi_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/fbdi"
)

// benchLines is a day's worth of realistic lines: 100-line journals, each
// balanced, cycling over 1,000 journals.
func benchLines() []*fbdi.Line {
	day := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	lines := make([]*fbdi.Line, 0, 100_000)
	for j := range 1000 {
		journal := fmt.Sprintf("EPICHB-20260115-J%04d", j)
		for i := range 100 {
			l := &fbdi.Line{
				LedgerID: "300000000000001", LedgerName: "Example Primary Ledger",
				AccountingDate: day, DateCreated: day,
				Source: "Epic Resolute HB", Category: "Revenue", Currency: "USD",
				Segments:  []string{"101", strconv.Itoa(6000 + i%50*10), strconv.Itoa(40000 + i%7*100), "300", "0000", "000"},
				BatchName: "EPICHB-20260115-B0001", BatchDescription: "Epic HB daily revenue 2026-01-15",
				JournalName: journal, JournalDescription: "HB charges by cost center",
				LineDescription: "HAR charges cc " + strconv.Itoa(6000+i%50*10) + " rev 0300",
				Reference21:     fmt.Sprintf("EPIC:HB:20260115:%04d:%d", j, i+1),
				GroupID:         fbdi.GroupID("resolute:batch-20260115:" + journal), Period: "Jan-26",
			}
			amount := fbdi.Amount(1000 + (j*100+i/2)%99991)
			if i%2 == 0 {
				l.EnteredDR, l.HasDR = amount, true
			} else {
				l.EnteredCR, l.HasCR = amount, true
			}
			lines = append(lines, l)
		}
	}
	return lines
}

func heapInuse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkWriter: one op is one line, so ns/op is ns per line and
// allocs/op allocations per line. Run it at the target size with
//
//	go test -run '^$' -bench Writer -benchtime 1000000x ./fbdi/
//
// MB/s counts CSV bytes before compression; zip-ratio is compressed/CSV;
// writer-heap-MiB is the heap the open writer holds after the last line
// (flat in the line count; it grows only with the number of journals).
func BenchmarkWriter(b *testing.B) {
	lines := benchLines()
	var one bytes.Buffer
	w, _ := fbdi.NewWriter(&one, fbdi.Options{CSVOnly: true})
	for _, l := range lines[:100] {
		_ = w.Write(l)
	}
	_ = w.Close()
	perLine := int64(one.Len() / 100)

	for _, bc := range []struct {
		name string
		o    fbdi.Options
	}{
		{"zip", fbdi.Options{}},
		{"zip-level6", fbdi.Options{Level: 6}},
		{"csv", fbdi.Options{CSVOnly: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			base := heapInuse()
			var out countWriter
			w, err := fbdi.NewWriter(&out, bc.o)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(perLine)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := w.Write(lines[i%len(lines)]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			held := heapInuse() - base // the open writer: buffers, compressor, totals
			b.StartTimer()
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(held)/(1<<20), "writer-heap-MiB")
			b.ReportMetric(float64(out.n)/float64(perLine*int64(b.N)), "zip-ratio")
		})
	}
}

// BenchmarkCheck: one op checks a 100,000-line file; ns/line is the cost
// per line.
func BenchmarkCheck(b *testing.B) {
	var csv bytes.Buffer
	w, _ := fbdi.NewWriter(&csv, fbdi.Options{CSVOnly: true})
	lines := benchLines()
	for _, l := range lines {
		if err := w.Write(l); err != nil {
			b.Fatal(err)
		}
	}
	_ = w.Close()
	data := csv.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := fbdi.CheckCSV(context.Background(), bytes.NewReader(data), fbdi.Options{})
		if err != nil || !rep.OK() {
			b.Fatalf("%v %v", err, rep.Err())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/line")
}
