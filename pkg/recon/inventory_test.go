package recon_test

import (
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/recon"
)

func TestParseQty(t *testing.T) {
	for _, c := range []struct {
		in, out string
		bad     bool
	}{{"-2", "-2", false}, {"2.5", "2.5", false}, {"0.0001", "0.0001", false}, {"+3.10", "3.1", false},
		{"1.23456", "", true}, {"x", "", true}, {"", "", true}, {"1e3", "", true}} {
		q, err := recon.ParseQty(c.in)
		if (err != nil) != c.bad || (!c.bad && q.String() != c.out) {
			t.Errorf("ParseQty(%q) = %v, %v", c.in, q, err)
		}
	}
}

func TestReconcileInventory(t *testing.T) {
	qty := func(s string) recon.Qty { q, _ := recon.ParseQty(s); return q }
	line := func(key, item, q string) recon.InventoryLine {
		return recon.InventoryLine{Key: key, Organization: "MAIN", Subinventory: "PHARM-MAIN", Item: item, UOM: "EA",
			Quantity: qty(q), Day: "2026-11-26", FusionID: "f" + key}
	}
	implant := line("9/1", "IMP-3001", "-1")
	implant.Lot, implant.Serial = "LOT7", "SN123"
	flagged := line("1/1", "RX-1001", "-2")
	flagged.Program340B = true
	sent := []recon.InventoryLine{flagged, line("2/1", "RX-1002", "-1"), implant}
	for _, c := range []struct {
		name    string
		fusion  func() []recon.InventoryLine
		final   bool
		verdict string
		want    []string // fragments of rows' text
	}{
		{"all match", func() []recon.InventoryLine { return append([]recon.InventoryLine(nil), sent...) }, true, recon.VerdictPass,
			[]string{"3 of 3 transactions match"}},
		{"340B dropped", func() []recon.InventoryLine {
			f := append([]recon.InventoryLine(nil), sent...)
			f[0].Program340B = false
			return f
		}, true, recon.VerdictVariance, []string{`340B "true" ≠ "false"`}},
		{"serial lost", func() []recon.InventoryLine {
			f := append([]recon.InventoryLine(nil), sent...)
			f[2].Serial = ""
			return f
		}, true, recon.VerdictVariance, []string{`serial "SN123" ≠ ""`}},
		{"posted twice", func() []recon.InventoryLine { return append(append([]recon.InventoryLine(nil), sent...), sent[1]) }, true,
			recon.VerdictVariance, []string{"posted 2 times"}},
		{"rejected", func() []recon.InventoryLine {
			f := append([]recon.InventoryLine(nil), sent...)
			f[1].Rejected, f[1].Detail = "INV_INVALID_ITEM", "The item isn't valid."
			return f
		}, true, recon.VerdictRejected, []string{"INV_INVALID_ITEM"}},
		{"pending during read lag", func() []recon.InventoryLine { return sent[:2] }, false, recon.VerdictPending, []string{"not visible in Fusion yet: 9/1"}},
		{"missing after read lag", func() []recon.InventoryLine { return sent[:2] }, true, recon.VerdictVariance, []string{"item IMP-3001 not in Fusion"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := recon.ReconcileInventory(&recon.InventoryInput{Scope: "2026-11-26", Sent: sent, Fusion: c.fusion(), Commands: 3, Results: 3, Final: c.final})
			var all []string
			for _, r := range res.Publishable() {
				all = append(all, r.String())
			}
			text := strings.Join(all, "\n")
			if res.Summary.Verdict != c.verdict {
				t.Errorf("verdict %s, want %s\n%s", res.Summary.Verdict, c.verdict, text)
			}
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("no %q in\n%s", w, text)
				}
			}
		})
	}
}
