package recon

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/sinewhq/sinew/pkg/decimal"
	"github.com/sinewhq/sinew/pkg/money"
)

// Quantities are exact decimals counted in ten-thousandths of a unit (Qty).
// A row whose Unit starts with UnitQtyPrefix ("qty:EA") holds quantities,
// formatted with up to four decimals.
const UnitQtyPrefix = "qty:"

// Qty is an exact quantity in ten-thousandths of its unit.
type Qty int64

// qtyScale is the number of Qty in one unit.
const qtyScale = 10000

// ParseQty parses a decimal quantity ("-2", "2.5", "0.0001"): at most 14
// whole digits and 4 decimals, no exponent.
func ParseQty(s string) (Qty, error) {
	d, err := decimal.ParsePlain(s)
	if err != nil {
		return 0, fmt.Errorf("recon: quantity: %w", err)
	}
	whole, _, _ := strings.Cut(strings.TrimPrefix(string(d), "-"), ".")
	if d.Scale() > 4 || len(whole) > 14 {
		return 0, fmt.Errorf("recon: quantity of %d bytes: want at most 14 digits and 4 decimals", len(s))
	}
	n, err := d.Units(4)
	if err != nil {
		return 0, fmt.Errorf("recon: quantity: %w", err)
	}
	return Qty(n), nil
}

// Decimal is q as a decimal, without trailing zeros.
func (q Qty) Decimal() decimal.Decimal { return decimal.FromUnits(int64(q), 4).Normal() }

// String formats q with the decimals it needs.
func (q Qty) String() string { return string(q.Decimal()) }

// InventoryLine is one inventory transaction: as Sinew sent it (a command
// and its result) or as Fusion shows it (a staged transaction).
type InventoryLine struct {
	Key          string // SourceHeaderId/SourceLineId: the match key
	Organization string
	Subinventory string
	Item         string
	UOM          string
	Quantity     Qty
	Day          string // the transaction's date, YYYY-MM-DD
	Program340B  bool
	Lot, Serial  string
	FusionID     string
	// Rejected is Fusion's error code (sent: the loader's result; Fusion:
	// an interface row in error), with its text in Detail.
	Rejected, Detail string
}

// InventoryInput is one flow's day: what Sinew sent and what Fusion shows.
type InventoryInput struct {
	Scope  string // "<day>" (the rows' Scope)
	Sent   []InventoryLine
	Fusion []InventoryLine
	// Commands and Results are control totals counted at the earlier hops:
	// transactions commanded and results the loader published.
	Commands, Results int64
	// Unsettled counts sent lines whose Fusion effect is not known yet
	// (no result): pending unless Final.
	Final bool
	// BeyondCut counts Fusion rows left out because their commands are
	// after the run's cut or their results not published yet: the next
	// run's, never a variance (see services/reconciler).
	BeyondCut int64
	// InFlight counts commands of the cut without a result yet: pending
	// unless Final.
	InFlight int64
}

// ReconcileInventory reconciles a day of an inventory flow at three tiers:
// counts and quantities per hop, quantities per item / organization / day,
// and every transaction field by field (item, quantity, unit, 340B flag,
// lot and serial numbers) against its Fusion transaction.
func ReconcileInventory(in *InventoryInput) *Result {
	res := &Result{Summary: Summary{Scope: in.Scope}}
	sum := &res.Summary
	row := func(tier int, key, hop, unit string, src, tgt money.Amount, verdict, why string) {
		res.Rows = append(res.Rows, Row{Tier: tier, Scope: in.Scope, Key: key, Hop: hop, Unit: unit,
			Source: src, Target: tgt, Variance: tgt - src, Verdict: verdict, Explanation: why})
		if verdict == VerdictVariance {
			sum.Variances++
		}
	}
	verdict := func(equal, pending bool) string {
		switch {
		case equal:
			return VerdictPass
		case pending:
			return VerdictPending
		}
		return VerdictVariance
	}

	byKey := make(map[string][]*InventoryLine, len(in.Fusion))
	for i := range in.Fusion {
		l := &in.Fusion[i]
		byKey[l.Key] = append(byKey[l.Key], l)
	}
	type itemKey struct{ org, item, uom, day string }
	sentQty, fusionQty := map[itemKey]Qty{}, map[itemKey]Qty{}
	var sentEffective, fusionEffective, rejected int64
	var open []string
	sent := map[string]bool{}
	for i := range in.Sent {
		s := &in.Sent[i]
		sum.Lines++
		sent[s.Key] = true
		rows := byKey[s.Key]
		var eff []*InventoryLine
		var errRow *InventoryLine
		for _, f := range rows {
			if f.Rejected == "" {
				eff = append(eff, f)
			} else {
				errRow = f
			}
		}
		switch {
		case len(eff) == 1:
			sentEffective++
			sentQty[itemKey{s.Organization, s.Item, s.UOM, s.Day}] += s.Quantity
			if diff := fieldDiff(s, eff[0]); diff != "" {
				sum.Mismatched++
				row(TierLines, s.Key, HopFusion, UnitQtyPrefix+s.UOM, money.Amount(s.Quantity), money.Amount(eff[0].Quantity), VerdictVariance,
					"Fusion transaction "+eff[0].FusionID+" differs: "+diff)
			} else {
				sum.Matched++
			}
		case len(eff) > 1:
			sentEffective++
			sentQty[itemKey{s.Organization, s.Item, s.UOM, s.Day}] += s.Quantity
			sum.Extra += int64(len(eff) - 1)
			ids := make([]string, len(eff))
			for j, f := range eff {
				ids[j] = f.FusionID
			}
			row(TierLines, s.Key, HopFusion, UnitLines, 1, money.Amount(len(eff)), VerdictVariance,
				fmt.Sprintf("posted %d times in Fusion (transactions %s)", len(eff), strings.Join(ids, ", ")))
		case s.Rejected != "" || errRow != nil:
			sum.Rejected++
			rejected++
			code, detail := s.Rejected, s.Detail
			if errRow != nil {
				code, detail = errRow.Rejected, errRow.Detail
			}
			row(TierLines, s.Key, HopFusion, UnitQtyPrefix+s.UOM, money.Amount(s.Quantity), 0, VerdictRejected,
				fmt.Sprintf("item %s: Fusion %s: %s", s.Item, code, detail))
		case !in.Final:
			sum.Pending++
			open = append(open, s.Key)
		default:
			sum.Missing++
			row(TierLines, s.Key, HopFusion, UnitQtyPrefix+s.UOM, money.Amount(s.Quantity), 0, VerdictVariance,
				fmt.Sprintf("item %s not in Fusion", s.Item))
		}
	}
	for i := range in.Fusion {
		f := &in.Fusion[i]
		if f.Rejected != "" {
			continue
		}
		fusionEffective++
		fusionQty[itemKey{f.Organization, f.Item, f.UOM, f.Day}] += f.Quantity
		if !sent[f.Key] {
			sum.Extra++
			row(TierLines, f.Key, HopFusion, UnitQtyPrefix+f.UOM, 0, money.Amount(f.Quantity), VerdictVariance,
				fmt.Sprintf("Fusion transaction %s (item %s) has no source transaction", f.FusionID, f.Item))
		}
	}
	sum.Posted = fusionEffective
	pending := (sum.Pending > 0 || in.InFlight > 0) && !in.Final

	// Tier 1: counts per hop.
	hop := func(name string, n int64, why string) {
		row(TierTotals, name+"/count", name, UnitLines, money.Amount(in.Commands), money.Amount(n),
			verdict(n == in.Commands, pending), why)
	}
	if in.Results > 0 || in.Commands > 0 {
		hop("loaded", in.Results, "results published by the loader, against transactions commanded")
	}
	hop("fusion", fusionEffective+rejected, fmt.Sprintf("Fusion: %d transactions + %d rejected, against transactions commanded", fusionEffective, rejected))

	// Tier 2: quantities per item / organization / day.
	keys := make([]itemKey, 0, len(sentQty)+len(fusionQty))
	for k := range sentQty {
		keys = append(keys, k)
	}
	for k := range fusionQty {
		if _, ok := sentQty[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		return a.day+a.org+a.item+a.uom < b.day+b.org+b.item+b.uom
	})
	for _, k := range keys {
		s, f := sentQty[k], fusionQty[k]
		row(TierBalances, "item|"+k.org+"|"+k.item+"|"+k.day, HopFusion, UnitQtyPrefix+k.uom, money.Amount(s), money.Amount(f),
			verdict(s == f, pending), "quantity of accepted source transactions against Fusion's")
	}
	if len(open) > 0 {
		sort.Strings(open)
		if len(open) > 5 {
			open = append(open[:5], "…")
		}
		row(TierLines, "pending", HopFusion, UnitLines, money.Amount(sum.Pending), 0, VerdictPending,
			"not visible in Fusion yet: "+strings.Join(open, ", "))
	}
	if in.BeyondCut > 0 {
		row(TierLines, "after-cut", HopFusion, UnitLines, 0, money.Amount(in.BeyondCut), VerdictPass,
			fmt.Sprintf("%d Fusion transactions of commands after this run's cut (or awaiting their result): the next run's", in.BeyondCut))
	}
	row(TierLines, "matched", HopFusion, UnitLines, money.Amount(sum.Lines), money.Amount(sum.Matched), VerdictPass,
		fmt.Sprintf("%d of %d transactions match field by field (item, quantity, unit, 340B, lot, serial)", sum.Matched, sum.Lines))

	sum.Verdict = VerdictPass
	for _, r := range res.Rows {
		if rank(r.Verdict) > rank(sum.Verdict) {
			sum.Verdict = r.Verdict
		}
	}
	if sum.Verdict == VerdictHeld {
		sum.Verdict = VerdictRejected
	}
	return res
}

// fieldDiff names the fields in which Fusion's transaction differs.
func fieldDiff(s, f *InventoryLine) string {
	var d []string
	cmp := func(name, a, b string) {
		if a != b {
			d = append(d, fmt.Sprintf("%s %q ≠ %q", name, a, b))
		}
	}
	cmp("item", s.Item, f.Item)
	cmp("organization", s.Organization, f.Organization)
	cmp("subinventory", s.Subinventory, f.Subinventory)
	cmp("quantity", s.Quantity.String(), f.Quantity.String())
	cmp("uom", s.UOM, f.UOM)
	cmp("340B", strconv.FormatBool(s.Program340B), strconv.FormatBool(f.Program340B))
	cmp("lot", s.Lot, f.Lot)
	cmp("serial", s.Serial, f.Serial)
	return strings.Join(d, ", ")
}
