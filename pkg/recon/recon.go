// Package recon is Sinew's three-tier reconciliation (docs/architecture.md,
// Reconciliation). For GL batches: what Sinew sent to Fusion (the
// GlInterface lines and the control totals counted at every hop) against
// what Fusion answered and shows (posted journal lines, Journal Import's
// rejections, ledger balances). Inventory days (inventory.go) and stock
// counts against on-hand (onhand.go) use the same rows and tiers.
//
//   - Tier 1, control totals: every hop's line count and debit/credit sums
//     equal the totals the source file states; debits equal credits in every
//     journal; accepted + rejected = submitted.
//   - Tier 2, balances: per ledger / period / currency / balancing segment
//     (SEGMENT1) and per account, the net activity expected (source lines of
//     groups Fusion did not reject) against Fusion's posted lines aggregated
//     the same way and, when given, its ledger balances.
//   - Tier 3, lines: every source line matched to its posted line by
//     REFERENCE21, rejected lines explained with Fusion's own code and text,
//     the good siblings of a rejected line held with it, lines missing from
//     Fusion and posted lines Sinew never sent reported.
//
// The engine is pure computation: the reconciler service reads the inputs
// (object store, RESULTS, Fusion read-back) and publishes the Rows on RECON;
// `sinew recon report` reads them back. Both use this package's subject,
// tier and key conventions (see Subject, SummaryTier, SummaryKey) so they
// agree.
//
// Memory is bounded whatever the batch's size: tier 3 merge-joins posted
// and source lines sorted by REFERENCE21 within Input.MemoryBudget,
// spilling sorted runs to temporary files beyond it (Reconciler, spill.go);
// tiers 1 and 2 keep one entry per journal, group and account. A
// Reconciler is for one goroutine; reconcile batches in parallel with one
// each.
//
// Money is exact: money.Amount minor units everywhere, percent tolerances
// in basis points, compared with integer arithmetic. Sums are plain int64
// additions: a batch would need more than 10^16 currency units to
// overflow them, and pkg/fbdi's Check already refuses files whose totals
// overflow.
package recon

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/money"
)

// Tiers. SummaryTier carries the batch verdict (one row, key SummaryKey).
const (
	SummaryTier  = 0
	TierTotals   = 1
	TierBalances = 2
	TierLines    = 3
)

// SummaryKey is the key of a batch's summary row (tier SummaryTier).
const SummaryKey = "batch"

// Verdicts of rows and of batches.
const (
	// VerdictPass: equal, or within tolerance (the explanation says which).
	VerdictPass = "pass"
	// VerdictVariance: a difference beyond tolerance that nothing explains.
	VerdictVariance = "variance"
	// VerdictRejected: Fusion rejected the line; the explanation carries
	// Fusion's code and text. A batch with rejected lines (and no
	// variance) has this verdict.
	VerdictRejected = "rejected"
	// VerdictHeld: a good line Fusion did not post because its group
	// (GROUP_ID) was rejected for another line, which the explanation names.
	VerdictHeld = "held"
	// VerdictPending: not visible in Fusion yet (read lag); reconciled
	// again later.
	VerdictPending = "pending"
)

// Hop names of control totals. Callers may use other names too; HopAccepted
// is compared with HopSubmitted (accepted + rejected = submitted), every
// other hop with the totals the source file states.
const (
	HopSource      = "source"      // ingested: the source file as read
	HopTransformed = "transformed" // mapped by transform
	HopSubmitted   = "submitted"   // sent to Fusion by the loader
	HopAccepted    = "accepted"    // Journal Import's accepted lines

	// Hops the engine computes itself.
	HopFile    = "file"    // the GlInterface lines given to Add
	HopFusion  = "fusion"  // Fusion's read-back: posted lines + lines of rejected groups
	HopPosted  = "posted"  // tier 2: posted lines aggregated
	HopBalance = "balance" // tier 2: ledger balances activity
)

// UnitLines marks a row whose values are line (or journal) counts rather
// than amounts; any other Unit is a currency code, or "" for amounts summed
// over several currencies.
const UnitLines = "lines"

// SourceLine is one line Sinew sent to Fusion: a GlInterface row.
type SourceLine struct {
	Reference21 string // the line key (REFERENCE21)
	GroupID     int64  // GROUP_ID
	Batch       string // REFERENCE1
	Journal     string // REFERENCE4
	Ledger      string // LEDGER_NAME (LEDGER_ID when no name)
	Period      string // PERIOD_NAME
	Currency    string // CURRENCY_CODE
	Account     string // SEGMENT1..n joined with "-"; SEGMENT1 is the balancing segment
	DR, CR      money.Amount
}

// ControlTotals are a line count and debit and credit sums.
type ControlTotals struct {
	Lines  int64
	DR, CR money.Amount
}

func (t *ControlTotals) add(dr, cr money.Amount) {
	t.Lines++
	t.DR += dr
	t.CR += cr
}

func (t ControlTotals) plus(o ControlTotals) ControlTotals {
	return ControlTotals{Lines: t.Lines + o.Lines, DR: t.DR + o.DR, CR: t.CR + o.CR}
}

// HopTotals are the control totals one hop counted.
type HopTotals struct {
	Hop string
	ControlTotals
}

// PostedLine is one journal line Fusion shows as posted (journalBatches
// read-back), with the account normalised to segments joined with "-".
type PostedLine struct {
	Reference21 string
	GroupID     int64
	JeBatchID   int64
	Account     string
	DR, CR      money.Amount
	Ledger      string
	Period      string
	Currency    string
}

// RejectedLine is one line of Journal Import's report that Fusion refused.
type RejectedLine struct {
	GroupID     int64
	Reference21 string
	Code        string // Fusion's code, e.g. EF04
	Text        string // Fusion's text
}

// Balance is the activity of one account in one period from Fusion's
// ledgerBalances: the part the caller attributes to the reconciled batch
// (e.g. filtered by journal source), compared with the net (DR − CR) the
// batch's accepted lines should have produced.
type Balance struct {
	Ledger, Period, Currency, Account string
	Activity                          money.Amount
}

// Tolerance bounds an amount variance: within tolerance when |variance| is
// at most Absolute, or at most Percent of |source|. Counts and line
// amounts are always compared exactly.
type Tolerance struct {
	Absolute money.Amount
	// BasisPoints is the percent tolerance in hundredths of a percent:
	// 50 is 0.5 %.
	BasisPoints int64
}

// ErrTolerance is wrapped by ParseTolerance's errors.
var ErrTolerance = errors.New("recon: invalid tolerance")

// ParseTolerance reads a flow's tolerances from flows.yaml: absolute an
// exact amount ("0.00", "5"), percent a decimal with at most two places
// ("0.5" is 0.5 %, 50 basis points). Empty means zero. Negative values are
// refused.
func ParseTolerance(t flows.Tolerances) (Tolerance, error) {
	var tol Tolerance
	parse := func(what, s string) (money.Amount, error) {
		if s == "" {
			return 0, nil
		}
		a, err := money.Parse(s)
		if err != nil {
			return 0, fmt.Errorf("%w: %s %q: %w", ErrTolerance, what, s, err)
		}
		if a < 0 {
			return 0, fmt.Errorf("%w: %s %q is negative", ErrTolerance, what, s)
		}
		return a, nil
	}
	var err error
	if tol.Absolute, err = parse("absolute", t.Absolute); err != nil {
		return Tolerance{}, err
	}
	// money.Parse reads "0.5" as 50 hundredths: exactly basis points.
	bp, err := parse("percent", t.Percent)
	if err != nil {
		return Tolerance{}, err
	}
	tol.BasisPoints = int64(bp)
	return tol, nil
}

// Within reports whether variance is within tolerance of source.
func (t Tolerance) Within(source, variance money.Amount) bool {
	v := abs(variance)
	if v <= uint64(max(t.Absolute, 0)) {
		return true
	}
	if t.BasisPoints <= 0 {
		return false
	}
	// |variance| × 10000 ≤ |source| × bp, in 128 bits: no overflow, no float.
	vh, vl := bits.Mul64(v, 10000)
	sh, sl := bits.Mul64(abs(source), uint64(t.BasisPoints))
	return vh < sh || (vh == sh && vl <= sl)
}

// String is "abs 1.00, 0.50%".
func (t Tolerance) String() string {
	return "abs " + t.Absolute.String() + ", " + money.Amount(t.BasisPoints).String() + "%"
}

func abs(a money.Amount) uint64 {
	if a < 0 {
		return uint64(-(a + 1)) + 1 // also right for math.MinInt64
	}
	return uint64(a)
}

// Row is one reconciliation finding.
//
// Keys are unique within (scope, tier), so "the latest row for (flow,
// scope, tier, key)" is a row's current state:
//
//   - tier 0: SummaryKey, the batch verdict (see Summary);
//   - tier 1: "<hop>/lines", "<hop>/dr", "<hop>/cr" for every hop;
//     "journal/<GROUP_ID>/<currency>/<REFERENCE4>" for an unbalanced
//     journal; "journals" counts the balanced journals;
//   - tier 2: "segment|<ledger>|<period>|<currency>|<SEGMENT1>",
//     "account|<ledger>|<period>|<currency>|<account>" (hop posted) and
//     "balance|<ledger>|<period>|<currency>|<account>" (hop balance);
//   - tier 3: the REFERENCE21 of every line that did not pass (and of
//     posted lines with no source), and "group/<GROUP_ID>" once per group
//     with the group's exact counts (source lines against matched lines,
//     and matched, mismatched, rejected, held, missing, pending in the
//     explanation). Passing lines get no row of their own, so a million-
//     line batch that passes is a few rows per group. Lines of a group
//     Fusion does not show at all are counted on the group row only
//     (pending during the read lag, missing after it): Journal Import posts
//     or holds a group whole.
type Row struct {
	Tier  int
	Scope string // the batch id
	Key   string
	Hop   string
	// Unit is UnitLines when Source, Target and Variance are counts,
	// otherwise the currency of the amounts.
	Unit     string
	Source   money.Amount // what Sinew sent or expected
	Target   money.Amount // what Fusion (or the hop) shows
	Variance money.Amount // Target − Source
	Verdict  string
	// Explanation says why, in words: Fusion's code and text, the rejected
	// line holding a group, the fields that differ, the tolerance used.
	Explanation string
}

// FormatValue formats one of r's values: a count for UnitLines, a
// quantity for UnitQtyPrefix units, else an amount with two decimals.
func (r Row) FormatValue(v money.Amount) string {
	if r.Unit == UnitLines {
		return strconv.FormatInt(int64(v), 10)
	}
	if strings.HasPrefix(r.Unit, UnitQtyPrefix) {
		return Qty(v).String()
	}
	return v.String()
}

// String is one line: tier, key, hop, values, verdict and explanation.
func (r Row) String() string {
	return fmt.Sprintf("%d %s %s [%s] source=%s target=%s variance=%s %s: %s", r.Tier, r.Key, r.Hop, r.Unit,
		r.FormatValue(r.Source), r.FormatValue(r.Target), r.FormatValue(r.Variance), r.Verdict, r.Explanation)
}

// Fails reports whether a batch verdict calls for attention: anything but
// pass (variance, rejected, pending, or an unknown verdict).
func Fails(verdict string) bool { return verdict != VerdictPass }

// rank orders verdicts for a batch: the worst one wins.
func rank(v string) int {
	switch v {
	case VerdictPass:
		return 0
	case VerdictPending:
		return 1
	case VerdictRejected, VerdictHeld:
		return 2
	}
	return 3 // variance, or anything unknown
}
