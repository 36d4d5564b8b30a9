package fusionsim

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/fbdi"
	"github.com/sinewhq/sinew/pkg/money"
)

// GL_INTERFACE column indexes (0-based, file order).
const (
	cStatus         = 0
	cLedgerID       = 1
	cAccountingDate = 2
	cSource         = 3
	cCategory       = 4
	cCurrency       = 5
	cDateCreated    = 6
	cActualFlag     = 7
	cSegment1       = 8
	cEnteredDR      = 38
	cEnteredCR      = 39
	cAccountedDR    = 40
	cAccountedCR    = 41
	cReference1     = 42
	cReference2     = 43
	cReference4     = 45
	cReference5     = 46
	cReference10    = 51
	cReference21    = 52
	cConvDate       = 64
	cGroupID        = 66
	cLedgerName     = 91
	cPeriodName     = 94
	nSegments       = 30
)

// InterfaceRow is a GL_INTERFACE row as the simulator holds it.
type InterfaceRow struct {
	ID                 int64
	LoadRequestID      int64
	Status             string // NEW, P, or error code(s) such as EF04
	StatusDescription  string
	LedgerID           string
	LedgerName         string
	AccountingDate     string
	Source, Category   string
	Currency           string
	Period             string
	Segments           []string // SEGMENT1..SEGMENT30
	DR, CR             money.Amount
	HasDR, HasCR       bool
	GroupID            int64
	BatchName          string // REFERENCE1
	BatchDescription   string // REFERENCE2
	JournalName        string // REFERENCE4
	JournalDescription string // REFERENCE5
	LineDescription    string // REFERENCE10
	Reference21        string
}

// Batch is a journal batch created by Journal Import.
type Batch struct {
	ID          int64
	Name        string
	Description string
	Source      string
	LedgerID    string
	LedgerName  string
	Period      string
	Status      string
	GroupID     int64
	RequestID   int64
	PostedAt    time.Time
	VisibleAt   time.Time // PostedAt + read lag
	Journals    []Journal
}

// Journal is a journal header with its lines.
type Journal struct {
	ID          int64
	Name        string
	Description string
	Category    string
	Currency    string
	Period      string
	Lines       []Line
}

// Line is a posted journal line.
type Line struct {
	Number      int
	Account     string
	Segments    []string
	DR, CR      money.Amount
	Description string
	Reference21 string
}

// GroupStats counts what Journal Import did with one GROUP_ID: Imports is
// how many runs selected it, Posted how many times it became journals
// (tests of Sinew's exactly-once posting assert 1), Held how many runs
// held it back for an error line.
type GroupStats struct {
	Imports, Posted, Held int
}

type balEntry struct {
	ledger, period, currency, account string
	amount                            money.Amount // DR - CR
	visibleAt                         time.Time
}

// state is everything a reset clears.
type state struct {
	nextReq, nextBatch, nextHeader, nextRow, nextDoc int64

	jobs      map[int64]*job
	order     []*job
	iface     []*InterfaceRow
	batches   []*Batch
	bal       []balEntry
	imports   map[int64]*GroupStats
	callbacks []*CallbackRecord
	running   int
	abort     chan struct{} // closed by Reset
}

func newState(firstReq int64) *state {
	return &state{
		nextReq: firstReq, nextBatch: 300100000000001, nextHeader: 300200000000001, nextRow: 1, nextDoc: 3000001,
		jobs: map[int64]*job{}, imports: map[int64]*GroupStats{}, abort: make(chan struct{}),
	}
}

func (st *state) group(g int64) *GroupStats {
	gs := st.imports[g]
	if gs == nil {
		gs = &GroupStats{}
		st.imports[g] = gs
	}
	return gs
}

// loadFile is "Load File to Interface": SQL*Loader into GL_INTERFACE. Any
// rejected record fails the load and leaves zero rows (observed on real
// pods: a malformed file gives ERROR and an empty interface).
func (s *Server) loadFile(fileName string, zipped []byte, reqID int64) ([]*InterfaceRow, string, bool) {
	var log strings.Builder
	fmt.Fprintf(&log, "Load File to Interface (request %d)\nFile: %s\n", reqID, fileName)
	fail := func(format string, a ...any) ([]*InterfaceRow, string, bool) {
		fmt.Fprintf(&log, format+"\n", a...)
		log.WriteString("SQL*Loader failed: no rows loaded into GL_INTERFACE.\n")
		return nil, log.String(), false
	}
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil {
		return fail("The file is not a valid zip archive.")
	}
	var entry *zip.File
	for _, f := range zr.File {
		if strings.EqualFold(path.Ext(f.Name), ".csv") && (entry == nil || strings.EqualFold(path.Base(f.Name), fbdi.DefaultEntry)) {
			entry = f
		}
	}
	if entry == nil {
		return fail("No .csv file found in the zip archive.")
	}
	fmt.Fprintf(&log, "Data file: %s\n", entry.Name)
	rc, err := entry.Open()
	if err != nil {
		return fail("Cannot open %s: %v", entry.Name, err)
	}
	defer rc.Close()
	rd := fbdi.NewReader(io.LimitReader(rc, 1<<30))
	var rows []*InterfaceRow
	rejected := 0
	reject := func(line int, why string) {
		rejected++
		if rejected <= 50 {
			fmt.Fprintf(&log, "Record %d: Rejected - Error on table GL_INTERFACE: %s\n", line, why)
		}
	}
	for {
		f, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			reject(rd.Line(), "malformed record")
			continue
		}
		if len(f) == 1 && strings.TrimSpace(f[0]) == "" {
			continue // blank line
		}
		if len(f) == fbdi.NumColumns+1 && f[fbdi.NumColumns] == fbdi.EndMarker {
			f = f[:fbdi.NumColumns]
		}
		if len(f) != fbdi.NumColumns {
			reject(rd.Line(), fmt.Sprintf("%d fields, want %d", len(f), fbdi.NumColumns))
			continue
		}
		row, why := parseRow(f)
		if why != "" {
			reject(rd.Line(), why)
			continue
		}
		row.LoadRequestID = reqID
		rows = append(rows, row)
	}
	if rejected > 0 {
		return fail("%d record(s) rejected.", rejected)
	}
	if len(rows) == 0 {
		return fail("The data file has no records.")
	}
	fmt.Fprintf(&log, "%d row(s) successfully loaded into GL_INTERFACE.\n", len(rows))
	return rows, log.String(), true
}

// parseRow checks what SQL*Loader checks (dates, numbers) and keeps what
// Journal Import reads. Messages name columns, never values.
func parseRow(f []string) (*InterfaceRow, string) {
	if strings.TrimSpace(f[cDateCreated]) == "" {
		return nil, "column DATE_CREATED: mandatory value missing"
	}
	for _, c := range []struct {
		i    int
		name string
		req  bool
	}{{cDateCreated, "DATE_CREATED", true}, {cAccountingDate, "ACCOUNTING_DATE", true}, {cConvDate, "CURRENCY_CONVERSION_DATE", false}} {
		v := strings.TrimSpace(f[c.i])
		if v == "" && !c.req {
			continue
		}
		if _, err := time.Parse("2006/01/02", v); err != nil || len(v) != 10 {
			return nil, "column " + c.name + ": invalid date (want YYYY/MM/DD)"
		}
	}
	r := &InterfaceRow{
		Status: strings.TrimSpace(f[cStatus]), LedgerID: strings.TrimSpace(f[cLedgerID]),
		LedgerName: f[cLedgerName], AccountingDate: f[cAccountingDate],
		Source: f[cSource], Category: f[cCategory], Currency: strings.TrimSpace(f[cCurrency]),
		Period:    strings.TrimSpace(f[cPeriodName]),
		BatchName: f[cReference1], BatchDescription: f[cReference2],
		JournalName: f[cReference4], JournalDescription: f[cReference5],
		LineDescription: f[cReference10], Reference21: f[cReference21],
		Segments: make([]string, nSegments),
	}
	if r.Status == "" {
		r.Status = "NEW"
	}
	for i := range nSegments {
		r.Segments[i] = strings.TrimSpace(f[cSegment1+i])
	}
	for _, c := range []struct {
		i    int
		name string
	}{{cEnteredDR, "ENTERED_DR"}, {cEnteredCR, "ENTERED_CR"}, {cAccountedDR, "ACCOUNTED_DR"}, {cAccountedCR, "ACCOUNTED_CR"}} {
		v := strings.TrimSpace(f[c.i])
		if v == "" {
			continue
		}
		a, err := money.Parse(v)
		if err != nil {
			return nil, "column " + c.name + ": invalid number"
		}
		switch c.i {
		case cEnteredDR:
			r.DR, r.HasDR = a, true
		case cEnteredCR:
			r.CR, r.HasCR = a, true
		}
	}
	if v := strings.TrimSpace(f[cGroupID]); v != "" {
		g, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, "column GROUP_ID: invalid number"
		}
		r.GroupID = g
	}
	if r.LedgerID != "" {
		if _, err := strconv.ParseInt(r.LedgerID, 10, 64); err != nil {
			return nil, "column LEDGER_ID: invalid number"
		}
	}
	if r.Period == "" {
		t, _ := time.Parse("2006/01/02", strings.TrimSpace(r.AccountingDate))
		r.Period = t.Format("Jan-06")
	}
	return r, ""
}

// importParams are JournalImportLauncher's parameters.
type importParams struct {
	DataAccessSet, Source, LedgerID, GroupID string
}

// parseParams reads "DAS,Source,LedgerId,GroupId,N,N,N".
func parseParams(list string) (importParams, error) {
	p := strings.Split(list, ",")
	if len(p) != 7 {
		return importParams{}, fmt.Errorf("the parameter list has %d values, want 7 (DataAccessSetId,Source,LedgerId,GroupId,PostErrorsToSuspense,CreateSummary,ImportDFF)", len(p))
	}
	for i := range p {
		p[i] = strings.TrimSpace(p[i])
	}
	ip := importParams{DataAccessSet: p[0], Source: p[1], LedgerID: p[2], GroupID: p[3]}
	if ip.Source == "" || ip.Source == "#NULL" {
		return ip, fmt.Errorf("parameter 2 (journal source) is required")
	}
	if _, err := strconv.ParseInt(ip.LedgerID, 10, 64); err != nil {
		return ip, fmt.Errorf("parameter 3 (ledger id) %q isn't a number", ip.LedgerID)
	}
	if ip.GroupID != "ALL" {
		if _, err := strconv.ParseInt(ip.GroupID, 10, 64); err != nil {
			return ip, fmt.Errorf("parameter 4 (group id) %q must be digits or ALL", ip.GroupID)
		}
	}
	if ip.DataAccessSet != "#NULL" && ip.DataAccessSet != "" {
		if _, err := strconv.ParseInt(ip.DataAccessSet, 10, 64); err != nil {
			return ip, fmt.Errorf("parameter 1 (data access set) %q must be a number or #NULL", ip.DataAccessSet)
		}
	}
	for i := 4; i < 7; i++ {
		if p[i] != "Y" && p[i] != "N" {
			return ip, fmt.Errorf("parameter %d must be Y or N", i+1)
		}
	}
	return ip, nil
}

func (s *Server) ledger(id string) *Ledger {
	for i := range s.cfg.Ledgers {
		if s.cfg.Ledgers[i].ID == id {
			return &s.cfg.Ledgers[i]
		}
	}
	return nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Status codes the simulator sets on GL_INTERFACE rows. EF04 and WU01 are
// observed on real pods; EC02, EJ01 are ASSUMPTIONS (see docs/fusionsim.md).
const (
	statusImported  = "IMPORTED" // internal: the row became a journal line and leaves the interface
	codeBadValue    = "EF04"
	codeBadCurrency = "EC02"
	codeBadCategory = "EJ01"
	codeUnbalanced  = "WU01"
)

type lineErr struct {
	group       int64
	ref21, code string
	text        string
}

// importJournals is "Import Journals: Child". Called with s.mu held.
func (s *Server) importJournals(st *state, reqID int64, p importParams, now time.Time) (status, logText, out string) {
	var log, rep strings.Builder
	fmt.Fprintf(&log, "Journal Import (request %d)\nParameters: source=%q ledger=%s group=%s\n", reqID, p.Source, p.LedgerID, p.GroupID)
	fmt.Fprintf(&rep, "Journal Import Execution Report\nRequest ID: %d\nSource: %s\nLedger: %s\nGroup ID: %s\n", reqID, p.Source, p.LedgerID, p.GroupID)
	led := s.ledger(p.LedgerID)
	fatal := func(msg string) (string, string, string) {
		log.WriteString(msg + "\n")
		rep.WriteString("Total: 0 group id(s)\nFATAL " + strconv.Quote(msg) + "\nEnd of report\n")
		return "ERROR", log.String(), rep.String()
	}
	switch {
	case led == nil:
		return fatal(fmt.Sprintf("The ledger %s doesn't exist.", p.LedgerID))
	case p.DataAccessSet != "#NULL" && p.DataAccessSet != "" && p.DataAccessSet != led.DataAccessSetID:
		return fatal(fmt.Sprintf("The data access set %s doesn't give access to ledger %s.", p.DataAccessSet, led.Name))
	case !contains(s.cfg.Sources, p.Source):
		return fatal(fmt.Sprintf("The journal source %q doesn't exist.", p.Source))
	}
	var wantGroup int64
	if p.GroupID != "ALL" {
		wantGroup, _ = strconv.ParseInt(p.GroupID, 10, 64)
	}
	byGroup := map[int64][]*InterfaceRow{}
	for _, r := range st.iface {
		if r.Status != "NEW" || r.Source != p.Source {
			continue
		}
		if r.LedgerID != led.ID && !(r.LedgerID == "" && r.LedgerName == led.Name) {
			continue
		}
		if p.GroupID != "ALL" && r.GroupID != wantGroup {
			continue
		}
		byGroup[r.GroupID] = append(byGroup[r.GroupID], r)
	}
	groups := make([]int64, 0, len(byGroup))
	for g := range byGroup {
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i] < groups[j] })
	fmt.Fprintf(&log, "Total: %d group id(s)\n", len(groups))
	fmt.Fprintf(&rep, "Total: %d group id(s)\n", len(groups))
	if len(groups) == 0 {
		log.WriteString("No GL_INTERFACE rows matched the parameters.\n")
		rep.WriteString("End of report\n")
		return "SUCCEEDED", log.String(), rep.String()
	}
	var errs []lineErr
	var warns []string
	held := false
	for _, g := range groups {
		rows := byGroup[g]
		gs := st.group(g)
		gs.Imports++
		bad := 0
		for _, r := range rows {
			var codes, texts []string
			if !contains(s.cfg.Categories, r.Category) {
				codes, texts = append(codes, codeBadCategory), append(texts, fmt.Sprintf("JOURNAL CATEGORY DOES NOT EXIST (CATEGORY=%s)", r.Category))
			}
			if r.Currency == "" || (r.Currency != led.Currency && len(r.Currency) != 3) {
				codes, texts = append(codes, codeBadCurrency), append(texts, fmt.Sprintf("INVALID CURRENCY CODE (CURRENCY=%s)", r.Currency))
			}
			if fe := s.chart.check(r.Segments); len(fe) > 0 {
				codes, texts = append(codes, codeBadValue), append(texts, fe...)
			}
			if len(codes) > 0 {
				bad++
				r.Status, r.StatusDescription = strings.Join(codes, ","), strings.Join(texts, "; ")
				errs = append(errs, lineErr{group: g, ref21: r.Reference21, code: r.Status, text: r.StatusDescription})
			}
		}
		if bad > 0 {
			// One bad line holds the whole group: no batch, the good
			// lines are marked P and stay in GL_INTERFACE.
			held = true
			gs.Held++
			for _, r := range rows {
				if r.Status == "NEW" {
					r.Status, r.StatusDescription = "P", ""
				}
			}
			fmt.Fprintf(&log, "Group %d: %d line(s), %d error line(s); no journal batch created.\n", g, len(rows), bad)
			fmt.Fprintf(&rep, "GROUP %d HELD lines=%d errors=%d\n", g, len(rows), bad)
			continue
		}
		gs.Posted++
		names, w := s.post(st, reqID, led, g, rows, now)
		warns = append(warns, w...)
		fmt.Fprintf(&log, "Group %d: %d line(s) imported into batch(es) %s.\n", g, len(rows), strings.Join(names, ", "))
		fmt.Fprintf(&rep, "GROUP %d POSTED lines=%d batches=%d\n", g, len(rows), len(names))
	}
	if held {
		log.WriteString("LEZL0010: Deleting journal entry error lines\n")
	}
	// Imported rows leave the interface.
	kept := st.iface[:0]
	for _, r := range st.iface {
		if r.Status != statusImported {
			kept = append(kept, r)
		}
	}
	clear(st.iface[len(kept):])
	st.iface = kept
	for _, e := range errs {
		fmt.Fprintf(&rep, "ERROR %d %s %s %s\n", e.group, strconv.Quote(e.ref21), strconv.Quote(e.code), strconv.Quote(e.text))
	}
	for _, w := range warns {
		log.WriteString(codeUnbalanced + ": " + w + "\n")
		fmt.Fprintf(&rep, "WARNING %s %s\n", strconv.Quote(codeUnbalanced), strconv.Quote(w))
	}
	rep.WriteString("End of report\n")
	if held {
		return "WARNING", log.String(), rep.String()
	}
	return "SUCCEEDED", log.String(), rep.String()
}

// post creates the batches of one good group (one per REFERENCE1, one
// journal per REFERENCE4) and their balances. Unbalanced journals are
// accepted with a WU01 warning: Fusion does not enforce balance here.
func (s *Server) post(st *state, reqID int64, led *Ledger, g int64, rows []*InterfaceRow, now time.Time) (names, warns []string) {
	visible := now.Add(s.readLag())
	batchOf := map[string]*Batch{}
	journalOf := map[[2]string]int{}
	for _, r := range rows {
		bname := r.BatchName
		if bname == "" {
			bname = fmt.Sprintf("%s A %d %d", r.Source, g, reqID)
		}
		b := batchOf[bname]
		if b == nil {
			b = &Batch{
				ID: st.nextBatch, Name: bname, Description: r.BatchDescription, Source: r.Source,
				LedgerID: led.ID, LedgerName: led.Name, Period: r.Period, Status: "Posted",
				GroupID: g, RequestID: reqID, PostedAt: now, VisibleAt: visible,
			}
			st.nextBatch++
			batchOf[bname] = b
			st.batches = append(st.batches, b)
			names = append(names, bname)
		}
		jname := r.JournalName
		if jname == "" {
			jname = r.Category + " " + r.Currency
		}
		jk := [2]string{bname, jname}
		ji, ok := journalOf[jk]
		if !ok {
			b.Journals = append(b.Journals, Journal{
				ID: st.nextHeader, Name: jname, Description: r.JournalDescription,
				Category: r.Category, Currency: r.Currency, Period: r.Period,
			})
			st.nextHeader++
			ji = len(b.Journals) - 1
			journalOf[jk] = ji
		}
		j := &b.Journals[ji]
		r.Status = statusImported
		acct := s.chart.account(r.Segments, s.cfg.AccountDelimiter)
		j.Lines = append(j.Lines, Line{
			Number: len(j.Lines) + 1, Account: acct, Segments: append([]string(nil), r.Segments[:min(len(s.chart.values), nSegments)]...),
			DR: r.DR, CR: r.CR, Description: r.LineDescription, Reference21: r.Reference21,
		})
		st.bal = append(st.bal, balEntry{ledger: led.Name, period: r.Period, currency: r.Currency, account: acct, amount: r.DR - r.CR, visibleAt: visible})
	}
	for _, bname := range names {
		b := batchOf[bname]
		for _, j := range b.Journals {
			var dr, cr money.Sum
			for _, l := range j.Lines {
				dr.Add(l.DR)
				cr.Add(l.CR)
			}
			if dr != cr {
				warns = append(warns, fmt.Sprintf("Journal entry is unbalanced (group %d, journal %s): suspense posting allowed, entry processed", g, j.Name))
			}
		}
	}
	return names, warns
}

// periodTime orders periods named like Jan-26; ok is false for other names.
func periodTime(p string) (time.Time, bool) {
	t, err := time.Parse("Jan-06", p)
	return t, err == nil
}
