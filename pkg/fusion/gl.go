package fusion

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/sinewhq/sinew/pkg/money"
)

// JournalBatchQuery selects journal batches; empty fields do not filter.
type JournalBatchQuery struct {
	Source, BatchName string
	GroupID           int64
}

// JournalBatch is a journal batch with its journals and lines.
type JournalBatch struct {
	ID                           int64
	Name, Status, Source, Period string
	GroupID                      int64
	Journals                     []JournalHeader
}

// JournalHeader is one journal of a batch.
type JournalHeader struct {
	Name, Category, Currency, Period, Status string
	Lines                                    []JournalLine
}

// JournalLine is one line of a journal. Segments are the account
// combination split on the chart's delimiter.
type JournalLine struct {
	Number      int
	Segments    []string
	Account     string
	DR, CR      money.Amount
	Description string
	Reference21 string
}

type link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
	Name string `json:"name"`
}

type wireBatch struct {
	JeBatchID            json.Number     `json:"JeBatchId"`
	BatchName            string          `json:"BatchName"`
	Status               string          `json:"Status"`
	StatusMeaning        string          `json:"StatusMeaning"`
	UserJeSourceName     string          `json:"UserJeSourceName"`
	AccountingPeriodName string          `json:"AccountingPeriodName"`
	DefaultPeriodName    string          `json:"DefaultPeriodName"`
	GroupID              json.Number     `json:"GroupId"`
	JournalHeaders       json.RawMessage `json:"journalHeaders"`
	Links                []link          `json:"links"`
}

type wireHeader struct {
	JeHeaderID           json.Number     `json:"JeHeaderId"`
	JournalName          string          `json:"JournalName"`
	UserJeCategoryName   string          `json:"UserJeCategoryName"`
	CurrencyCode         string          `json:"CurrencyCode"`
	AccountingPeriodName string          `json:"AccountingPeriodName"`
	Status               string          `json:"Status"`
	JournalLines         json.RawMessage `json:"journalLines"`
	Links                []link          `json:"links"`
}

type wireLine struct {
	LineNumber         json.Number `json:"LineNumber"`
	AccountCombination string      `json:"AccountCombination"`
	EnteredDebit       json.Number `json:"EnteredDebit"`
	EnteredCredit      json.Number `json:"EnteredCredit"`
	Description        string      `json:"Description"`
	Reference21        string      `json:"Reference21"`
}

const batchesPath = "/journalBatches"

// JournalBatches returns the batches matching q with their journals and
// lines (expand=journalHeaders.journalLines), following every page,
// including pages of expanded children.
func (c *Client) JournalBatches(ctx context.Context, q JournalBatchQuery) ([]JournalBatch, error) {
	const op = "journalBatches"
	raw, err := batchQuery(op, q, "journalHeaders.journalLines")
	if err != nil {
		return nil, err
	}
	wbs, err := collect[wireBatch](ctx, c, op, batchesPath, raw)
	if err != nil {
		return nil, err
	}
	out := make([]JournalBatch, 0, len(wbs))
	for _, wb := range wbs {
		b, err := c.batch(ctx, wb)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func (c *Client) batch(ctx context.Context, wb wireBatch) (JournalBatch, error) {
	const op = "journalBatches"
	b := JournalBatch{Name: wb.BatchName, Status: wb.StatusMeaning, Source: wb.UserJeSourceName, Period: wb.AccountingPeriodName}
	if b.Status == "" {
		b.Status = wb.Status
	}
	if b.Period == "" {
		b.Period = wb.DefaultPeriodName
	}
	var err error
	if b.ID, err = optInt(wb.JeBatchID); err != nil {
		return b, &ProtocolError{Op: op, Err: fmt.Errorf("JeBatchId: %w", err)}
	}
	if b.GroupID, err = optInt(wb.GroupID); err != nil {
		return b, &ProtocolError{Op: op, Err: fmt.Errorf("GroupId: %w", err)}
	}
	whs, err := children[wireHeader](ctx, c, op, wb.JournalHeaders, wb.Links, "journalHeaders", "journalLines")
	if err != nil {
		return b, err
	}
	for _, wh := range whs {
		h := JournalHeader{Name: wh.JournalName, Category: wh.UserJeCategoryName, Currency: wh.CurrencyCode, Period: wh.AccountingPeriodName, Status: wh.Status}
		wls, err := children[wireLine](ctx, c, op, wh.JournalLines, wh.Links, "journalLines", "")
		if err != nil {
			return b, err
		}
		for _, wl := range wls {
			l, err := line(wl)
			if err != nil {
				return b, &ProtocolError{Op: op, Err: fmt.Errorf("batch %d: %w", b.ID, err)}
			}
			h.Lines = append(h.Lines, l)
		}
		b.Journals = append(b.Journals, h)
	}
	return b, nil
}

func line(wl wireLine) (JournalLine, error) {
	l := JournalLine{Account: wl.AccountCombination, Description: wl.Description, Reference21: wl.Reference21}
	n, err := optInt(wl.LineNumber)
	if err != nil {
		return l, fmt.Errorf("LineNumber: %w", err)
	}
	l.Number = int(n)
	if l.DR, err = optAmount(wl.EnteredDebit); err != nil {
		return l, fmt.Errorf("line %d EnteredDebit: %w", l.Number, err)
	}
	if l.CR, err = optAmount(wl.EnteredCredit); err != nil {
		return l, fmt.Errorf("line %d EnteredCredit: %w", l.Number, err)
	}
	l.Segments = splitAccount(l.Account)
	return l, nil
}

// splitAccount splits a concatenated account on its delimiter: the first
// character that is not a letter or digit (charts choose their own).
func splitAccount(a string) []string {
	if a == "" {
		return nil
	}
	i := strings.IndexFunc(a, func(r rune) bool {
		return !('0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z')
	})
	if i < 0 {
		return []string{a}
	}
	return strings.Split(a, a[i:i+1])
}

// children decodes an expanded child collection. Fusion sends it as a
// collection ({items, hasMore, ...}); when hasMore is set the rest is
// read from the child's own link. A bare array is accepted too.
func children[T any](ctx context.Context, c *Client, op string, raw json.RawMessage, links []link, name, expand string) ([]T, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '[' {
		var items []T
		if err := decodeNumbers(raw, &items); err != nil {
			return nil, &ProtocolError{Op: op, Err: fmt.Errorf("%s: %w", name, err)}
		}
		return items, nil
	}
	var p page[T]
	if err := decodeNumbers(raw, &p); err != nil {
		return nil, &ProtocolError{Op: op, Err: fmt.Errorf("%s: %w", name, err)}
	}
	if !p.HasMore {
		return p.Items, nil
	}
	// Truncated: read the whole child collection from its link.
	path, err := childPath(op, links, name)
	if err != nil {
		return nil, err
	}
	return collect[T](ctx, c, op, path, query("expand", expand))
}

// childPath is the path (below APIPath) of a resource's child collection
// name, from its links.
func childPath(op string, links []link, name string) (string, error) {
	var href string
	for _, l := range links {
		if l.Rel == "child" && l.Name == name {
			href = l.Href
		}
	}
	if href == "" {
		return "", &ProtocolError{Op: op, Err: fmt.Errorf("no %s child link", name)}
	}
	u, err := url.Parse(href)
	if err != nil {
		return "", &ProtocolError{Op: op, Err: fmt.Errorf("%s link: %w", name, err)}
	}
	i := strings.Index(u.Path, APIPath)
	if i < 0 {
		return "", &ProtocolError{Op: op, Err: fmt.Errorf("%s link %q outside %s", name, href, APIPath)}
	}
	return u.Path[i+len(APIPath):], nil
}

// JournalLines calls fn for every line of the batches matching q, page
// by page: the batches are read with their journal headers only, and each
// header's lines from its journalLines child collection (PageSize lines a
// request). Unlike JournalBatches, memory does not grow with the batch:
// a batch of a million lines is never one answer. b and h are the line's
// batch and journal (h.Lines is empty); fn must not keep them past the call.
func (c *Client) JournalLines(ctx context.Context, q JournalBatchQuery, fn func(b *JournalBatch, h *JournalHeader, l *JournalLine) error) error {
	const op = "journalBatches"
	raw, err := batchQuery(op, q, "journalHeaders")
	if err != nil {
		return err
	}
	return eachPage(ctx, c, op, batchesPath, raw, func(wbs []wireBatch) error {
		for _, wb := range wbs {
			b := JournalBatch{Name: wb.BatchName, Status: wb.StatusMeaning, Source: wb.UserJeSourceName, Period: wb.AccountingPeriodName}
			if b.Status == "" {
				b.Status = wb.Status
			}
			if b.Period == "" {
				b.Period = wb.DefaultPeriodName
			}
			var err error
			if b.ID, err = optInt(wb.JeBatchID); err != nil {
				return &ProtocolError{Op: op, Err: fmt.Errorf("JeBatchId: %w", err)}
			}
			if b.GroupID, err = optInt(wb.GroupID); err != nil {
				return &ProtocolError{Op: op, Err: fmt.Errorf("GroupId: %w", err)}
			}
			whs, err := children[wireHeader](ctx, c, op, wb.JournalHeaders, wb.Links, "journalHeaders", "")
			if err != nil {
				return err
			}
			for _, wh := range whs {
				h := JournalHeader{Name: wh.JournalName, Category: wh.UserJeCategoryName, Currency: wh.CurrencyCode, Period: wh.AccountingPeriodName, Status: wh.Status}
				path, err := childPath(op, wh.Links, "journalLines")
				if err != nil {
					return err
				}
				err = eachPage(ctx, c, op, path, "", func(wls []wireLine) error {
					for _, wl := range wls {
						l, err := line(wl)
						if err != nil {
							return &ProtocolError{Op: op, Err: fmt.Errorf("batch %d: %w", b.ID, err)}
						}
						if err := fn(&b, &h, &l); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// batchQuery is the query string of journalBatches for q.
func batchQuery(op string, q JournalBatchQuery, expand string) (string, error) {
	var conds []string
	for _, kv := range [][2]string{{"BatchName", q.BatchName}, {"UserJeSourceName", q.Source}} {
		if kv[1] == "" {
			continue
		}
		if strings.ContainsAny(kv[1], "'") {
			return "", fmt.Errorf("fusion: %s: %s %q: quotes cannot be queried", op, kv[0], kv[1])
		}
		conds = append(conds, kv[0]+"='"+kv[1]+"'")
	}
	if q.GroupID != 0 {
		conds = append(conds, "GroupId="+strconv.FormatInt(q.GroupID, 10))
	}
	return query("q", strings.Join(conds, ";"), "expand", expand, "orderBy", "JeBatchId"), nil
}

func optInt(n json.Number) (int64, error) {
	if n == "" {
		return 0, nil
	}
	return strconv.ParseInt(string(n), 10, 64)
}

// optAmount reads a JSON number literal as an exact amount; null or absent
// is zero. Literals like 1250.000 (trailing zeros) are accepted.
func optAmount(n json.Number) (money.Amount, error) {
	s := string(n)
	if s == "" {
		return 0, nil
	}
	if i := strings.IndexByte(s, '.'); i >= 0 {
		for len(s) > i+3 && s[len(s)-1] == '0' {
			s = s[:len(s)-1]
		}
	}
	return money.Parse(s)
}

// LedgerBalanceQuery selects balances with the AccountBalanceFinder. An
// Account segment of "%" matches every value of that segment.
type LedgerBalanceQuery struct {
	Ledger, Period, Currency, Account string
}

// Balance is one detail account's balance for a period: Activity is debits
// minus credits; Ending = Beginning + Activity.
type Balance struct {
	Ledger, Period, Currency, Account string
	Beginning, Activity, Ending       money.Amount
}

type wireBalance struct {
	LedgerName               string      `json:"LedgerName"`
	PeriodName               string      `json:"PeriodName"`
	CurrentAccountingPeriod  string      `json:"CurrentAccountingPeriod"`
	Currency                 string      `json:"Currency"`
	AccountCombination       string      `json:"AccountCombination"`
	DetailAccountCombination string      `json:"DetailAccountCombination"`
	BeginningBalance         json.Number `json:"BeginningBalance"`
	PeriodActivity           json.Number `json:"PeriodActivity"`
	EndingBalance            json.Number `json:"EndingBalance"`
}

// LedgerBalances returns the balances matching q (ledgerBalances,
// finder AccountBalanceFinder, mode Detail).
func (c *Client) LedgerBalances(ctx context.Context, q LedgerBalanceQuery) ([]Balance, error) {
	const op = "ledgerBalances"
	if q.Ledger == "" || q.Period == "" || q.Currency == "" || q.Account == "" {
		return nil, errors.New("fusion: ledgerBalances: Ledger, Period, Currency and Account are required")
	}
	for _, v := range []string{q.Ledger, q.Period, q.Currency, q.Account} {
		if strings.ContainsAny(v, ",;") {
			return nil, fmt.Errorf("fusion: ledgerBalances: %q: ',' and ';' cannot be passed to a finder", v)
		}
	}
	finder := "AccountBalanceFinder;accountCombination=" + q.Account + ",accountingPeriod=" + q.Period +
		",currency=" + q.Currency + ",ledgerName=" + q.Ledger + ",mode=Detail"
	wbs, err := collect[wireBalance](ctx, c, op, "/ledgerBalances", query("finder", finder))
	if err != nil {
		return nil, err
	}
	out := make([]Balance, 0, len(wbs))
	for _, w := range wbs {
		b := Balance{Ledger: w.LedgerName, Period: w.PeriodName, Currency: w.Currency, Account: w.DetailAccountCombination}
		if b.Period == "" {
			b.Period = w.CurrentAccountingPeriod
		}
		if b.Account == "" {
			b.Account = w.AccountCombination
		}
		var err error
		if b.Beginning, err = optAmount(w.BeginningBalance); err == nil {
			if b.Activity, err = optAmount(w.PeriodActivity); err == nil {
				b.Ending, err = optAmount(w.EndingBalance)
			}
		}
		if err != nil {
			return nil, &ProtocolError{Op: op, Err: fmt.Errorf("account %s: %w", b.Account, err)}
		}
		out = append(out, b)
	}
	return out, nil
}

// AccountCombinations returns the chart of accounts' enabled combinations
// (accountCombinationsLOV), each as its segment values in order: the valid
// combinations Sinew checks mapped journal lines against before a file is
// built. The _SEGMENTn attribute names are an assumption (docs/fusionsim.md).
func (c *Client) AccountCombinations(ctx context.Context) ([][]string, error) {
	const op = "accountCombinationsLOV"
	items, err := collect[map[string]json.RawMessage](ctx, c, op, "/accountCombinationsLOV", query("q", "EnabledFlag=Y"))
	if err != nil {
		return nil, err
	}
	out := make([][]string, 0, len(items))
	for _, it := range items {
		var segs []string
		for n := 1; n <= 30; n++ {
			raw, ok := it["_SEGMENT"+strconv.Itoa(n)]
			if !ok {
				break
			}
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				return nil, &ProtocolError{Op: op, Err: fmt.Errorf("_SEGMENT%d: %w", n, err)}
			}
			segs = append(segs, v)
		}
		// Trailing empty segments belong to no chart.
		for len(segs) > 0 && segs[len(segs)-1] == "" {
			segs = segs[:len(segs)-1]
		}
		if len(segs) > 0 {
			out = append(out, segs)
		}
	}
	return out, nil
}
