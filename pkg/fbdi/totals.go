package fbdi

import (
	"cmp"
	"slices"
)

// Totals are the control totals of a file: what the reconciler's tier 1
// compares at every hop.
type Totals struct {
	Lines    int64
	DR, CR   Amount          // ENTERED_DR and ENTERED_CR summed over all lines
	Groups   []GroupTotals   // by GroupID, then Currency
	Journals []JournalTotals // by GroupID, Currency, Journal
}

// GroupTotals are the totals of one GROUP_ID in one currency.
type GroupTotals struct {
	GroupID  int64
	Currency string
	Lines    int64
	DR, CR   Amount
}

// JournalTotals are the totals of one journal: a REFERENCE4 value within a
// GROUP_ID and currency.
type JournalTotals struct {
	GroupID  int64
	Currency string
	Journal  string
	Lines    int64
	DR, CR   Amount
}

// Balanced reports whether debits equal credits in every journal, group
// and currency.
func (t *Totals) Balanced() bool {
	// Journals balanced ⇒ groups and currencies balanced.
	for _, j := range t.Journals {
		if j.DR != j.CR {
			return false
		}
	}
	return true
}

// bal accumulates one balance scope.
type bal struct {
	first  int // line of the scope's first line
	last   int // and of its last (kept for the file scope only)
	lines  int64
	dr, cr Amount
}

type groupKey struct {
	group    int64
	currency string
}

type journalKey struct {
	group             int64
	currency, journal string
}

// tally keeps the control totals shared by Writer and Check. Lines of a
// journal usually come together, so the last journal's balances are
// cached and most lines cost no map lookup.
type tally struct {
	lines    int64
	dr, cr   Amount
	journals map[journalKey]*bal
	groups   map[groupKey]*bal
	files    map[string]*bal // by currency

	last  journalKey
	lastJ *bal
	lastG *bal
	lastF *bal
}

func (t *tally) hit(group int64, currency, journal string) bool {
	return t.lastJ != nil && t.last.group == group && t.last.currency == currency && t.last.journal == journal
}

// hitBytes is hit for Check's []byte fields; the string conversions in
// the comparisons do not allocate.
func (t *tally) hitBytes(group int64, currency, journal []byte) bool {
	return t.lastJ != nil && t.last.group == group && t.last.currency == string(currency) && t.last.journal == string(journal)
}

// use makes (group, currency, journal) the cached scope, creating its
// balances, first seen at line.
func (t *tally) use(line int, group int64, currency, journal string) {
	if t.journals == nil {
		t.journals = make(map[journalKey]*bal)
		t.groups = make(map[groupKey]*bal)
		t.files = make(map[string]*bal)
	}
	k := journalKey{group, currency, journal}
	t.last = k
	t.lastJ = lookup(t.journals, k, line)
	t.lastG = lookup(t.groups, groupKey{group, currency}, line)
	t.lastF = lookup(t.files, currency, line)
}

func lookup[K comparable](m map[K]*bal, k K, line int) *bal {
	b := m[k]
	if b == nil {
		b = &bal{first: line}
		m[k] = b
	}
	return b
}

// add adds a line to the cached scope. On overflow nothing changes.
func (t *tally) add(dr, cr Amount) error {
	var sums [8]Amount
	var err error
	for i, p := range [...]struct{ a, b Amount }{
		{t.dr, dr}, {t.cr, cr}, {t.lastJ.dr, dr}, {t.lastJ.cr, cr},
		{t.lastG.dr, dr}, {t.lastG.cr, cr}, {t.lastF.dr, dr}, {t.lastF.cr, cr},
	} {
		if sums[i], err = add(p.a, p.b); err != nil {
			return err
		}
	}
	t.lines++
	t.dr, t.cr = sums[0], sums[1]
	t.lastJ.lines++
	t.lastJ.dr, t.lastJ.cr = sums[2], sums[3]
	t.lastG.lines++
	t.lastG.dr, t.lastG.cr = sums[4], sums[5]
	t.lastF.lines++
	t.lastF.dr, t.lastF.cr = sums[6], sums[7]
	return nil
}

func (t *tally) totals() Totals {
	out := Totals{Lines: t.lines, DR: t.dr, CR: t.cr}
	for k, b := range t.groups {
		out.Groups = append(out.Groups, GroupTotals{k.group, k.currency, b.lines, b.dr, b.cr})
	}
	slices.SortFunc(out.Groups, func(a, b GroupTotals) int {
		return cmp.Or(cmp.Compare(a.GroupID, b.GroupID), cmp.Compare(a.Currency, b.Currency))
	})
	for k, b := range t.journals {
		out.Journals = append(out.Journals, JournalTotals{k.group, k.currency, k.journal, b.lines, b.dr, b.cr})
	}
	slices.SortFunc(out.Journals, func(a, b JournalTotals) int {
		return cmp.Or(cmp.Compare(a.GroupID, b.GroupID), cmp.Compare(a.Currency, b.Currency),
			cmp.Compare(a.Journal, b.Journal))
	})
	return out
}

// unbalanced returns a finding for every unbalanced journal and group (at
// its first line) and currency (line 0), in that order.
func (t *tally) unbalanced() []*LineError {
	var out []*LineError
	for k, b := range t.journals {
		if b.dr != b.cr {
			out = append(out, &LineError{Line: b.first, Column: "REFERENCE4", Err: &UnbalancedError{
				Scope: ScopeJournal, GroupID: k.group, Currency: k.currency, Journal: k.journal, DR: b.dr, CR: b.cr}})
		}
	}
	for k, b := range t.groups {
		if b.dr != b.cr {
			out = append(out, &LineError{Line: b.first, Column: "GROUP_ID", Err: &UnbalancedError{
				Scope: ScopeGroup, GroupID: k.group, Currency: k.currency, DR: b.dr, CR: b.cr}})
		}
	}
	for cur, b := range t.files {
		if b.dr != b.cr {
			out = append(out, &LineError{Err: &UnbalancedError{Scope: ScopeFile, Currency: cur, DR: b.dr, CR: b.cr, First: b.first, Last: b.last}})
		}
	}
	slices.SortStableFunc(out, compareFindings)
	return out
}

// compareFindings orders findings by line, whole-file findings last; within
// a line, line findings keep their order (the sort is stable) and balance
// findings follow: journal, group, then file by currency.
func compareFindings(a, b *LineError) int {
	return cmp.Or(cmp.Compare(lineRank(a), lineRank(b)), cmp.Compare(scopeRank(a), scopeRank(b)),
		cmp.Compare(currency(a), currency(b)))
}

func lineRank(e *LineError) int {
	if e.Line == 0 {
		return int(^uint(0) >> 1)
	}
	return e.Line
}

func scopeRank(e *LineError) int {
	if u, ok := e.Err.(*UnbalancedError); ok {
		switch u.Scope {
		case ScopeJournal:
			return 1
		case ScopeGroup:
			return 2
		}
		return 3
	}
	return 0
}

func currency(e *LineError) string {
	if u, ok := e.Err.(*UnbalancedError); ok {
		return u.Currency
	}
	return ""
}
