package recon_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/fbdi"
	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/recon"
)

// bigBatch is a 1,000,000-line batch (1,000 journals of 1,000 lines, one
// GROUP_ID each, 500 accounts over 5 balancing segments) and Fusion's
// read-back of it: every line posted except one group held by an EF04,
// ten lines posted with another amount.
func bigBatch(tb testing.TB) (*recon.Input, []recon.SourceLine) {
	tb.Helper()
	const journals, perJournal = 1000, 1000
	src := make([]recon.SourceLine, 0, journals*perJournal)
	accounts := make([]string, 500)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("10%d-%04d-%05d-000", i%5, 6000+i%50, 40000+i)
	}
	for j := range journals {
		g := fbdi.GroupID("resolute-gl:B20260115:J" + strconv.Itoa(j))
		name := "J" + strconv.Itoa(j)
		for k := 0; k < perJournal; k += 2 {
			amt := money.Amount(100 + (j*perJournal+k)%99_999)
			acct := accounts[(j*7+k)%len(accounts)]
			// A debit and its credit on the same balancing segment.
			off := accounts[((j*7+k)%len(accounts)+5)%len(accounts)]
			for side := range 2 {
				l := recon.SourceLine{Reference21: "B20260115:" + strconv.Itoa(j*perJournal+k+side), GroupID: g, Batch: "B20260115",
					Journal: name, Ledger: "US Primary Ledger", Period: "Jan-26", Currency: "USD", Account: acct, DR: amt}
				if side == 1 {
					l.Account, l.DR, l.CR = off, 0, amt
				}
				src = append(src, l)
			}
		}
	}
	var all recon.ControlTotals
	for i := range src {
		all.Lines++
		all.DR += src[i].DR
		all.CR += src[i].CR
	}
	in := &recon.Input{Batch: "B20260115", Stated: all, Tolerance: recon.Tolerance{BasisPoints: 1},
		Hops: []recon.HopTotals{{Hop: recon.HopSource, ControlTotals: all}, {Hop: recon.HopSubmitted, ControlTotals: all}}}
	held := src[0].GroupID
	in.RejectedGroups = []int64{held}
	in.Rejected = []recon.RejectedLine{{GroupID: held, Reference21: src[3].Reference21, Code: "EF04", Text: "FLEX-VALUE DOES NOT EXIST"}}
	in.Posted = make([]recon.PostedLine, 0, len(src))
	for i := range src {
		l := &src[i]
		if l.GroupID == held {
			continue
		}
		p := recon.PostedLine{Reference21: l.Reference21, GroupID: l.GroupID, JeBatchID: 9000 + int64(i/perJournal),
			Account: l.Account, DR: l.DR, CR: l.CR, Ledger: l.Ledger, Period: l.Period, Currency: l.Currency}
		if i%100_000 == 50_007 {
			p.DR++
		}
		in.Posted = append(in.Posted, p)
	}
	return in, src
}

func check1M(b *testing.B, res *recon.Result) {
	s := res.Summary
	if s.Lines != 1_000_000 || s.Matched != 998_990 || s.Mismatched != 10 || s.Rejected != 1 || s.Held != 999 || s.Extra != 0 {
		b.Fatalf("summary %+v", s)
	}
}

// BenchmarkReconcile1M reconciles 1,000,000 source lines against
// 999,000 posted lines: "engine" from memory, "zip" reading the source
// lines from the GlInterface.zip as the reconciler service does.
func BenchmarkReconcile1M(b *testing.B) {
	in, src := bigBatch(b)
	b.Run("engine", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			check1M(b, recon.Reconcile(in, src))
		}
		reportPeakRSS(b)
	})
	b.Run("zip", func(b *testing.B) {
		zip := writeGlInterface(b, src, fbdi.Options{})
		b.ReportAllocs()
		for b.Loop() {
			rc := recon.NewReconciler(in)
			if err := recon.ReadGlInterface(bytes.NewReader(zip), int64(len(zip)), rc.Add); err != nil {
				b.Fatal(err)
			}
			check1M(b, rc.Result())
		}
		reportPeakRSS(b)
	})
}

// reportPeakRSS reports the process's peak resident set (VmHWM), inputs
// included, where /proc has it.
func reportPeakRSS(b *testing.B) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err == nil {
				b.ReportMetric(kb/1024, "peak-RSS-MB")
			}
		}
	}
}
