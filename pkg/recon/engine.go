package recon

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sinewhq/sinew/pkg/money"
)

// Input is everything the engine needs besides the source lines, which
// stream through Reconciler.Add.
type Input struct {
	Batch string // the batch id: every row's Scope

	// Stated are the control totals the source file states (its trailer).
	// The zero value means "not stated": the GlInterface lines' own totals
	// stand in.
	Stated ControlTotals
	// Hops are the control totals Sinew counted, in pipeline order.
	Hops []HopTotals

	// Fusion's read-back. Posted may instead stream through
	// Reconciler.Post, before the first Add.
	Posted         []PostedLine
	Rejected       []RejectedLine
	RejectedGroups []int64   // GROUP_IDs Journal Import held
	Balances       []Balance // optional

	Tolerance Tolerance

	// Final says Fusion's read lag is over: what Fusion does not show now
	// is missing (variance) rather than pending. It may be set until the
	// first Add.
	Final bool

	// MemoryBudget bounds the memory of tier 3's line index, in bytes (0:
	// DefaultMemoryBudget). Within it posted and source lines are sorted
	// in memory; beyond it in runs written to TempDir ("": os.TempDir()).
	// The results are the same either way.
	MemoryBudget int64
	TempDir      string
}

// Summary is a batch's verdict and counts. Verdict is the worst of its
// rows: variance, then rejected (rejected or held lines), then pending,
// then pass.
type Summary struct {
	Scope   string
	Verdict string

	Lines      int64 // source lines given to Add
	Posted     int64 // posted lines Fusion showed
	Groups     int64 // GROUP_IDs among the source lines
	Matched    int64 // source lines posted as sent
	Mismatched int64 // posted with another account or amount
	Rejected   int64 // rejected by Fusion
	Held       int64 // in a rejected group, not rejected themselves
	Missing    int64 // not in Fusion after the read lag, or from a posted group
	Pending    int64 // in groups Fusion does not show yet
	Extra      int64 // posted lines with no source line (or posted twice)
	Variances  int64 // rows with verdict variance, all tiers
}

// Row is the summary as the batch's tier-SummaryTier row: line counts
// (source lines against matched lines) and the verdict.
func (s Summary) Row() Row {
	return Row{
		Tier: SummaryTier, Scope: s.Scope, Key: SummaryKey, Unit: UnitLines,
		Source: money.Amount(s.Lines), Target: money.Amount(s.Matched), Variance: money.Amount(s.Matched - s.Lines),
		Verdict: s.Verdict, Explanation: s.Explain(),
	}
}

// Explain is the summary's counts in words.
func (s Summary) Explain() string {
	return fmt.Sprintf("%d lines: %d matched, %d mismatched, %d rejected, %d held, %d missing, %d pending; %d extra in Fusion; %d posted; %d variance rows",
		s.Lines, s.Matched, s.Mismatched, s.Rejected, s.Held, s.Missing, s.Pending, s.Extra, s.Posted, s.Variances)
}

// Result is a batch's reconciliation: the rows by tier (1, 2, 3) and the
// summary.
type Result struct {
	Rows    []Row
	Summary Summary
}

// Publishable returns the rows followed by the summary row: the order to
// publish them in, so that a reader who sees a batch's summary has seen
// its rows.
func (r *Result) Publishable() []Row {
	out := make([]Row, 0, len(r.Rows)+1)
	return append(append(out, r.Rows...), r.Summary.Row())
}

// Reconcile reconciles lines against in: NewReconciler, Add, Result.
func Reconcile(in *Input, lines []SourceLine) *Result {
	rc := NewReconciler(in)
	for i := range lines {
		_ = rc.Add(&lines[i]) // fails only after Result, or on spilling
	}
	return rc.Result()
}

// ErrFinished is returned by Add and Post after Result.
var ErrFinished = errors.New("recon: reconciliation already finished")

// ErrPostAfterAdd is returned by Post after the first Add: a source line
// is judged knowing which groups Fusion shows.
var ErrPostAfterAdd = errors.New("recon: posted line after the first source line")

type journalKey struct {
	group             int64
	currency, journal string
}

type acctKey struct {
	ledger, period, currency, account string
}

// acct accumulates one tier-2 account.
type acct struct {
	expected, posted, balance money.Amount
	pending                   int64 // expected lines of groups not visible yet
	inSource, hasBalance      bool
}

// group is tier 3's count of one GROUP_ID.
type group struct {
	id                                                           int64
	visible                                                      bool   // Fusion shows lines of it
	heldBy                                                       string // non-empty: rejected, and why
	rejected                                                     bool
	lines, matched, mismatched, rejLines, held, missing, pending int64
}

// Reconciler reconciles one batch: build it with NewReconciler (which
// takes in.Posted), stream the rest of Fusion's posted lines through Post
// (for example as fusion.Client.JournalLines' callback), then the source
// lines through Add (as ReadGlInterface's callback), then call Finish (or
// Result) once.
//
// Tiers 1 and 2 and the groups are counted as the lines stream by: one
// entry per journal, group and account. Tier 3 matches lines by
// REFERENCE21 with a merge-join: posted and source lines are each sorted
// by (REFERENCE21, order of arrival) and joined in Finish, then the rows
// of lines that did not pass are put back in source order. Each sort
// holds at most half of in.MemoryBudget and writes sorted runs to
// temporary files beyond it (at most 64 merged at once, 16 KiB of buffer
// each), so the memory does not grow with the batch: only in.Posted when
// given, in.Rejected, the rows of lines that did not pass and the
// per-journal, group and account entries do. Source and posted lines are
// not kept otherwise. A Reconciler is not safe for concurrent use; Close
// (or Finish) removes its files.
type Reconciler struct {
	in *Input

	postedSort, sourceSort *sorter
	nPosted, nSource       int64 // seq of the next posted and source line
	lastVisible            int64
	haveVisible            bool

	visible  map[int64]bool   // GROUP_IDs with posted lines
	rejByRef map[string]int32 // Journal Import's rejected lines by REFERENCE21
	rejSeen  []bool
	heldBy   map[int64]string // rejected GROUP_ID → what holds it
	posted   ControlTotals

	file, held ControlTotals
	currency   string // the lines' currency; "" before the first line
	mixed      bool   // more than one currency

	journals map[journalKey]*ControlTotals
	lastJK   journalKey
	lastJ    *ControlTotals

	groups []*group // in order of first appearance
	byID   map[int64]*group
	lastG  *group

	accts  map[acctKey]*acct
	lastAK acctKey
	lastA  *acct

	lineRows []seqRow // rows of source lines, by seq once Finish sorts them
	extras   []seqRow // rows of posted lines no source line claimed, by seq
	other    []Row    // rows of rejections of lines never sent
	sum      Summary
	added    bool
	done     bool
	err      error // spilling failed: Add and Finish return it
	res      *Result
}

// seqRow is a row and the seq of the line it is about.
type seqRow struct {
	seq int64
	Row
}

// NewReconciler takes in and its posted lines. in must not change until
// Finish, but for Final (see Input).
func NewReconciler(in *Input) *Reconciler {
	budget := in.MemoryBudget
	if budget <= 0 {
		budget = DefaultMemoryBudget
	}
	r := &Reconciler{
		in:         in,
		postedSort: newSorter(in.TempDir, budget/2),
		sourceSort: newSorter(in.TempDir, budget/2),
		visible:    make(map[int64]bool),
		rejByRef:   make(map[string]int32, len(in.Rejected)),
		rejSeen:    make([]bool, len(in.Rejected)),
		heldBy:     make(map[int64]string),
		journals:   make(map[journalKey]*ControlTotals),
		byID:       make(map[int64]*group),
		accts:      make(map[acctKey]*acct),
		sum:        Summary{Scope: in.Batch},
	}
	for i := range in.Posted {
		if r.err = r.post(&in.Posted[i]); r.err != nil {
			break
		}
	}
	for i := range in.Balances {
		b := &in.Balances[i]
		a := r.acct(b.Ledger, b.Period, b.Currency, b.Account)
		a.balance += b.Activity
		a.hasBalance = true
	}
	for i := range in.Rejected {
		rl := &in.Rejected[i]
		if _, dup := r.rejByRef[rl.Reference21]; !dup {
			r.rejByRef[rl.Reference21] = int32(i)
		}
		// Journal Import holds the whole group of a rejected line.
		if r.heldBy[rl.GroupID] == "" {
			r.heldBy[rl.GroupID] = "line " + rl.Reference21 + " rejected (" + fusionError(rl) + ")"
		}
	}
	for _, g := range in.RejectedGroups {
		if _, ok := r.heldBy[g]; !ok {
			r.heldBy[g] = ""
		}
	}
	return r
}

// Post adds one posted line of Fusion's read-back, after in.Posted's. Call
// it before the first Add. It keeps none of p's memory but its strings.
func (r *Reconciler) Post(p *PostedLine) error {
	switch {
	case r.done:
		return ErrFinished
	case r.added:
		return ErrPostAfterAdd
	}
	return r.post(p)
}

func (r *Reconciler) post(p *PostedLine) error {
	if !r.haveVisible || p.GroupID != r.lastVisible { // lines of a group come together
		r.visible[p.GroupID] = true
		r.lastVisible, r.haveVisible = p.GroupID, true
	}
	r.sum.Posted++
	r.posted.add(p.DR, p.CR)
	r.acct(p.Ledger, p.Period, p.Currency, p.Account).posted += p.DR - p.CR
	e := entry{ref: p.Reference21, seq: r.nPosted, group: p.GroupID, jeBatch: p.JeBatchID, dr: p.DR, cr: p.CR,
		account: p.Account, ledger: p.Ledger, period: p.Period, currency: p.Currency}
	r.nPosted++
	return r.postedSort.add(&e)
}

func fusionError(rl *RejectedLine) string {
	switch {
	case rl.Code == "":
		return rl.Text
	case rl.Text == "":
		return rl.Code
	}
	return rl.Code + ": " + rl.Text
}

func (r *Reconciler) acct(ledger, period, currency, account string) *acct {
	k := acctKey{ledger, period, currency, account}
	if r.lastA != nil && k == r.lastAK {
		return r.lastA
	}
	a := r.accts[k]
	if a == nil {
		a = &acct{}
		r.accts[k] = a
	}
	r.lastAK, r.lastA = k, a
	return a
}

func (r *Reconciler) group(id int64) *group {
	if r.lastG != nil && r.lastG.id == id {
		return r.lastG
	}
	g := r.byID[id]
	if g == nil {
		held, rejected := r.heldBy[id]
		g = &group{id: id, visible: r.visible[id], heldBy: held, rejected: rejected}
		r.byID[id] = g
		r.groups = append(r.groups, g)
	}
	r.lastG = g
	return g
}

// Add reconciles one source line. It keeps none of l's memory but its
// strings.
func (r *Reconciler) Add(l *SourceLine) error {
	if r.done {
		return ErrFinished
	}
	if r.err != nil {
		return r.err
	}
	r.added = true
	seq := r.nSource
	r.nSource++
	r.sum.Lines++
	r.file.add(l.DR, l.CR)
	switch {
	case r.currency == "":
		r.currency = l.Currency
	case r.currency != l.Currency:
		r.mixed = true
	}

	// Tier 1: debits = credits per journal.
	jk := journalKey{l.GroupID, l.Currency, l.Journal}
	if r.lastJ == nil || jk != r.lastJK {
		j := r.journals[jk]
		if j == nil {
			j = &ControlTotals{}
			r.journals[jk] = j
		}
		r.lastJK, r.lastJ = jk, j
	}
	r.lastJ.add(l.DR, l.CR)

	g := r.group(l.GroupID)
	g.lines++
	net := l.DR - l.CR

	// Tier 2: only accepted groups are expected in Fusion's balances.
	if g.rejected {
		r.held.add(l.DR, l.CR)
	} else {
		a := r.acct(l.Ledger, l.Period, l.Currency, l.Account)
		a.expected += net
		a.inSource = true
		if !g.visible && !r.in.Final {
			a.pending++
		}
	}

	// Tier 3: a rejected line is judged now; the others once joined with
	// the posted lines (Finish).
	if ri, ok := r.rejByRef[l.Reference21]; ok {
		r.rejSeen[ri] = true
		g.rejLines++
		r.sum.Rejected++
		row := Row{Tier: TierLines, Scope: r.in.Batch, Key: l.Reference21, Hop: HopFusion, Unit: l.Currency, Source: net}
		row.Verdict = VerdictRejected
		row.Variance = -net
		row.Explanation = "Fusion rejected the line: " + fusionError(&r.in.Rejected[ri])
		if rl := &r.in.Rejected[ri]; rl.GroupID != l.GroupID {
			row.Explanation += fmt.Sprintf(" (Fusion reports GROUP_ID %d, Sinew sent %d)", rl.GroupID, l.GroupID)
		}
		r.lineRows = append(r.lineRows, seqRow{seq, row})
		return nil
	}
	e := entry{ref: l.Reference21, seq: seq, group: l.GroupID, dr: l.DR, cr: l.CR,
		account: l.Account, ledger: l.Ledger, period: l.Period, currency: l.Currency}
	r.err = r.sourceSort.add(&e)
	return r.err
}

// line judges source line l against p, the first posted line of its
// REFERENCE21 (nil: none); matched says whether an earlier source line
// claimed p.
func (r *Reconciler) line(l *entry, p *entry, matched *bool) {
	g := r.group(l.group)
	net := l.dr - l.cr
	row := Row{Tier: TierLines, Scope: r.in.Batch, Key: l.ref, Hop: HopFusion, Unit: l.currency, Source: net}
	posted := p != nil
	if g.rejected {
		g.held++
		r.sum.Held++
		row.Verdict = VerdictHeld
		row.Variance = -net
		why := g.heldBy
		if why == "" {
			why = "Journal Import rejected the group"
		}
		row.Explanation = fmt.Sprintf("GROUP_ID %d not posted: %s", l.group, why)
		if posted {
			// A held line must not be in Fusion: that is a variance.
			*matched = true
			row.Verdict = VerdictVariance
			row.Target = p.dr - p.cr
			row.Variance = row.Target - net
			row.Explanation = fmt.Sprintf("posted in JE batch %d although GROUP_ID %d was rejected (%s)", p.jeBatch, l.group, why)
		}
		r.lineRows = append(r.lineRows, seqRow{l.seq, row})
		return
	}
	switch {
	case posted && *matched:
		g.mismatched++
		r.sum.Mismatched++
		row.Verdict = VerdictVariance
		row.Explanation = "REFERENCE21 repeated among the source lines; the posted line is matched to an earlier one"
		row.Variance = -net
		r.lineRows = append(r.lineRows, seqRow{l.seq, row})
	case posted:
		*matched = true
		if diff := lineDiff(l, p); diff != "" {
			g.mismatched++
			r.sum.Mismatched++
			row.Verdict = VerdictVariance
			row.Target = p.dr - p.cr
			row.Variance = row.Target - net
			row.Explanation = fmt.Sprintf("posted in JE batch %d with %s", p.jeBatch, diff)
			r.lineRows = append(r.lineRows, seqRow{l.seq, row})
			return
		}
		g.matched++
		r.sum.Matched++
	case g.visible:
		// Journal Import posts a group whole: a line absent from a posted
		// group is missing, not late.
		g.missing++
		r.sum.Missing++
		row.Verdict = VerdictVariance
		row.Variance = -net
		row.Explanation = fmt.Sprintf("missing in Fusion: GROUP_ID %d is posted without this line", l.group)
		r.lineRows = append(r.lineRows, seqRow{l.seq, row})
	case r.in.Final:
		// The whole group is absent: its group row says so, once.
		g.missing++
		r.sum.Missing++
	default:
		// Not visible yet: the group row says so, once.
		g.pending++
		r.sum.Pending++
	}
}

// join merge-joins the sorted posted and source lines by REFERENCE21.
// Of posted lines sharing one, the first (in read-back order) is the one
// a source line may claim; the others are extras.
func (r *Reconciler) join() error {
	ps, err := r.postedSort.iter()
	if err != nil {
		return err
	}
	ss, err := r.sourceSort.iter()
	if err != nil {
		return err
	}
	var p, l, first entry
	pok, err := ps.next(&p)
	if err != nil {
		return err
	}
	lok, err := ss.next(&l)
	if err != nil {
		return err
	}
	for pok || lok {
		ref := p.ref
		if !pok || lok && l.ref < ref {
			ref = l.ref
		}
		have := false
		for pok && p.ref == ref {
			if !have {
				first, have = p, true
			} else {
				r.extra(&p, fmt.Sprintf("posted twice: JE batch %d repeats the line of JE batch %d", p.jeBatch, first.jeBatch))
			}
			if pok, err = ps.next(&p); err != nil {
				return err
			}
		}
		matched := false
		for lok && l.ref == ref {
			if have {
				r.line(&l, &first, &matched)
			} else {
				r.line(&l, nil, &matched)
			}
			if lok, err = ss.next(&l); err != nil {
				return err
			}
		}
		if have && !matched {
			r.extra(&first, fmt.Sprintf("posted in JE batch %d (GROUP_ID %d, account %s) with no source line", first.jeBatch, first.group, first.account))
		}
	}
	return nil
}

func (r *Reconciler) extra(p *entry, expl string) {
	net := p.dr - p.cr
	r.sum.Extra++
	r.extras = append(r.extras, seqRow{p.seq, Row{Tier: TierLines, Scope: r.in.Batch, Key: p.ref, Hop: HopFusion,
		Unit: p.currency, Target: net, Variance: net, Verdict: VerdictVariance, Explanation: expl}})
}

// lineDiff names what differs between a source line and its posted line.
func lineDiff(l, p *entry) string {
	var d []string
	if l.account != p.account {
		d = append(d, "account "+p.account+" (sent "+l.account+")")
	}
	if l.dr != p.dr {
		d = append(d, "DR "+p.dr.String()+" (sent "+l.dr.String()+")")
	}
	if l.cr != p.cr {
		d = append(d, "CR "+p.cr.String()+" (sent "+l.cr.String()+")")
	}
	if l.group != p.group {
		d = append(d, fmt.Sprintf("GROUP_ID %d (sent %d)", p.group, l.group))
	}
	if l.ledger != p.ledger {
		d = append(d, "ledger "+p.ledger+" (sent "+l.ledger+")")
	}
	if l.period != p.period {
		d = append(d, "period "+p.period+" (sent "+l.period+")")
	}
	if l.currency != p.currency {
		d = append(d, "currency "+p.currency+" (sent "+l.currency+")")
	}
	return strings.Join(d, ", ")
}

// Result is Finish for callers whose reconciliation cannot fail: one
// that never exceeds in.MemoryBudget does no I/O. It panics if Finish
// fails.
func (r *Reconciler) Result() *Result {
	res, err := r.Finish()
	if err != nil {
		panic(err)
	}
	return res
}

// Finish finishes the reconciliation: the merge-join of tier 3, posted
// lines no source line claimed, rejections of lines never sent, then the
// rows of tiers 1, 2 and 3 and the summary. Call it after the last Add;
// later calls return the same. It fails only on reading or writing
// spilled lines.
func (r *Reconciler) Finish() (*Result, error) {
	if r.done {
		return r.res, r.err
	}
	r.done = true
	defer r.Close()
	if r.err != nil {
		return nil, r.err
	}
	if r.err = r.join(); r.err != nil {
		return nil, r.err
	}
	r.rejectedUnsent()
	var rows []Row
	rows = r.tier1(rows)
	rows = r.tier2(rows)
	slices.SortFunc(r.lineRows, func(a, b seqRow) int { return cmp.Compare(a.seq, b.seq) })
	slices.SortFunc(r.extras, func(a, b seqRow) int { return cmp.Compare(a.seq, b.seq) })
	rows = slices.Grow(rows, len(r.lineRows)+len(r.extras)+len(r.other))
	for _, sr := range r.lineRows {
		rows = append(rows, sr.Row)
	}
	for _, sr := range r.extras {
		rows = append(rows, sr.Row)
	}
	rows = append(rows, r.other...)
	r.lineRows, r.extras, r.other = nil, nil, nil
	rows = r.groupRows(rows)
	r.sum.Groups = int64(len(r.groups))
	r.sum.Verdict = VerdictPass
	for i := range rows {
		if rows[i].Verdict == VerdictVariance {
			r.sum.Variances++
		}
		if rank(rows[i].Verdict) > rank(r.sum.Verdict) {
			r.sum.Verdict = rows[i].Verdict
		}
	}
	if r.sum.Verdict == VerdictHeld {
		r.sum.Verdict = VerdictRejected
	}
	r.res = &Result{Rows: rows, Summary: r.sum}
	return r.res, nil
}

// Close removes the reconciliation's temporary files: call it (or
// Finish) when giving up on one. It may be called more than once.
func (r *Reconciler) Close() {
	r.postedSort.close()
	r.sourceSort.close()
}

// Spilled reports whether lines went to temporary files (the batch
// exceeded in.MemoryBudget).
func (r *Reconciler) Spilled() bool {
	return r.postedSort.spilled() || r.sourceSort.spilled()
}

// rejectedUnsent reports the rejections of lines never sent.
func (r *Reconciler) rejectedUnsent() {
	for i, seen := range r.rejSeen {
		if seen {
			continue
		}
		rl := &r.in.Rejected[i]
		r.other = append(r.other, Row{Tier: TierLines, Scope: r.in.Batch, Key: rl.Reference21, Hop: HopFusion,
			Verdict: VerdictVariance, Explanation: fmt.Sprintf("Fusion rejected a line Sinew did not send (GROUP_ID %d, %s)", rl.GroupID, fusionError(rl))})
	}
}

// unit is the currency of batch-wide amounts: "" when lines mix currencies.
func (r *Reconciler) unit() string {
	if r.mixed {
		return ""
	}
	return r.currency
}

// pendingGroups reports whether some accepted group is not visible yet.
func (r *Reconciler) pendingGroups() bool {
	return r.sum.Pending > 0
}

func (r *Reconciler) tier1(rows []Row) []Row {
	stated := r.in.Stated
	if stated == (ControlTotals{}) {
		stated = r.file
	}
	submitted, haveSubmitted := stated, false
	for _, h := range r.in.Hops {
		if h.Hop == HopSubmitted {
			submitted, haveSubmitted = h.ControlTotals, true
		}
	}
	cmpTo := "the totals stated by the source file"
	if haveSubmitted {
		cmpTo = "submitted"
	}
	for _, h := range r.in.Hops {
		if h.Hop == HopAccepted {
			got := h.plus(r.held)
			rows = r.totals(rows, h.Hop, submitted, got, false,
				fmt.Sprintf("accepted %d + held by rejected groups %d lines, against %s", h.Lines, r.held.Lines, cmpTo))
			continue
		}
		rows = r.totals(rows, h.Hop, stated, h.ControlTotals, false, "against the totals stated by the source file")
	}
	rows = r.totals(rows, HopFile, stated, r.file, false, "the GlInterface lines, against the totals stated by the source file")
	rows = r.totals(rows, HopFusion, submitted, r.posted.plus(r.held), r.pendingGroups() && !r.in.Final,
		fmt.Sprintf("posted %d + held by rejected groups %d lines, against %s", r.posted.Lines, r.held.Lines, cmpTo))

	// Debits = credits per journal: a row per unbalanced journal, one for all.
	keys := make([]journalKey, 0, len(r.journals))
	for k, j := range r.journals {
		if j.DR != j.CR {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b journalKey) int {
		return cmp.Or(cmp.Compare(a.group, b.group), cmp.Compare(a.currency, b.currency), cmp.Compare(a.journal, b.journal))
	})
	for _, k := range keys {
		j := r.journals[k]
		rows = append(rows, Row{Tier: TierTotals, Scope: r.in.Batch, Hop: HopFile, Unit: k.currency,
			Key:    "journal/" + strconv.FormatInt(k.group, 10) + "/" + k.currency + "/" + k.journal,
			Source: j.DR, Target: j.CR, Variance: j.CR - j.DR, Verdict: VerdictVariance,
			Explanation: fmt.Sprintf("journal %s of GROUP_ID %d: debits %s ≠ credits %s", k.journal, k.group, j.DR, j.CR)})
	}
	n, bad := int64(len(r.journals)), int64(len(keys))
	jr := Row{Tier: TierTotals, Scope: r.in.Batch, Key: "journals", Hop: HopFile, Unit: UnitLines,
		Source: money.Amount(n), Target: money.Amount(n - bad), Variance: money.Amount(-bad), Verdict: VerdictPass,
		Explanation: fmt.Sprintf("%d of %d journals balanced (DR = CR)", n-bad, n)}
	if bad > 0 {
		jr.Verdict = VerdictVariance
	}
	return append(rows, jr)
}

// totals appends a hop's three rows: lines (exact), DR and CR (within
// tolerance). A difference is pending instead of a variance when lag says
// Fusion has not shown everything yet.
func (r *Reconciler) totals(rows []Row, hop string, want, got ControlTotals, lag bool, what string) []Row {
	base := Row{Tier: TierTotals, Scope: r.in.Batch, Hop: hop}
	if lag {
		what += "; groups not visible in Fusion yet"
	}
	verdict := func(ok bool) (string, string) {
		switch {
		case ok:
			return VerdictPass, what
		case lag:
			return VerdictPending, what
		}
		return VerdictVariance, what
	}
	lines := base
	lines.Key, lines.Unit = hop+"/lines", UnitLines
	lines.Source, lines.Target, lines.Variance = money.Amount(want.Lines), money.Amount(got.Lines), money.Amount(got.Lines-want.Lines)
	lines.Verdict, lines.Explanation = verdict(got.Lines == want.Lines)
	rows = append(rows, lines)
	for _, side := range [...]struct {
		key       string
		want, got money.Amount
	}{{"dr", want.DR, got.DR}, {"cr", want.CR, got.CR}} {
		a := base
		a.Key, a.Unit = hop+"/"+side.key, r.unit()
		a.Source, a.Target, a.Variance = side.want, side.got, side.got-side.want
		a.Verdict, a.Explanation = r.amountVerdict(a.Source, a.Variance, lag, what)
		rows = append(rows, a)
	}
	return rows
}

// amountVerdict judges an amount variance against the tolerance.
func (r *Reconciler) amountVerdict(source, variance money.Amount, lag bool, what string) (string, string) {
	switch {
	case variance == 0:
		return VerdictPass, what
	case r.in.Tolerance.Within(source, variance):
		return VerdictPass, what + "; within tolerance (" + r.in.Tolerance.String() + ")"
	case lag:
		return VerdictPending, what
	}
	return VerdictVariance, what + "; beyond tolerance (" + r.in.Tolerance.String() + ")"
}

// segment is SEGMENT1 of an account: its text before the first "-".
func segment(account string) string {
	s, _, _ := strings.Cut(account, "-")
	return s
}

func (r *Reconciler) tier2(rows []Row) []Row {
	keys := make([]acctKey, 0, len(r.accts))
	for k := range r.accts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b acctKey) int {
		return cmp.Or(cmp.Compare(a.ledger, b.ledger), cmp.Compare(a.period, b.period), cmp.Compare(a.currency, b.currency),
			cmp.Compare(segment(a.account), segment(b.account)), cmp.Compare(a.account, b.account))
	})
	withBalances := len(r.in.Balances) > 0
	prefix := func(k acctKey) string { return k.ledger + "|" + k.period + "|" + k.currency + "|" }
	judge := func(row *Row, pending int64, what string) {
		lag := pending > 0 && !r.in.Final
		row.Verdict, row.Explanation = r.amountVerdict(row.Source, row.Variance, lag, what)
		if row.Verdict == VerdictPending {
			row.Explanation += fmt.Sprintf("; %d expected lines in groups not visible in Fusion yet", pending)
		}
	}
	for i := 0; i < len(keys); {
		// One segment row, then its accounts.
		k0 := keys[i]
		seg := segment(k0.account)
		j := i
		var s acct
		for ; j < len(keys); j++ {
			k := keys[j]
			if k.ledger != k0.ledger || k.period != k0.period || k.currency != k0.currency || segment(k.account) != seg {
				break
			}
			a := r.accts[k]
			s.expected += a.expected
			s.posted += a.posted
			s.pending += a.pending
		}
		sr := Row{Tier: TierBalances, Scope: r.in.Batch, Key: "segment|" + prefix(k0) + seg, Hop: HopPosted, Unit: k0.currency,
			Source: s.expected, Target: s.posted, Variance: s.posted - s.expected}
		judge(&sr, s.pending, "balancing segment "+seg+": net activity of accepted source lines against Fusion's posted lines")
		rows = append(rows, sr)
		for ; i < j; i++ {
			k := keys[i]
			a := r.accts[k]
			ar := Row{Tier: TierBalances, Scope: r.in.Batch, Key: "account|" + prefix(k) + k.account, Hop: HopPosted, Unit: k.currency,
				Source: a.expected, Target: a.posted, Variance: a.posted - a.expected}
			judge(&ar, a.pending, "account: net activity of accepted source lines against Fusion's posted lines")
			rows = append(rows, ar)
			if withBalances && (a.inSource || a.hasBalance) {
				br := Row{Tier: TierBalances, Scope: r.in.Batch, Key: "balance|" + prefix(k) + k.account, Hop: HopBalance, Unit: k.currency,
					Source: a.expected, Target: a.balance, Variance: a.balance - a.expected}
				what := "account: net activity of accepted source lines against Fusion's ledger balance activity"
				if !a.hasBalance {
					what += " (no balance returned)"
				}
				judge(&br, a.pending, what)
				rows = append(rows, br)
			}
		}
	}
	return rows
}

func (r *Reconciler) groupRows(rows []Row) []Row {
	for _, g := range r.groups {
		row := Row{Tier: TierLines, Scope: r.in.Batch, Key: "group/" + strconv.FormatInt(g.id, 10), Hop: HopFusion, Unit: UnitLines,
			Source: money.Amount(g.lines), Target: money.Amount(g.matched), Variance: money.Amount(g.matched - g.lines)}
		counts := fmt.Sprintf("%d lines: %d matched, %d mismatched, %d rejected, %d held, %d missing, %d pending",
			g.lines, g.matched, g.mismatched, g.rejLines, g.held, g.missing, g.pending)
		switch {
		case g.mismatched > 0 || g.missing > 0:
			row.Verdict = VerdictVariance
			if !g.visible && !g.rejected {
				counts += "; the group is not in Fusion after the read lag"
			}
		case g.rejected:
			row.Verdict = VerdictRejected
			why := g.heldBy
			if why == "" {
				why = "Journal Import rejected the group"
			}
			counts += "; " + why
		case g.pending > 0:
			row.Verdict = VerdictPending
			counts += "; the group is not visible in Fusion yet (read lag)"
		default:
			row.Verdict = VerdictPass
		}
		row.Explanation = counts
		rows = append(rows, row)
	}
	return rows
}
