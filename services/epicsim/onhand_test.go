package epicsim_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/services/epicsim"
)

// The stock count is the starting on-hand, in Epic's units, minus every
// reagent the final Beaker results consumed.
func TestStockCountFollowsTraffic(t *testing.T) {
	g := epicsim.NewGenerator(5, "STMARYS")
	now := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	book, err := epicsim.NewStockBook("1000")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]recon.Qty{}
	var finals int
	for range 500 {
		raw, typ := g.Next(now)
		m, err := hl7.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if typ == "ORU^R01" && m.Get("OBR-25") == "F" {
			finals++
		}
		book.Consume(g.Consumed())
		for _, r := range g.Consumed() {
			used[r.Code] += r.Quantity
		}
	}
	if finals == 0 || used["CBC-PK"] != recon.Qty(finals)*10000 {
		t.Fatalf("%d final results, consumed %v", finals, used)
	}
	at := now.Add(time.Hour)
	data, err := book.Count(at)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	name, err := epicsim.WriteOnhandCount(dir, at, data)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := recon.ParseOnhandCount(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	start := map[string]string{"CBC-PK": "1000", "GLU-R1": "1"} // 1000 EA; 1000 ML = 1 L
	for _, r := range rows {
		s, _ := recon.ParseQty(start[r.Code])
		if r.CountDate != "2026-11-26T09:00:00Z" || r.Department != "CORELAB" || r.Qty != (s-used[r.Code]).String() {
			t.Errorf("row %+v; want %s", r, s-used[r.Code])
		}
	}
	if len(rows) != 2 {
		t.Errorf("%d rows", len(rows))
	}
}
