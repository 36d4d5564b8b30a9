package recon

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/decimal"
	"github.com/sinewhq/sinew/pkg/money"
)

// OnhandCountHeader is the header of Beaker's nightly instrument / lab
// stock count extract: one row per reagent counted in a department, in
// Epic's own codes and units (the same as the reagent lines of the HL7
// flow). count_date is the day counted (YYYY-MM-DD: as of the end of that
// day, UTC) or the moment of the count (RFC 3339).
const OnhandCountHeader = "count_date,department,reagent_code,quantity,unit"

// OnhandScopeSuffix ends the scope of an on-hand reconciliation:
// "<count_date>/onhand", next to the day's transaction reconciliation.
const OnhandScopeSuffix = "/onhand"

// CountRow is one row of a count file as read: nothing is mapped yet.
type CountRow struct {
	Line                                   int // the file's line
	CountDate, Department, Code, Qty, Unit string
}

// ParseOnhandCount reads a count file: the header must be
// OnhandCountHeader ('#' lines are comments, blank lines skipped). Rows are
// returned as read; their values are checked when they are mapped.
func ParseOnhandCount(r io.Reader) ([]CountRow, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("recon: count file header: %w", err)
	}
	for i := range header {
		header[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff")))
	}
	if strings.Join(header, ",") != OnhandCountHeader {
		return nil, fmt.Errorf("recon: count file header %q, want %q", strings.Join(header, ","), OnhandCountHeader)
	}
	var out []CountRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("recon: count file: %w", err)
		}
		line, _ := cr.FieldPos(0)
		for len(rec) < 5 {
			rec = append(rec, "") // reported when mapped: a short row is a bad row, not a bad file
		}
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		out = append(out, CountRow{Line: line, CountDate: rec[0], Department: rec[1], Code: rec[2], Qty: rec[3], Unit: rec[4]})
	}
}

// CountTime reads a count_date: a day (the count stands as of the end of
// that day, UTC) or an RFC 3339 moment. day is the count's date, the
// scope's first part.
func CountTime(countDate string) (day string, at time.Time, err error) {
	if d, err := time.Parse(time.DateOnly, countDate); err == nil {
		return countDate, d.Add(24 * time.Hour), nil
	}
	t, err := time.Parse(time.RFC3339, countDate)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("recon: count_date %q: want YYYY-MM-DD or RFC 3339", countDate)
	}
	return t.UTC().Format(time.DateOnly), t.UTC(), nil
}

// ConvertQty returns q × factor exactly (factor a positive decimal from a
// crosswalk); an error when the product needs more than four decimals or
// does not fit.
func ConvertQty(q Qty, factor string) (Qty, error) {
	if factor == "1" || factor == "" {
		return q, nil
	}
	f, err := decimal.ParsePlain(factor)
	if err != nil {
		return 0, fmt.Errorf("recon: factor: %w", err)
	}
	p, err := q.Decimal().Mul(f)
	if err != nil {
		return 0, err
	}
	n, err := p.Units(4)
	if err != nil {
		return 0, fmt.Errorf("recon: %s × %s does not fit a quantity with four decimals", q, factor)
	}
	return Qty(n), nil
}

// OnhandCount is one count row mapped to Fusion's terms by the caller
// (item and department crosswalks, unit factor). A row that could not be
// mapped or read has Problem set and is a variance naming it.
type OnhandCount struct {
	Line             int
	Code, Department string // Epic's reagent code and department, as counted
	EpicQty          string // the quantity and unit as counted
	EpicUnit         string
	// Mapped: where and what in Fusion, the quantity in the item's UOM.
	Organization, Subinventory, Item, UOM string
	Quantity                              Qty
	Problem                               string
}

// OnhandBalance is one of Fusion's on-hand quantities, as of the count.
type OnhandBalance struct {
	Organization, Subinventory, Item, UOM string
	Quantity                              Qty
}

// OnhandInput is one count (the latest count file of a day) and Fusion's
// on-hand quantities of the organizations it names.
type OnhandInput struct {
	Scope string // "<count_date>/onhand"
	File  string // the count file's name, for explanations
	Count []OnhandCount
	// Fusion's on-hand, rolled back to the moment of the count by the
	// caller (transactions Fusion holds dated after it undone).
	Fusion []OnhandBalance
	// Countable names the Fusion items Beaker counts (reagent items):
	// Fusion's balances of other items in a counted subinventory are not
	// Beaker's to count and are left out. nil: every item.
	Countable map[string]bool
	// Tolerance is the flow's; its Absolute is read as a quantity.
	Tolerance Tolerance
	// Final is false while Fusion may still not show transactions dated
	// before the count (read lag): a difference is pending, not a variance.
	Final bool
}

// ReconcileOnhand compares a count with Fusion's on-hand: per
// organization / subinventory / item (tier 2, key
// "onhand|<org>|<subinventory>|<item>"), Beaker's counted quantity in the
// Fusion UOM against Fusion's, within the tolerance; count rows that could
// not be mapped (tier 3, "row|<line>|<code>") and items Fusion holds in a
// counted subinventory that the count lacks are variances; tier 1 counts
// the rows compared against the rows in the file.
func ReconcileOnhand(in *OnhandInput) *Result {
	res := &Result{Summary: Summary{Scope: in.Scope}}
	sum := &res.Summary
	// Quantities are in ten-thousandths; the flow's absolute tolerance is in
	// money's hundredths: scale it so "1" means one unit.
	tol := Tolerance{Absolute: in.Tolerance.Absolute * (qtyScale / 100), BasisPoints: in.Tolerance.BasisPoints}
	row := func(tier int, key, unit string, src, tgt Qty, verdict, why string) {
		res.Rows = append(res.Rows, Row{Tier: tier, Scope: in.Scope, Key: key, Hop: HopFusion, Unit: unit,
			Source: money.Amount(src), Target: money.Amount(tgt), Variance: money.Amount(tgt - src), Verdict: verdict, Explanation: why})
		if verdict == VerdictVariance {
			sum.Variances++
		}
	}
	type key struct{ org, sub, item string }
	type counted struct {
		qty   Qty
		uom   string
		codes []string
	}
	count := map[key]*counted{}
	subs := map[[2]string]bool{}
	var mapped int64
	for i := range in.Count {
		c := &in.Count[i]
		if c.Problem != "" {
			sum.Mismatched++
			q, _ := ParseQty(c.EpicQty)
			row(TierLines, fmt.Sprintf("row|%d|%s", c.Line, c.Code), UnitQtyPrefix+c.EpicUnit, q, 0, VerdictVariance,
				fmt.Sprintf("%s line %d: reagent %s (department %s): %s", in.File, c.Line, c.Code, c.Department, c.Problem))
			continue
		}
		mapped++
		k := key{c.Organization, c.Subinventory, c.Item}
		subs[[2]string{c.Organization, c.Subinventory}] = true
		e := count[k]
		if e == nil {
			e = &counted{uom: c.UOM}
			count[k] = e
		}
		e.qty += c.Quantity
		e.codes = append(e.codes, c.Code+"@"+c.Department)
	}
	fusion := map[key]OnhandBalance{}
	for _, b := range in.Fusion {
		k := key{b.Organization, b.Subinventory, b.Item}
		if _, ok := count[k]; !ok && (!subs[[2]string{k.org, k.sub}] || in.Countable != nil && !in.Countable[k.item]) {
			continue // not in a counted subinventory, or not Beaker's to count
		}
		if o, ok := fusion[k]; ok {
			b.Quantity += o.Quantity
		}
		fusion[k] = b
	}
	keys := make([]key, 0, len(count)+len(fusion))
	for k := range count {
		keys = append(keys, k)
	}
	for k := range fusion {
		if _, ok := count[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		return a.org+"|"+a.sub+"|"+a.item < b.org+"|"+b.sub+"|"+b.item
	})
	judge := func(src, variance Qty, what string) (string, string) {
		switch {
		case variance == 0:
			return VerdictPass, what
		case tol.Within(money.Amount(src), money.Amount(variance)):
			return VerdictPass, what + "; within tolerance (" + in.Tolerance.String() + ")"
		case !in.Final:
			return VerdictPending, what + "; Fusion may not show the latest transactions yet"
		}
		return VerdictVariance, what + "; beyond tolerance (" + in.Tolerance.String() + ")"
	}
	for _, k := range keys {
		c, f := count[k], fusion[k]
		sum.Lines++
		key := "onhand|" + k.org + "|" + k.sub + "|" + k.item
		if c == nil {
			sum.Extra++
			v, why := judge(0, f.Quantity, fmt.Sprintf("item %s: Fusion shows %s %s in %s, Beaker's count has none", k.item, f.Quantity, f.UOM, k.sub))
			if v == VerdictPass {
				sum.Matched++
			}
			row(TierBalances, key, UnitQtyPrefix+f.UOM, 0, f.Quantity, v, why)
			continue
		}
		what := fmt.Sprintf("item %s: Beaker counted %s %s (%s), Fusion shows %s", k.item, c.qty, c.uom, strings.Join(c.codes, ", "), f.Quantity)
		if f.Item == "" {
			what = fmt.Sprintf("item %s: Beaker counted %s %s (%s), Fusion shows no on-hand in %s", k.item, c.qty, c.uom, strings.Join(c.codes, ", "), k.sub)
		} else if f.UOM != "" && !strings.EqualFold(f.UOM, c.uom) {
			sum.Mismatched++
			row(TierBalances, key, UnitQtyPrefix+c.uom, c.qty, f.Quantity, VerdictVariance,
				fmt.Sprintf("%s: Fusion's UOM is %s, the item crosswalk's %s", what, f.UOM, c.uom))
			continue
		}
		v, why := judge(c.qty, f.Quantity-c.qty, what)
		switch v {
		case VerdictPass:
			sum.Matched++
		case VerdictPending:
			sum.Pending++
		default:
			sum.Mismatched++
		}
		row(TierBalances, key, UnitQtyPrefix+c.uom, c.qty, f.Quantity, v, why)
	}
	sum.Posted = int64(len(fusion))
	rows := int64(len(in.Count))
	v := VerdictPass
	if mapped != rows {
		v = VerdictVariance
	}
	row(TierTotals, "count/rows", UnitLines, Qty(rows), Qty(mapped), v,
		fmt.Sprintf("%s: %d rows counted, %d mapped to a Fusion item and subinventory", in.File, rows, mapped))

	sum.Verdict = VerdictPass
	for _, r := range res.Rows {
		if rank(r.Verdict) > rank(sum.Verdict) {
			sum.Verdict = r.Verdict
		}
	}
	return res
}
