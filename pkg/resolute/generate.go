package resolute

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/sinewhq/sinew/pkg/money"
)

// GenerateOptions shape a synthetic Resolute file (epicsim, tests, benchmarks).
type GenerateOptions struct {
	BatchID     string
	Kind        string // HB or PB
	PostingDate time.Time
	// Journals and LinesPerJournal give the size; each journal balances:
	// revenue credits on cost-center accounts against one AR debit.
	Journals        int
	LinesPerJournal int
	// ServiceAreas, CostCenters and RevenueAccounts are drawn from; the AR
	// account is debited. They should match the crosswalk in use.
	ServiceAreas    []string
	CostCenters     []string
	RevenueAccounts []string
	ARAccount       string
	Seed            uint64
}

// Generate writes a valid, balanced file and returns its detail count and
// total (debits = credits = total).
func Generate(w io.Writer, o GenerateOptions) (lines int64, total money.Amount, err error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	rnd := rand.New(rand.NewPCG(o.Seed, o.Seed+1))
	date := o.PostingDate.Format("2006-01-02")
	fmt.Fprintf(bw, "H|%s|%s|%s|%s\n", o.BatchID, o.PostingDate.Format(time.RFC3339), o.Kind, date)
	var buf []byte
	for j := range o.Journals {
		sa := o.ServiceAreas[j%len(o.ServiceAreas)]
		var jtotal money.Amount
		for i := range max(o.LinesPerJournal-1, 1) {
			amt := money.Amount(100 + rnd.IntN(500000))
			jtotal += amt
			cc := o.CostCenters[rnd.IntN(len(o.CostCenters))]
			acct := o.RevenueAccounts[rnd.IntN(len(o.RevenueAccounts))]
			buf = buf[:0]
			buf = fmt.Appendf(buf, "D|%s-J%05d-%05d|%s|%s|%s|%s|COM|BCBS|CHG||", o.BatchID, j, i, date, sa, cc, acct)
			buf = amt.Append(buf)
			buf = fmt.Appendf(buf, "|%d|Charges %s %s\n", 1+rnd.IntN(20), cc, acct)
			bw.Write(buf)
			lines++
		}
		fmt.Fprintf(bw, "D|%s-J%05d-AR|%s|%s|%s|%s|COM|BCBS|CHG|%s||1|AR offset\n", o.BatchID, j, date, sa, o.CostCenters[0], o.ARAccount, jtotal)
		lines++
		total += jtotal
	}
	fmt.Fprintf(bw, "T|%d|%s|%s\n", lines, total, total)
	return lines, total, bw.Flush()
}
