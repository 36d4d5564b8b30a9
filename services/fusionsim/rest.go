package fusionsim

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/money"
)

// amount is written as an exact JSON number literal (1234.50), never
// through float64.
type amount money.Amount

func (a amount) MarshalJSON() ([]byte, error) { return money.Amount(a).Append(nil), nil }

// paging reads limit and offset as Fusion does (default 25, at most 500).
func paging(q map[string]string) (limit, offset int, err error) {
	limit, offset = 25, 0
	if v, ok := q["limit"]; ok {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			return 0, 0, fmt.Errorf("the limit %q isn't a positive number", v)
		}
		limit = min(limit, 500)
	}
	if v, ok := q["offset"]; ok {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, fmt.Errorf("the offset %q isn't a non-negative number", v)
		}
	}
	return limit, offset, nil
}

// collection is Fusion's collection envelope around items[offset:offset+limit].
func collection(r *http.Request, q map[string]string, items []any, limit, offset int) map[string]any {
	total := len(items)
	end := min(offset+limit, total)
	page := []any{}
	if offset < total {
		page = items[offset:end]
	}
	c := map[string]any{
		"items": page, "count": len(page), "hasMore": end < total, "limit": limit, "offset": offset,
		"links": []any{link("self", baseURL(r)+r.URL.Path, "", "collection")},
	}
	if q["totalResults"] == "true" {
		c["totalResults"] = total
	}
	return c
}

func link(rel, href, name, kind string) map[string]any {
	l := map[string]any{"rel": rel, "href": href, "kind": kind}
	if name != "" {
		l["name"] = name
	}
	return l
}

// qFilter parses Fusion's q: Attr='value';Attr2=value (only '=').
func qFilter(q string) (map[string]string, error) {
	m := map[string]string{}
	for q = strings.TrimSpace(q); q != ""; {
		eq := strings.IndexByte(q, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("the q expression %q isn't valid (want Attr=value;...)", q)
		}
		attr := strings.TrimSpace(q[:eq])
		rest := strings.TrimLeft(q[eq+1:], " ")
		var val string
		if strings.HasPrefix(rest, "'") {
			end := strings.IndexByte(rest[1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote in q for %s", attr)
			}
			val, rest = rest[1:1+end], rest[end+2:]
		} else {
			end := strings.IndexByte(rest, ';')
			if end < 0 {
				end = len(rest)
			}
			val, rest = strings.TrimSpace(rest[:end]), rest[end:]
		}
		m[attr] = val
		rest = strings.TrimLeft(rest, " ")
		if rest != "" && rest[0] != ';' {
			return nil, fmt.Errorf("the q expression isn't valid near %q", rest)
		}
		q = strings.TrimPrefix(rest, ";")
		q = strings.TrimSpace(q)
	}
	return m, nil
}

var batchAttrs = map[string]func(*Batch) string{
	"JeBatchId":            func(b *Batch) string { return strconv.FormatInt(b.ID, 10) },
	"BatchName":            func(b *Batch) string { return b.Name },
	"UserJeSourceName":     func(b *Batch) string { return b.Source },
	"JournalSource":        func(b *Batch) string { return b.Source },
	"GroupId":              func(b *Batch) string { return strconv.FormatInt(b.GroupID, 10) },
	"AccountingPeriodName": func(b *Batch) string { return b.Period },
	"DefaultPeriodName":    func(b *Batch) string { return b.Period },
	"LedgerName":           func(b *Batch) string { return b.LedgerName },
	"Status":               func(b *Batch) string { return "P" },
	"StatusMeaning":        func(b *Batch) string { return b.Status },
	"RequestId":            func(b *Batch) string { return strconv.FormatInt(b.RequestID, 10) },
}

// visibleBatches are the batches the read lag lets a reader see. Called
// with s.mu held.
func (s *Server) visibleBatches(now time.Time) []*Batch {
	var out []*Batch
	for _, b := range s.st.batches {
		if !now.Before(b.VisibleAt) {
			out = append(out, b)
		}
	}
	return out
}

type expand struct{ headers, lines bool }

func parseExpand(v string) expand {
	var e expand
	for _, p := range strings.Split(v, ",") {
		switch strings.TrimSpace(p) {
		case "all", "journalHeaders.journalLines":
			e.headers, e.lines = true, true
		case "journalHeaders":
			e.headers = true
		case "journalLines":
			e.lines = true
		}
	}
	return e
}

func (s *Server) batchesGet(w http.ResponseWriter, r *http.Request) {
	q := queryParams(r)
	limit, offset, err := paging(q)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	filter, err := qFilter(q["q"])
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	for attr := range filter {
		if batchAttrs[attr] == nil {
			badRequest(w, "The attribute %s in the q parameter isn't valid for journalBatches.", attr)
			return
		}
	}
	ex := parseExpand(q["expand"])
	s.mu.Lock()
	var items []any
	for _, b := range s.visibleBatches(time.Now()) {
		ok := true
		for attr, want := range filter {
			if batchAttrs[attr](b) != want {
				ok = false
			}
		}
		if ok {
			items = append(items, s.batchItem(r, b, ex))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, collection(r, q, items, limit, offset))
}

func (s *Server) batchItem(r *http.Request, b *Batch, ex expand) map[string]any {
	var dr, cr money.Amount
	for _, j := range b.Journals {
		for _, l := range j.Lines {
			dr += l.DR
			cr += l.CR
		}
	}
	self := baseURL(r) + APIPath + "/journalBatches/" + strconv.FormatInt(b.ID, 10)
	it := map[string]any{
		"JeBatchId": b.ID, "BatchName": b.Name, "BatchDescription": b.Description,
		"Status": "P", "StatusMeaning": b.Status, "ActualFlag": "A",
		"UserJeSourceName": b.Source, "AccountingPeriodName": b.Period, "DefaultPeriodName": b.Period,
		"LedgerName": b.LedgerName, "RequestId": b.RequestID, "PostedDate": b.PostedAt.UTC().Format("2006-01-02"),
		"RunningTotalDr": amount(dr), "RunningTotalCr": amount(cr),
		"GroupId": b.GroupID, // ASSUMPTION: not an attribute of the real resource
		"links": []any{link("self", self, "journalBatches", "item"),
			link("child", self+"/child/journalHeaders", "journalHeaders", "collection")},
	}
	if ex.headers {
		items := make([]any, 0, len(b.Journals))
		for i := range b.Journals {
			items = append(items, s.headerItem(self, &b.Journals[i], ex.lines))
		}
		it["journalHeaders"] = s.expanded(items)
	}
	return it
}

// expanded is an expanded child collection, capped at ExpandLimit.
func (s *Server) expanded(items []any) map[string]any {
	limit := len(items)
	if s.cfg.ExpandLimit > 0 && limit > s.cfg.ExpandLimit {
		limit = s.cfg.ExpandLimit
	}
	return map[string]any{"items": items[:limit], "count": limit, "hasMore": limit < len(items), "limit": max(limit, 25), "offset": 0}
}

func (s *Server) headerItem(batchSelf string, j *Journal, lines bool) map[string]any {
	self := batchSelf + "/child/journalHeaders/" + strconv.FormatInt(j.ID, 10)
	it := map[string]any{
		"JeHeaderId": j.ID, "JournalName": j.Name, "JournalDescription": j.Description,
		"UserJeCategoryName": j.Category, "CurrencyCode": j.Currency, "AccountingPeriodName": j.Period,
		"Status": "P",
		"links": []any{link("self", self, "journalHeaders", "item"),
			link("child", self+"/child/journalLines", "journalLines", "collection")},
	}
	if lines {
		items := make([]any, 0, len(j.Lines))
		for _, l := range j.Lines {
			items = append(items, lineItem(l, j.Currency))
		}
		it["journalLines"] = s.expanded(items)
	}
	return it
}

func lineItem(l Line, currency string) map[string]any {
	it := map[string]any{
		"LineNumber": l.Number, "AccountCombination": l.Account, "CurrencyCode": currency,
		"Description":  l.Description,
		"Reference21":  l.Reference21, // ASSUMPTION: not an attribute of the real resource
		"EnteredDebit": nil, "EnteredCredit": nil, "AccountedDebit": nil, "AccountedCredit": nil,
	}
	if l.DR != 0 {
		it["EnteredDebit"], it["AccountedDebit"] = amount(l.DR), amount(l.DR)
	}
	if l.CR != 0 {
		it["EnteredCredit"], it["AccountedCredit"] = amount(l.CR), amount(l.CR)
	}
	return it
}

// findBatch returns the visible batch with the path's id. Called with s.mu held.
func (s *Server) findBatch(w http.ResponseWriter, r *http.Request) *Batch {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	for _, b := range s.visibleBatches(time.Now()) {
		if b.ID == id {
			return b
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("The journal batch %s doesn't exist.", r.PathValue("id")), "")
	return nil
}

func (s *Server) batchGet(w http.ResponseWriter, r *http.Request) {
	q := queryParams(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.findBatch(w, r); b != nil {
		writeJSON(w, http.StatusOK, s.batchItem(r, b, parseExpand(q["expand"])))
	}
}

func (s *Server) headersGet(w http.ResponseWriter, r *http.Request) {
	q := queryParams(r)
	limit, offset, err := paging(q)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.findBatch(w, r)
	if b == nil {
		return
	}
	ex := parseExpand(q["expand"])
	self := baseURL(r) + APIPath + "/journalBatches/" + strconv.FormatInt(b.ID, 10)
	items := make([]any, 0, len(b.Journals))
	for i := range b.Journals {
		items = append(items, s.headerItem(self, &b.Journals[i], ex.lines))
	}
	writeJSON(w, http.StatusOK, collection(r, q, items, limit, offset))
}

func (s *Server) linesGet(w http.ResponseWriter, r *http.Request) {
	q := queryParams(r)
	limit, offset, err := paging(q)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.findBatch(w, r)
	if b == nil {
		return
	}
	for _, j := range b.Journals {
		if strconv.FormatInt(j.ID, 10) == r.PathValue("hid") {
			// Only the page asked for is built: the reconciler pages through
			// journals of tens of thousands of lines.
			items := make([]any, len(j.Lines))
			for i := offset; i < min(offset+limit, len(j.Lines)); i++ {
				items[i] = lineItem(j.Lines[i], j.Currency)
			}
			writeJSON(w, http.StatusOK, collection(r, q, items, limit, offset))
			return
		}
	}
	writeError(w, http.StatusNotFound, "The journal "+r.PathValue("hid")+" doesn't exist.", "")
}

// balancesGet serves ledgerBalances with the AccountBalanceFinder
// (accountCombination, accountingPeriod, currency, ledgerName, mode) or a
// q on the resource's key attributes. A '%' segment matches all values.
func (s *Server) balancesGet(w http.ResponseWriter, r *http.Request) {
	q := queryParams(r)
	limit, offset, err := paging(q)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	var ledger, period, currency, account string
	if f, ok := q["finder"]; ok {
		name, vars, _ := strings.Cut(f, ";")
		if name != "AccountBalanceFinder" {
			badRequest(w, "The finder %q isn't supported on ledgerBalances (AccountBalanceFinder).", name)
			return
		}
		v := finderVars(vars)
		ledger, period, currency, account = v["ledgerName"], v["accountingPeriod"], v["currency"], v["accountCombination"]
	} else {
		f, err := qFilter(q["q"])
		if err != nil {
			badRequest(w, "%v", err)
			return
		}
		ledger, period, currency, account = f["LedgerName"], f["CurrentAccountingPeriod"], f["Currency"], f["AccountCombination"]
	}
	if ledger == "" || period == "" || currency == "" || account == "" {
		badRequest(w, "The ledger name, accounting period, currency and account combination are required.")
		return
	}
	pat := strings.Split(account, s.cfg.AccountDelimiter)
	match := func(a string) bool {
		segs := strings.Split(a, s.cfg.AccountDelimiter)
		if len(segs) != len(pat) {
			return false
		}
		for i := range segs {
			if pat[i] != "%" && pat[i] != segs[i] {
				return false
			}
		}
		return true
	}
	pt, pok := periodTime(period)
	type acc struct{ begin, act money.Amount }
	sums := map[string]*acc{}
	now := time.Now()
	s.mu.Lock()
	for _, e := range s.st.bal {
		if e.ledger != ledger || e.currency != currency || now.Before(e.visibleAt) || !match(e.account) {
			continue
		}
		a := sums[e.account]
		if a == nil {
			a = &acc{}
			sums[e.account] = a
		}
		switch et, eok := periodTime(e.period); {
		case e.period == period:
			a.act += e.amount
		case pok && eok && et.Before(pt):
			a.begin += e.amount
		}
	}
	s.mu.Unlock()
	if len(sums) == 0 && !strings.Contains(account, "%") {
		sums[account] = &acc{}
	}
	accts := make([]string, 0, len(sums))
	for a := range sums {
		accts = append(accts, a)
	}
	sort.Strings(accts)
	items := make([]any, 0, len(accts))
	for _, a := range accts {
		v := sums[a]
		items = append(items, map[string]any{
			"LedgerName": ledger, "LedgerSetName": nil, "AccountGroupName": nil, "AccountName": nil,
			"Currency": currency, "CurrentAccountingPeriod": period, "PeriodName": period,
			"AccountCombination": account, "DetailAccountCombination": a, "AmountType": "PTD",
			"BeginningBalance": amount(v.begin), "PeriodActivity": amount(v.act), "EndingBalance": amount(v.begin + v.act),
		})
	}
	writeJSON(w, http.StatusOK, collection(r, q, items, limit, offset))
}
