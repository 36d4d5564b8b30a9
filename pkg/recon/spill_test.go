package recon_test

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/recon"
)

// reconcile runs the engine with memory budget budget, the posted lines
// streamed through Post, and reports whether it spilled.
func reconcile(t *testing.T, in *recon.Input, src []recon.SourceLine, budget int64) (*recon.Result, bool) {
	t.Helper()
	c := *in
	c.Posted, c.MemoryBudget, c.TempDir = nil, budget, t.TempDir()
	rc := recon.NewReconciler(&c)
	defer rc.Close()
	for i := range in.Posted {
		if err := rc.Post(&in.Posted[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range src {
		if err := rc.Add(&src[i]); err != nil {
			t.Fatal(err)
		}
	}
	spilled := rc.Spilled()
	res, err := rc.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(c.TempDir, "*")); len(left) > 0 {
		t.Errorf("files left behind: %v", left)
	}
	return res, spilled
}

func rowsText(res *recon.Result) string {
	var b strings.Builder
	for _, r := range res.Publishable() {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// TestSpilledGolden: the golden scenarios give the same rows whether the
// line index fits in memory or is spilled to disk in runs of a few lines.
func TestSpilledGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			in, src := input(), source()
			if c.edit != nil {
				src = c.edit(in, src)
			}
			mem := rowsText(recon.Reconcile(in, src))
			res, spilled := reconcile(t, in, src, 1) // the smallest budget: runs of 2 lines
			if !spilled {
				t.Fatal("did not spill")
			}
			if got := rowsText(res); got != mem {
				t.Errorf("spilled:\n%s\nin memory:\n%s", got, mem)
			}
			want, err := os.ReadFile(filepath.Join("testdata", c.name+".golden"))
			if err != nil {
				t.Fatal(err)
			}
			if rowsText(res) != string(want) {
				t.Errorf("spilled rows differ from %s.golden", c.name)
			}
		})
	}
}

// TestSpilledOddBatch: a shuffled batch with every kind of finding
// (mismatches, missing lines, extras, lines posted twice, repeated source
// keys, a rejected group, groups not visible yet) reconciles the same in
// memory and spilled into hundreds of runs (merged 64 at a time).
func TestSpilledOddBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 2))
	const n = 20_000
	var src []recon.SourceLine
	in := &recon.Input{Batch: "B9", Tolerance: recon.Tolerance{BasisPoints: 1}}
	accounts := []string{"101-6010-11010", "101-6010-40100", "102-6020-99999", "103-7000-10000"}
	for i := range n {
		g := int64(1000 + i/500)
		l := recon.SourceLine{Reference21: fmt.Sprintf("B9:%d", rng.IntN(n)), GroupID: g, Batch: "B9", Journal: fmt.Sprint("J", g),
			Ledger: "L", Period: "Jan-26", Currency: "USD", Account: accounts[rng.IntN(len(accounts))], DR: money.Amount(rng.IntN(10_000))}
		src = append(src, l)
	}
	rng.Shuffle(len(src), func(i, j int) { src[i], src[j] = src[j], src[i] })
	for i := range src {
		l := &src[i]
		switch g := l.GroupID; {
		case g == 1003: // rejected
			if len(in.Rejected) == 0 {
				in.Rejected = append(in.Rejected, recon.RejectedLine{GroupID: g, Reference21: l.Reference21, Code: "EF04", Text: "bad"})
				in.RejectedGroups = []int64{g}
			}
			if rng.IntN(50) == 0 { // posted although held
				in.Posted = append(in.Posted, posted(l, 7))
			}
			continue
		case g >= 1035: // not visible yet
			continue
		}
		if rng.IntN(100) == 0 {
			continue // missing
		}
		p := posted(l, 5000+l.GroupID)
		if rng.IntN(100) == 0 {
			p.DR++
		}
		in.Posted = append(in.Posted, p)
		if rng.IntN(200) == 0 {
			p.JeBatchID = 9999 // posted twice
			in.Posted = append(in.Posted, p)
		}
	}
	for i := range 30 {
		in.Posted = append(in.Posted, recon.PostedLine{Reference21: fmt.Sprint("X:", i), GroupID: 1001, JeBatchID: 5001,
			Account: accounts[0], DR: 1, Ledger: "L", Period: "Jan-26", Currency: "USD"})
	}
	rng.Shuffle(len(in.Posted), func(i, j int) { in.Posted[i], in.Posted[j] = in.Posted[j], in.Posted[i] })
	// The SHA-256 of the rows the engine gave before its merge-join, when
	// it indexed posted lines in a map.
	before := map[bool]string{
		false: "ce1b1664fe3fd7562519eca682d12044b09b69e2de61a13a88535e82a36726cf",
		true:  "9d1d9825cfc1b7bb3311de58dd5f086a690dba7a868e27261d4d3ec3464ac244",
	}
	for _, final := range []bool{false, true} {
		in.Final = final
		mem, spilledMem := reconcile(t, in, src, 1<<30)
		if h := fmt.Sprintf("%x", sha256.Sum256([]byte(rowsText(mem)))); h != before[final] {
			t.Errorf("final %v: rows hash %s, want %s", final, h, before[final])
		}
		disk, spilled := reconcile(t, in, src, 16<<10)
		if spilledMem || !spilled {
			t.Fatalf("spilled: %v in memory, %v on disk", spilledMem, spilled)
		}
		if a, b := rowsText(mem), rowsText(disk); a != b {
			t.Errorf("final %v: %d bytes of rows in memory, %d spilled; they differ", final, len(a), len(b))
		}
		if s := mem.Summary; s.Mismatched == 0 || s.Missing == 0 || s.Extra == 0 || s.Held == 0 || s.Rejected == 0 || (!final && s.Pending == 0) {
			t.Errorf("final %v: the batch lacks a finding: %s", final, s.Explain())
		}
	}
}

func posted(l *recon.SourceLine, je int64) recon.PostedLine {
	return recon.PostedLine{Reference21: l.Reference21, GroupID: l.GroupID, JeBatchID: je,
		Account: l.Account, DR: l.DR, CR: l.CR, Ledger: l.Ledger, Period: l.Period, Currency: l.Currency}
}

// TestPostAfterAdd: a posted line after a source line is refused.
func TestPostAfterAdd(t *testing.T) {
	rc := recon.NewReconciler(input())
	defer rc.Close()
	if err := rc.Add(&source()[0]); err != nil {
		t.Fatal(err)
	}
	if err := rc.Post(&postedAll()[0]); err != recon.ErrPostAfterAdd {
		t.Errorf("Post after Add: %v", err)
	}
}
