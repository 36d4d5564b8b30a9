// Package resolutegl is the resolute-gl flow's mapper: an Epic Resolute
// journal file, through the COA crosswalk, to an FBDI GlInterface.zip for
// Fusion Journal Import. It validates the whole batch before it writes a
// single line: file checks, every line mapped, and debits equal to credits
// per journal and balancing segment. A batch that fails is rejected whole,
// with a report naming each bad line.
package resolutegl

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/fbdi"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/resolute"
	"github.com/sinewhq/sinew/pkg/resolute/clarity"
)

// Flow is this flow's id in flows.yaml.
const Flow = "resolute-gl"

// Options say how to map.
type Options struct {
	// Flow is the id of the flow mapped (Resolute journals are a shape
	// other GL flows use too: EntryFor); Flow when empty.
	Flow   string
	Layout resolute.Layout
	// Clarity is the site's Clarity extract (BuildClarity).
	Clarity   resolute.Clarity
	GL        flows.GL
	Crosswalk *crosswalk.Table
	// Chart, when set, holds Fusion's valid account combinations: a line
	// mapped to any other combination rejects the batch here, not in Fusion.
	Chart *crosswalk.Chart
	// BalancingSegment is the index of the balancing segment (company) in
	// the crosswalk's segments; 0 when unset.
	BalancingSegment int
	// Created is DATE_CREATED; today when zero.
	Created time.Time
	// Period names the accounting period of a date; "Jan-26" style when nil.
	Period func(time.Time) string
}

// Result is what Build did.
type Result struct {
	Report           *resolute.Report
	Findings         []resolute.Finding // mapping and balancing findings
	Accepted         bool
	BatchID          string
	CrosswalkVersion string
	Lines            int64
	Debit, Credit    money.Amount
	Groups           []Group
}

// Group is one journal as written: its GROUP_ID and totals.
type Group struct {
	ID            int64
	Journal       string // REFERENCE4
	Debit, Credit money.Amount
	Lines         int64
}

// AllFindings returns the file and mapping findings in line order, the
// ones about the whole batch (line 0) last.
func (r *Result) AllFindings() []resolute.Finding {
	all := append(append([]resolute.Finding(nil), r.Report.Findings...), r.Findings...)
	rank := func(f resolute.Finding) int {
		if f.Line == 0 {
			return int(^uint(0) >> 1)
		}
		return f.Line
	}
	sort.SliceStable(all, func(i, j int) bool { return rank(all[i]) < rank(all[j]) })
	return all
}

// GroupKey is the key GROUP_ID derives from: flow, batch, journal.
func GroupKey(batchID, journal string) string { return GroupKeyOf(Flow, batchID, journal) }

// GroupKeyOf is GroupKey for flow: two flows' journals never share a GROUP_ID.
func GroupKeyOf(flow, batchID, journal string) string { return flow + ":" + batchID + ":" + journal }

// Build reads src twice: once to validate and map every line, and — only
// if all of it passes — once more to write the FBDI zip to out. Memory
// stays bounded whatever the file's size.
func Build(ctx context.Context, src io.ReadSeeker, out io.Writer, o Options) (*Result, error) {
	if o.Flow == "" {
		o.Flow = Flow
	}
	if o.Crosswalk == nil {
		return nil, fmt.Errorf("%s: no crosswalk", o.Flow)
	}
	if o.Created.IsZero() {
		o.Created = time.Now()
	}
	if o.Period == nil {
		o.Period = func(t time.Time) string { return t.Format("Jan-06") }
	}
	res := &Result{CrosswalkVersion: o.Crosswalk.Version}
	type bal struct {
		dr, cr      money.Amount
		first, last int // the file lines of the journal on this balancing segment
		lines       int64
	}
	balances := map[string]*bal{} // journal|balancing segment
	var keyBuf, lookupBuf, chartBuf []byte
	maxFindings := 1000
	findSpan := func(line, last int, field, msg string) {
		if len(res.Findings) < maxFindings {
			res.Findings = append(res.Findings, resolute.Finding{Line: line, Last: last, Field: field, Msg: msg})
		}
	}
	find := func(line int, field, msg string) { findSpan(line, 0, field, msg) }
	journalKey := journalKeyer(o.Layout)

	// Pass 1: validate the file, map every line, balance per journal and company.
	rep, err := o.Layout.Read(src, func(l *resolute.Line) error {
		segs, _, err := o.Crosswalk.Lookup(key(l), lookupBuf)
		if err != nil {
			find(l.Number, "gl_account", fmt.Sprintf("no crosswalk mapping for service area %s, cost center %s, account %s (fin class %s, payor %s) on %s in crosswalk %s",
				l.ServiceArea, l.CostCenter, l.GLAccount, l.FinClass, l.Payor, l.PostingDate.Format("2006-01-02"), o.Crosswalk.Version))
			return ctx.Err()
		}
		if o.Chart != nil && !o.Chart.Valid(segs, chartBuf) {
			find(l.Number, "gl_account", fmt.Sprintf("crosswalk %s maps service area %s, cost center %s, account %s to %s, which is not a valid combination in Fusion's chart",
				o.Crosswalk.Version, l.ServiceArea, l.CostCenter, l.GLAccount, strings.Join(segs, ".")))
			return ctx.Err()
		}
		keyBuf = journalKey(keyBuf[:0], l)
		keyBuf = append(keyBuf, '#')
		keyBuf = append(keyBuf, segs[min(o.BalancingSegment, len(segs)-1)]...)
		b := balances[string(keyBuf)]
		if b == nil {
			b = &bal{first: l.Number}
			balances[string(keyBuf)] = b
		}
		b.last = l.Number
		b.lines++
		b.dr += l.Debit
		b.cr += l.Credit
		return ctx.Err()
	})
	res.Report = rep
	if err != nil {
		return res, err
	}
	res.BatchID = rep.Header.BatchID
	keys := make([]string, 0, len(balances))
	for k := range balances {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	unmapped := len(res.Findings) > 0
	for _, k := range keys {
		if unmapped {
			break // balance by company is only meaningful once every line is mapped
		}
		if b := balances[k]; b.dr != b.cr {
			journal, company, _ := strings.Cut(k, "#")
			// The span of the journal's lines on that segment: a finding at
			// "line 0" sent people looking for a line that is not there.
			findSpan(b.first, b.last, "", fmt.Sprintf("journal %s is unbalanced for balancing segment %s: debits %s, credits %s (%d of its lines)",
				journal, company, b.dr, b.cr, b.lines))
		}
	}
	if !rep.OK() || len(res.Findings) > 0 {
		return res, nil
	}

	// Pass 2: write the FBDI file.
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return res, fmt.Errorf("%s: rewind: %w", o.Flow, err)
	}
	w, err := fbdi.NewWriter(out, fbdi.Options{})
	if err != nil {
		return res, err
	}
	groups := map[string]*Group{}
	var order []*Group
	var fl fbdi.Line
	batchDesc := fmt.Sprintf("Epic Resolute %s %s batch %s", rep.Header.Kind, rep.Header.PostingDate.Format("2006-01-02"), res.BatchID)
	_, err = o.Layout.Read(src, func(l *resolute.Line) error {
		segs, _, err := o.Crosswalk.Lookup(key(l), lookupBuf)
		if err != nil {
			return fmt.Errorf("%s: line %d: crosswalk changed between passes: %w", o.Flow, l.Number, err)
		}
		keyBuf = journalKey(keyBuf[:0], l)
		g := groups[string(keyBuf)]
		if g == nil {
			journal := res.BatchID + "-" + string(keyBuf)
			g = &Group{ID: fbdi.GroupID(GroupKeyOf(o.Flow, res.BatchID, string(keyBuf))), Journal: journal}
			groups[string(keyBuf)] = g
			order = append(order, g)
		}
		fl = fbdi.Line{
			LedgerName: o.GL.Ledger, AccountingDate: l.PostingDate, Source: o.GL.Source, Category: o.GL.Category,
			Currency: o.GL.Currency, DateCreated: o.Created, Segments: segs,
			BatchName: res.BatchID, BatchDescription: batchDesc,
			JournalName: g.Journal, JournalDescription: "Resolute " + rep.Header.Kind + " " + string(keyBuf),
			LineDescription: string(l.Description), Reference21: res.BatchID + ":" + string(l.LineID),
			GroupID: g.ID, Period: o.Period(l.PostingDate),
		}
		if l.Debit != 0 {
			fl.EnteredDR, fl.HasDR = l.Debit, true
		} else {
			fl.EnteredCR, fl.HasCR = l.Credit, true
		}
		if err := w.Write(&fl); err != nil {
			return fmt.Errorf("%s: line %d: %w", o.Flow, l.Number, err)
		}
		g.Debit += l.Debit
		g.Credit += l.Credit
		g.Lines++
		res.Lines++
		res.Debit += l.Debit
		res.Credit += l.Credit
		return ctx.Err()
	})
	if err != nil {
		return res, err
	}
	if err := w.Close(); err != nil {
		return res, err
	}
	for _, g := range order {
		res.Groups = append(res.Groups, *g)
	}
	res.Accepted = true
	return res, nil
}

// BuildClarity converts a Clarity extract (format resolute.FormatClarityCSV
// or FormatClarityParquet) into the Resolute record stream in a temporary
// file under tmpDir, then builds it like any Resolute file: every finding
// names the extract's CSV line or Parquet row.
func BuildClarity(ctx context.Context, format string, src *os.File, tmpDir string, out io.Writer, o Options) (*Result, error) {
	pipe, err := os.CreateTemp(tmpDir, "clarity-*.txt")
	if err != nil {
		return nil, err
	}
	defer os.Remove(pipe.Name())
	defer pipe.Close()
	conv, err := clarity.Convert(pipe, src, format, o.Clarity, o.Layout)
	if err != nil {
		return nil, fmt.Errorf("%s: %s extract: %w", o.Flow, format, err)
	}
	if conv.Fatal {
		return &Result{Report: &resolute.Report{}, Findings: conv.Findings, CrosswalkVersion: o.Crosswalk.Version}, nil
	}
	if _, err := pipe.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	// A batch with conversion findings is rejected: its zip is not used.
	if !conv.OK() {
		out = io.Discard
	}
	res, err := Build(ctx, pipe, out, o)
	if res != nil && res.Report != nil {
		conv.Locate(res.Report.Findings)
		conv.Locate(res.Findings)
		if !conv.OK() {
			res.Findings = append(conv.Findings, res.Findings...)
			res.Accepted = false
		}
	}
	return res, err
}

func key(l *resolute.Line) crosswalk.Key {
	return crosswalk.Key{ServiceArea: l.ServiceArea, CostCenter: l.CostCenter, GLAccount: l.GLAccount,
		FinClass: l.FinClass, Payor: l.Payor, Date: l.PostingDate}
}

// journalKeyer appends a line's journal key (the layout's journal_by fields).
func journalKeyer(lay resolute.Layout) func([]byte, *resolute.Line) []byte {
	by := lay.JournalBy
	if len(by) == 0 {
		by = resolute.DefaultLayout().JournalBy
	}
	return func(b []byte, l *resolute.Line) []byte {
		for i, f := range by {
			if i > 0 {
				b = append(b, '|')
			}
			switch f {
			case "posting_date":
				b = l.PostingDate.AppendFormat(b, "2006-01-02")
			case "service_area":
				b = append(b, l.ServiceArea...)
			case "cost_center":
				b = append(b, l.CostCenter...)
			case "fin_class":
				b = append(b, l.FinClass...)
			case "payor":
				b = append(b, l.Payor...)
			case "tx_type":
				b = append(b, l.TxType...)
			}
		}
		return b
	}
}
