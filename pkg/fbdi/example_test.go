package fbdi_test

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/sinewhq/sinew/pkg/fbdi"
)

func Example() {
	day := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	group := fbdi.GroupID("resolute:batch-20260115:J0001")
	line := func(seg3 string, amount fbdi.Amount, debit bool) *fbdi.Line {
		l := &fbdi.Line{
			LedgerID: "300000000000001", AccountingDate: day, DateCreated: day,
			Source: "Epic Resolute HB", Category: "Revenue", Currency: "USD",
			Segments: []string{"101", "6010", seg3}, JournalName: "EPICHB-20260115-J0001", GroupID: group,
		}
		if debit {
			l.EnteredDR, l.HasDR = amount, true
		} else {
			l.EnteredCR, l.HasCR = amount, true
		}
		return l
	}

	var zip bytes.Buffer
	w, err := fbdi.NewWriter(&zip, fbdi.Options{})
	if err != nil {
		panic(err)
	}
	for _, l := range []*fbdi.Line{line("11010", 125000, true), line("40100", 125000, false)} {
		if err := w.Write(l); err != nil {
			panic(err)
		}
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	t := w.Totals()
	fmt.Println("written:", t.Lines, "lines, DR", t.DR, "CR", t.CR, "group", t.Groups[0].GroupID)

	rep, err := fbdi.Check(context.Background(), bytes.NewReader(zip.Bytes()), int64(zip.Len()), fbdi.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Println("check:", rep.Entry, rep.OK())
	// Output:
	// written: 2 lines, DR 1250.00 CR 1250.00 group 922857510721707
	// check: GlInterface.csv true
}
