package fusionsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/fusion"
)

// The SCM and procurement side: inventoryStagedTransactions (validated in
// online mode, with the interface's error rows), itemsV2, suppliers with
// addresses and sites, and inventoryOnhandBalances. Every mutation returns
// an undo so the batch endpoint can make a batch all-or-none.

// Error codes of the inventory interface (INV_*; ASSUMPTION except
// INV_INVALID_ITEM, which the issue names) and of the item and supplier
// resources (EGP_*, POZ_*; ASSUMPTION).
const (
	CodeInvalidOrganization = "INV_INVALID_ORGANIZATION"
	CodeInvalidSubinventory = "INV_INVALID_SUBINV"
	CodeInvalidItem         = "INV_INVALID_ITEM"
	CodeInvalidUOM          = "INV_INVALID_UOM"
	CodeInvalidQuantity     = "INV_INVALID_QUANTITY"
	CodeInvalidTxnType      = "INV_INVALID_TRANSACTION_TYPE"
	CodeInvalidDate         = "INV_INVALID_TRANSACTION_DATE"
	CodeLotRequired         = "INV_LOT_REQUIRED"
	CodeSerialRequired      = "INV_SERIAL_REQUIRED"
	CodeItemExists          = "EGP_ITEM_EXISTS"
	CodeItemInvalid         = "EGP_INVALID_ATTRIBUTE"
	CodeControlOnhand       = "EGP_CONTROL_ONHAND_EXISTS"
	CodeSupplierExists      = "POZ_SUPPLIER_EXISTS"
	CodeSupplierInvalid     = "POZ_INVALID_ATTRIBUTE"
)

// fieldErr is one validation failure: the attribute, Fusion's code, text.
type fieldErr struct{ attr, code, msg string }

func (f fieldErr) detail() errorDetail { return errorDetail{Detail: f.msg, ErrorCode: f.code} }

func invalid(attr, code, value string) fieldErr {
	return fieldErr{attr, code, fmt.Sprintf("The value of the attribute %s isn't valid: %q.", attr, value)}
}

// StagedRow is a row of the simulator's inventory interface.
type StagedRow struct {
	fusion.StagedTransaction
	OrganizationCode string    `json:"OrganizationCode"`
	CreatedAt        time.Time `json:"CreatedAt"`
	VisibleAt        time.Time `json:"VisibleAt"` // CreatedAt + read lag
}

type itemKey struct{ org, number string }

type onhandKey struct{ org, subinv, item string }

// simSupplier is a supplier with its addresses and sites.
type simSupplier struct {
	ID        int64
	Name      string
	Number    string
	Status    string
	Addresses []simAddress
	Sites     []simSite
	Updated   time.Time // LastUpdateDate: strictly increasing (suppliers.go)
}

type simAddress struct {
	Name, Line1, City, PostalCode, Country string
}

type simSite struct {
	ID                        int64
	Site, ProcurementBU, Addr string
}

// scmState is the mutable SCM state; guarded by Server.mu.
type scmState struct {
	items     map[itemKey]*fusion.Item
	itemIDs   map[itemKey]int64
	suppliers []*simSupplier
	onhand    map[onhandKey]fusion.Decimal
	staged    []*StagedRow
	byLine    map[SourceLine][]*StagedRow // index of staged for read-before-repost
	// ids keep increasing across resets, as request ids do
	nextTxn, nextItem, nextSupplier, nextSite int64
}

func newSCMState(md *SCMData, prev *scmState) *scmState {
	st := &scmState{
		items: map[itemKey]*fusion.Item{}, itemIDs: map[itemKey]int64{}, onhand: map[onhandKey]fusion.Decimal{},
		byLine:  map[SourceLine][]*StagedRow{},
		nextTxn: 40000001, nextItem: 300100000001, nextSupplier: 300000000090001, nextSite: 300000000091001,
	}
	if prev != nil {
		st.nextTxn, st.nextItem, st.nextSupplier, st.nextSite = prev.nextTxn, prev.nextItem, prev.nextSupplier, prev.nextSite
	}
	subs := map[string][]string{}
	for _, o := range md.Organizations {
		subs[o.Code] = o.Subinventories
	}
	for _, it := range md.Items {
		k := itemKey{it.Organization, it.Number}
		status := it.Status
		if status == "" {
			status = "Active"
		}
		st.items[k] = &fusion.Item{ItemNumber: it.Number, OrganizationCode: it.Organization, Description: it.Description,
			PrimaryUOMCode: it.UOM, ItemClass: it.Class, ItemStatus: status,
			LotControlled: fusion.Bool(it.LotControlled), SerialControlled: fusion.Bool(it.SerialControlled), Program340B: fusion.Bool(it.Program340B)}
		st.itemIDs[k] = st.nextItem
		st.nextItem++
		if md.StartingOnhand != "" && !fusion.Decimal(md.StartingOnhand).IsZero() {
			for _, sub := range subs[it.Organization] {
				st.onhand[onhandKey{it.Organization, sub, it.Number}] = fusion.Decimal(md.StartingOnhand)
			}
		}
	}
	for _, s := range md.Suppliers {
		status := s.Status
		if status == "" {
			status = "ACTIVE"
		}
		sup := &simSupplier{ID: st.nextSupplier, Name: s.Name, Number: s.Number, Status: status}
		st.nextSupplier++
		for _, site := range s.Sites {
			sup.Addresses = append(sup.Addresses, simAddress{Name: site.Site, Line1: site.AddressLine1, City: site.City, PostalCode: site.PostalCode, Country: site.Country})
			sup.Sites = append(sup.Sites, simSite{ID: st.nextSite, Site: site.Site, ProcurementBU: site.ProcurementBU, Addr: site.Site})
			st.nextSite++
		}
		st.suppliers = append(st.suppliers, sup)
	}
	return st
}

// org resolves an organization by code or name.
func (s *Server) org(v string) (SCMOrganization, bool) {
	for _, o := range s.md.Organizations {
		if v != "" && (o.Code == v || o.Name == v) {
			return o, true
		}
	}
	return SCMOrganization{}, false
}

// uom resolves a unit of measure by code or name to its code.
func (s *Server) uom(v string) (string, bool) {
	for _, u := range s.md.UOMs {
		if v != "" && (u.Code == v || strings.EqualFold(u.Name, v)) {
			return u.Code, true
		}
	}
	return "", false
}

func (s *Server) uomName(code string) string {
	for _, u := range s.md.UOMs {
		if u.Code == code {
			return u.Name
		}
	}
	return code
}

// decodeJSON reads a JSON body with UseNumber; quantities stay exact.
func decodeJSON(r *http.Request, v any) error {
	b, err := readBody(r, 1<<20)
	if err != nil {
		return err
	}
	return decodeBytes(b, v)
}

func decodeBytes(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("the request body isn't valid JSON for this resource: %v", err)
	}
	return nil
}

// writeErrors answers Fusion's error envelope with one detail per failure.
func writeErrors(w http.ResponseWriter, status int, errs []fieldErr) {
	writeJSONAs(w, status, "application/vnd.oracle.adf.error+json", errorEnvelope(status, errs))
}

func errorEnvelope(status int, errs []fieldErr) errorBody {
	body := errorBody{Type: "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html", Title: http.StatusText(status), Status: strconv.Itoa(status)}
	for _, e := range errs {
		body.Details = append(body.Details, e.detail())
	}
	if len(errs) > 0 {
		body.Detail = errs[0].msg
	}
	return body
}

func writeJSONAs(w http.ResponseWriter, status int, ct string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding: "+err.Error(), "")
		return
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// --- inventoryStagedTransactions -----------------------------------------

// txnIn is a staged transaction as posted.
type txnIn struct {
	OrganizationName         string         `json:"OrganizationName"`
	OrganizationCode         string         `json:"OrganizationCode"`
	SubinventoryCode         string         `json:"SubinventoryCode"`
	ItemNumber               string         `json:"ItemNumber"`
	TransactionTypeName      string         `json:"TransactionTypeName"`
	TransactionQuantity      fusion.Decimal `json:"TransactionQuantity"`
	TransactionUnitOfMeasure string         `json:"TransactionUnitOfMeasure"`
	TransactionUOMCode       string         `json:"TransactionUOMCode"`
	TransactionDate          string         `json:"TransactionDate"`
	SourceCode               string         `json:"SourceCode"`
	SourceHeaderID           json.Number    `json:"SourceHeaderId"`
	SourceLineID             json.Number    `json:"SourceLineId"`
	TransactionReference     string         `json:"TransactionReference"`
	Lots                     []struct {
		LotNumber           string         `json:"LotNumber"`
		TransactionQuantity fusion.Decimal `json:"TransactionQuantity"`
	} `json:"lots"`
	Serials []struct {
		FromSerialNumber string `json:"FromSerialNumber"`
		ToSerialNumber   string `json:"ToSerialNumber"`
	} `json:"serials"`
	DFF []txnDFFIn `json:"DFF"`
}

// txnDFFIn holds the DFF segments the simulator reads, by their codes
// fusion.DFF340BAttribute and fusion.DFFCostCenterAttribute (a struct: a
// map per row was a quarter of the simulator's time on a busy run).
type txnDFFIn struct {
	Program340B string `json:"program340B"`
	CostCenter  string `json:"costCenter"`
}

func parseTime(v string) (time.Time, error) {
	for _, l := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(l, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad date %q", v)
}

// stageTxn validates in and, when it is valid or force is set, stores it
// in the interface (an invalid one with ProcessFlag 3). Valid rows update
// on-hand. Called with s.mu held.
func (s *Server) stageTxn(in txnIn, force bool, now time.Time) (*StagedRow, []fieldErr, func()) {
	row := &StagedRow{CreatedAt: now, VisibleAt: now.Add(s.readLag())}
	t := &row.InventoryTransaction
	t.OrganizationName, t.SubinventoryCode, t.ItemNumber = in.OrganizationName, in.SubinventoryCode, in.ItemNumber
	if t.OrganizationName == "" {
		t.OrganizationName = in.OrganizationCode
	}
	t.TransactionTypeName, t.TransactionQuantity = in.TransactionTypeName, in.TransactionQuantity
	t.TransactionUnitOfMeasure = in.TransactionUnitOfMeasure
	if t.TransactionUnitOfMeasure == "" {
		t.TransactionUnitOfMeasure = in.TransactionUOMCode
	}
	t.SourceCode, t.TransactionReference = in.SourceCode, in.TransactionReference
	if len(in.Lots) > 0 {
		t.LotNumber = in.Lots[0].LotNumber
	}
	if len(in.Serials) > 0 {
		t.SerialNumber = in.Serials[0].FromSerialNumber
	}
	if len(in.DFF) > 0 {
		t.Program340B = in.DFF[0].Program340B == "Y"
		t.CostCenter = in.DFF[0].CostCenter
	}

	var errs []fieldErr
	var err error
	if t.SourceHeaderID, err = numOrZero(in.SourceHeaderID); err != nil {
		errs = append(errs, invalid("SourceHeaderId", CodeInvalidQuantity, in.SourceHeaderID.String()))
	}
	if t.SourceLineID, err = numOrZero(in.SourceLineID); err != nil {
		errs = append(errs, invalid("SourceLineId", CodeInvalidQuantity, in.SourceLineID.String()))
	}
	t.TransactionDate = now.UTC()
	if in.TransactionDate != "" {
		if t.TransactionDate, err = parseTime(in.TransactionDate); err != nil {
			errs = append(errs, invalid("TransactionDate", CodeInvalidDate, in.TransactionDate))
		}
	}
	sign, known := 0, false
	for _, tt := range s.md.TransactionTypes {
		if tt.Name == in.TransactionTypeName {
			sign, known = tt.Sign, true
		}
	}
	if !known {
		errs = append(errs, invalid("TransactionTypeName", CodeInvalidTxnType, in.TransactionTypeName))
	}
	o, orgOK := s.org(t.OrganizationName)
	if !orgOK {
		errs = append(errs, invalid("OrganizationName", CodeInvalidOrganization, t.OrganizationName))
	} else {
		row.OrganizationCode = o.Code
		subOK := false
		for _, sub := range o.Subinventories {
			subOK = subOK || sub == in.SubinventoryCode
		}
		if !subOK {
			errs = append(errs, invalid("SubinventoryCode", CodeInvalidSubinventory, in.SubinventoryCode))
		}
	}
	var item *fusion.Item
	if orgOK {
		if item = s.scm.items[itemKey{o.Code, in.ItemNumber}]; item == nil {
			errs = append(errs, invalid("ItemNumber", CodeInvalidItem, in.ItemNumber))
		}
	}
	q := in.TransactionQuantity
	switch {
	case q == "" || q.IsZero():
		errs = append(errs, fieldErr{"TransactionQuantity", CodeInvalidQuantity, "The value of the attribute TransactionQuantity must not be zero."})
	case known && sign != 0 && q.Sign() != sign:
		errs = append(errs, fieldErr{"TransactionQuantity", CodeInvalidQuantity,
			fmt.Sprintf("The value of the attribute TransactionQuantity %s has the wrong sign for %s.", q, in.TransactionTypeName)})
	}
	if item != nil {
		// Conversions are not simulated: the unit must be the item's.
		if code, ok := s.uom(t.TransactionUnitOfMeasure); !ok || code != item.PrimaryUOMCode {
			errs = append(errs, fieldErr{"TransactionUnitOfMeasure", CodeInvalidUOM,
				fmt.Sprintf("The value of the attribute TransactionUnitOfMeasure isn't valid: %q (item %s is stocked in %s).", t.TransactionUnitOfMeasure, item.ItemNumber, item.PrimaryUOMCode)})
		}
		if fusion.IsTrue(item.LotControlled) && t.LotNumber == "" {
			errs = append(errs, fieldErr{"LotNumber", CodeLotRequired, fmt.Sprintf("A lot number is required for the lot-controlled item %s.", item.ItemNumber)})
		}
		if fusion.IsTrue(item.SerialControlled) && t.SerialNumber == "" {
			errs = append(errs, fieldErr{"SerialNumber", CodeSerialRequired, fmt.Sprintf("A serial number is required for the serial-controlled item %s.", item.ItemNumber)})
		}
	}
	if len(errs) > 0 && !force {
		return nil, errs, nil
	}
	row.TransactionInterfaceID = s.scm.nextTxn
	s.scm.nextTxn++
	row.ProcessFlag = fusion.ProcessFlagPending
	if len(errs) > 0 {
		row.ProcessFlag = fusion.ProcessFlagError
		var codes, texts []string
		for _, e := range errs {
			codes = append(codes, e.code)
			texts = append(texts, e.msg)
		}
		row.ErrorCode, row.ErrorExplanation = strings.Join(codes, ","), strings.Join(texts, " ")
	}
	s.scm.staged = append(s.scm.staged, row)
	n := len(s.scm.staged)
	line := SourceLine{t.SourceCode, t.SourceHeaderID, t.SourceLineID}
	s.scm.byLine[line] = append(s.scm.byLine[line], row)
	undoOnhand := func() {}
	if row.ProcessFlag == fusion.ProcessFlagPending {
		k := onhandKey{row.OrganizationCode, t.SubinventoryCode, t.ItemNumber}
		prev, had := s.scm.onhand[k]
		base := prev
		if !had {
			base = "0"
		}
		sum, _ := base.Add(q) // q was validated by its decoder
		s.scm.onhand[k] = sum
		undoOnhand = func() {
			if had {
				s.scm.onhand[k] = prev
			} else {
				delete(s.scm.onhand, k)
			}
		}
	}
	undo := func() {
		undoOnhand()
		s.scm.staged = s.scm.staged[:n-1]
		if rs := s.scm.byLine[line]; len(rs) <= 1 {
			delete(s.scm.byLine, line)
		} else {
			s.scm.byLine[line] = rs[:len(rs)-1]
		}
	}
	return row, errs, undo
}

func numOrZero(n json.Number) (int64, error) {
	if n == "" {
		return 0, nil
	}
	return strconv.ParseInt(string(n), 10, 64)
}

// takeInterface408 decides whether a staged-transaction POST times out
// after storing its row. Called with s.mu held.
func (s *Server) takeInterface408() bool {
	switch {
	case s.faults.Interface408 < 0:
		return true
	case s.faults.Interface408 > 0:
		s.faults.Interface408--
		return true
	}
	return s.faults.Interface408Rate > 0 && s.rng.Float64() < s.faults.Interface408Rate
}

func (s *Server) txnPost(w http.ResponseWriter, r *http.Request) {
	var in txnIn
	if err := decodeJSON(r, &in); err != nil {
		badRequest(w, "%v", err)
		return
	}
	s.mu.Lock()
	timeout := s.takeInterface408()
	row, errs, _ := s.stageTxn(in, timeout, time.Now())
	var item *txnJSON
	if row != nil {
		item = s.txnItem(r, row, expandAll)
	}
	s.mu.Unlock()
	switch {
	case timeout:
		// Online mode gave up waiting for the transaction manager; the row
		// is in the interface (in error when it was invalid).
		writeError(w, http.StatusRequestTimeout, "The request timed out while the transaction was processed in online mode.", "")
	case len(errs) > 0:
		writeErrors(w, http.StatusBadRequest, errs)
	default:
		writeJSON(w, http.StatusCreated, item)
	}
}

type expandSet map[string]bool

var expandAll = expandSet{"all": true}

func parseExpandSet(v string) expandSet {
	e := expandSet{}
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			e[p] = true
		}
	}
	return e
}

func (e expandSet) has(child string) bool { return e["all"] || e[child] }

// child is an expanded child collection.

// txnJSON is a staged transaction as inventoryStagedTransactions answers
// it (a struct, not a map: the batch answers of a busy run encode many).
type txnJSON struct {
	TransactionInterfaceID   int64          `json:"TransactionInterfaceId"`
	OrganizationName         string         `json:"OrganizationName"`
	OrganizationCode         string         `json:"OrganizationCode"`
	SubinventoryCode         string         `json:"SubinventoryCode"`
	ItemNumber               string         `json:"ItemNumber"`
	TransactionTypeName      string         `json:"TransactionTypeName"`
	TransactionQuantity      fusion.Decimal `json:"TransactionQuantity"`
	TransactionUnitOfMeasure string         `json:"TransactionUnitOfMeasure"`
	TransactionDate          string         `json:"TransactionDate"`
	SourceCode               string         `json:"SourceCode"`
	SourceHeaderID           int64          `json:"SourceHeaderId"`
	SourceLineID             int64          `json:"SourceLineId"`
	TransactionReference     string         `json:"TransactionReference"`
	TransactionMode          string         `json:"TransactionMode"`
	ProcessFlag              int            `json:"ProcessFlag"`
	ErrorCode                *string        `json:"ErrorCode"`
	ErrorExplanation         *string        `json:"ErrorExplanation"`
	Links                    []restLink     `json:"links"`
	Lots                     *childJSON     `json:"lots,omitempty"`
	Serials                  *childJSON     `json:"serials,omitempty"`
	DFF                      *childJSON     `json:"DFF,omitempty"`
}

type restLink struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
	Name string `json:"name,omitempty"`
	Kind string `json:"kind"`
}

// childJSON is an expanded child collection.
type childJSON struct {
	Items   []any `json:"items"`
	Count   int   `json:"count"`
	HasMore bool  `json:"hasMore"`
	Limit   int   `json:"limit"`
	Offset  int   `json:"offset"`
}

func child(items []any) *childJSON {
	if items == nil {
		items = []any{}
	}
	return &childJSON{Items: items, Count: len(items), Limit: max(len(items), 25)}
}

func (s *Server) txnItem(r *http.Request, row *StagedRow, ex expandSet) *txnJSON {
	t := row.InventoryTransaction
	self := baseURL(r) + APIPath + fusion.InventoryStagedTransactionsPath + "/" + strconv.FormatInt(row.TransactionInterfaceID, 10)
	it := &txnJSON{
		TransactionInterfaceID: row.TransactionInterfaceID,
		OrganizationName:       t.OrganizationName, OrganizationCode: row.OrganizationCode,
		SubinventoryCode: t.SubinventoryCode, ItemNumber: t.ItemNumber,
		TransactionTypeName: t.TransactionTypeName, TransactionQuantity: t.TransactionQuantity,
		TransactionUnitOfMeasure: t.TransactionUnitOfMeasure,
		TransactionDate:          t.TransactionDate.Format(time.RFC3339),
		SourceCode:               t.SourceCode, SourceHeaderID: t.SourceHeaderID, SourceLineID: t.SourceLineID,
		TransactionReference: t.TransactionReference, TransactionMode: fusion.TransactionModeOnline,
		ProcessFlag: row.ProcessFlag, ErrorCode: strOrNull(row.ErrorCode), ErrorExplanation: strOrNull(row.ErrorExplanation),
		Links: []restLink{{"self", self, "inventoryStagedTransactions", "item"},
			{"child", self + "/child/lots", "lots", "collection"},
			{"child", self + "/child/serials", "serials", "collection"},
			{"child", self + "/child/DFF", "DFF", "collection"}},
	}
	if ex.has("lots") {
		var lots []any
		if t.LotNumber != "" {
			lots = append(lots, map[string]any{"LotNumber": t.LotNumber, "TransactionQuantity": t.TransactionQuantity})
		}
		it.Lots = child(lots)
	}
	if ex.has("serials") {
		var ser []any
		if t.SerialNumber != "" {
			ser = append(ser, map[string]any{"FromSerialNumber": t.SerialNumber, "ToSerialNumber": t.SerialNumber})
		}
		it.Serials = child(ser)
	}
	if ex.has("DFF") {
		flag := "N"
		if t.Program340B {
			flag = "Y"
		}
		it.DFF = child([]any{map[string]any{"TransactionInterfaceId": row.TransactionInterfaceID, "__FLEX_Context": fusion.DFFContext,
			fusion.DFF340BAttribute: flag, fusion.DFFCostCenterAttribute: nilIfEmpty(t.CostCenter)}})
	}
	return it
}

func strOrNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// attribute kinds for q comparisons
const (
	kString = iota
	kNumber
	kTime
)

type attr struct {
	kind int
	get  func(*StagedRow) string
}

var txnAttrs = map[string]attr{
	"TransactionInterfaceId": {kNumber, func(r *StagedRow) string { return strconv.FormatInt(r.TransactionInterfaceID, 10) }},
	"OrganizationName":       {kString, func(r *StagedRow) string { return r.OrganizationName }},
	"OrganizationCode":       {kString, func(r *StagedRow) string { return r.OrganizationCode }},
	"SubinventoryCode":       {kString, func(r *StagedRow) string { return r.SubinventoryCode }},
	"ItemNumber":             {kString, func(r *StagedRow) string { return r.ItemNumber }},
	"TransactionTypeName":    {kString, func(r *StagedRow) string { return r.TransactionTypeName }},
	"SourceCode":             {kString, func(r *StagedRow) string { return r.SourceCode }},
	"SourceHeaderId":         {kNumber, func(r *StagedRow) string { return strconv.FormatInt(r.SourceHeaderID, 10) }},
	"SourceLineId":           {kNumber, func(r *StagedRow) string { return strconv.FormatInt(r.SourceLineID, 10) }},
	"TransactionReference":   {kString, func(r *StagedRow) string { return r.TransactionReference }},
	"ProcessFlag":            {kNumber, func(r *StagedRow) string { return strconv.Itoa(r.ProcessFlag) }},
	"ErrorCode":              {kString, func(r *StagedRow) string { return r.ErrorCode }},
	"TransactionDate":        {kTime, func(r *StagedRow) string { return r.TransactionDate.Format(time.RFC3339Nano) }},
}

// qTerm is one Attr<op>value condition of q.
type qTerm struct{ attr, op, val string }

// qTerms parses q as ';'-separated conditions with =, >=, <=, >, < and
// values quoted ('…', ” for a quote) or bare. Fusion's full expression
// syntax (and/or, LIKE) is not simulated.
func qTerms(q string) ([]qTerm, error) {
	var out []qTerm
	for q = strings.TrimSpace(q); q != ""; {
		i := strings.IndexAny(q, "=<>")
		if i <= 0 {
			return nil, fmt.Errorf("the q expression %q isn't valid (want Attr=value;...)", q)
		}
		t := qTerm{attr: strings.TrimSpace(q[:i])}
		rest := q[i:]
		for _, op := range []string{">=", "<=", "=", ">", "<"} {
			if strings.HasPrefix(rest, op) {
				t.op, rest = op, rest[len(op):]
				break
			}
		}
		rest = strings.TrimLeft(rest, " ")
		if strings.HasPrefix(rest, "'") {
			var b strings.Builder
			j := 1
			for ; j < len(rest); j++ {
				if rest[j] == '\'' {
					if j+1 < len(rest) && rest[j+1] == '\'' {
						b.WriteByte('\'')
						j++
						continue
					}
					break
				}
				b.WriteByte(rest[j])
			}
			if j >= len(rest) {
				return nil, fmt.Errorf("unterminated quote in q for %s", t.attr)
			}
			t.val, rest = b.String(), rest[j+1:]
		} else {
			end := strings.IndexByte(rest, ';')
			if end < 0 {
				end = len(rest)
			}
			t.val, rest = strings.TrimSpace(rest[:end]), rest[end:]
		}
		rest = strings.TrimLeft(rest, " ")
		if rest != "" && rest[0] != ';' {
			return nil, fmt.Errorf("the q expression isn't valid near %q", rest)
		}
		out = append(out, t)
		q = strings.TrimSpace(strings.TrimPrefix(rest, ";"))
	}
	return out, nil
}

// match compares have (of kind) with the term's value.
func (t qTerm) match(kind int, have string) bool {
	var c int
	switch kind {
	case kNumber:
		a, err1 := fusion.ParseDecimal(have)
		b, err2 := fusion.ParseDecimal(t.val)
		if err1 != nil || err2 != nil {
			return false
		}
		c = a.Cmp(b)
	case kTime:
		a, err1 := parseTime(have)
		b, err2 := parseTime(t.val)
		if err1 != nil || err2 != nil {
			return false
		}
		c = a.Compare(b)
	default:
		c = strings.Compare(have, t.val)
	}
	switch t.op {
	case "=":
		return c == 0
	case ">=":
		return c >= 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case "<":
		return c < 0
	}
	return false
}

// filterTerms parses q and checks its attributes against known.
func filterTerms(w http.ResponseWriter, q, resource string, known func(string) bool) ([]qTerm, bool) {
	terms, err := qTerms(q)
	if err != nil {
		badRequest(w, "%v", err)
		return nil, false
	}
	for _, t := range terms {
		if !known(t.attr) {
			badRequest(w, "The attribute %s in the q parameter isn't valid for %s.", t.attr, resource)
			return nil, false
		}
	}
	return terms, true
}

func (s *Server) txnGet(w http.ResponseWriter, r *http.Request) {
	q := queryParams(r)
	limit, offset, err := paging(q)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	terms, ok := filterTerms(w, q["q"], "inventoryStagedTransactions", func(a string) bool { _, ok := txnAttrs[a]; return ok })
	if !ok {
		return
	}
	ex := parseExpandSet(q["expand"])
	now := time.Now()
	var items []any
	s.mu.Lock()
	rows := s.scm.staged
	if line, ok := lineOf(terms); ok {
		rows = s.scm.byLine[line]
	}
	for _, row := range rows {
		if now.Before(row.VisibleAt) {
			continue
		}
		match := true
		for _, t := range terms {
			a := txnAttrs[t.attr]
			if t.attr == "OrganizationName" && t.op == "=" {
				// Fusion resolves the organization by code or name.
				o, ok := s.org(t.val)
				match = match && (row.OrganizationName == t.val || ok && o.Code == row.OrganizationCode)
				continue
			}
			match = match && t.match(a.kind, a.get(row))
		}
		if match {
			items = append(items, s.txnItem(r, row, ex))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, collection(r, q, items, limit, offset))
}

// lineOf returns the source line q pins down with '=' terms, if it does.
func lineOf(terms []qTerm) (SourceLine, bool) {
	var l SourceLine
	n := 0
	for _, t := range terms {
		if t.op != "=" {
			continue
		}
		var err error
		switch t.attr {
		case "SourceCode":
			l.SourceCode, n = t.val, n+1
		case "SourceHeaderId":
			l.SourceHeaderID, err = strconv.ParseInt(t.val, 10, 64)
			n++
		case "SourceLineId":
			l.SourceLineID, err = strconv.ParseInt(t.val, 10, 64)
			n++
		}
		if err != nil {
			return l, false
		}
	}
	return l, n == 3
}

func (s *Server) txnGetOne(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	ex := parseExpandSet(queryParams(r)["expand"])
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, row := range s.scm.staged {
		if row.TransactionInterfaceID == id && !now.Before(row.VisibleAt) {
			writeJSON(w, http.StatusOK, s.txnItem(r, row, ex))
			return
		}
	}
	writeError(w, http.StatusNotFound, "The staged transaction "+r.PathValue("id")+" doesn't exist.", "")
}

// --- itemsV2 -------------------------------------------------------------

type itemIn struct {
	ItemNumber               string           `json:"ItemNumber"`
	OrganizationCode         string           `json:"OrganizationCode"`
	ItemDescription          string           `json:"ItemDescription"`
	PrimaryUOMCode           string           `json:"PrimaryUOMCode"`
	PrimaryUOMValue          string           `json:"PrimaryUOMValue"`
	ItemClass                string           `json:"ItemClass"`
	ItemStatusValue          string           `json:"ItemStatusValue"`
	LotControlValue          string           `json:"LotControlValue"`
	SerialNumberControlValue string           `json:"SerialNumberControlValue"`
	DFF                      []map[string]any `json:"DFF"`
}

// putItem creates the item, or with upsert updates the attributes given.
// Called with s.mu held.
func (s *Server) putItem(in itemIn, upsert bool) (*fusion.Item, bool, []fieldErr, func()) {
	var errs []fieldErr
	if in.ItemNumber == "" {
		errs = append(errs, fieldErr{"ItemNumber", CodeItemInvalid, "The attribute ItemNumber is required."})
	}
	o, ok := s.org(in.OrganizationCode)
	if !ok {
		errs = append(errs, invalid("OrganizationCode", CodeItemInvalid, in.OrganizationCode))
	}
	uomIn := in.PrimaryUOMCode
	if uomIn == "" {
		uomIn = in.PrimaryUOMValue
	}
	uom, uomOK := s.uom(uomIn)
	if uomIn != "" && !uomOK {
		errs = append(errs, invalid("PrimaryUOMCode", CodeItemInvalid, uomIn))
	}
	for _, v := range []struct{ attr, val, none string }{
		{"LotControlValue", in.LotControlValue, fusion.LotControlNone},
		{"SerialNumberControlValue", in.SerialNumberControlValue, fusion.SerialControlNone},
	} {
		if v.val != "" && v.val != v.none && v.val != fusion.LotControlFull && v.val != fusion.SerialControlAtRcpt &&
			v.val != "Predefined serial numbers" && v.val != "At sales order issue" {
			errs = append(errs, invalid(v.attr, CodeItemInvalid, v.val))
		}
	}
	if len(errs) > 0 {
		return nil, false, errs, nil
	}
	k := itemKey{o.Code, in.ItemNumber}
	old := s.scm.items[k]
	if old != nil && !upsert {
		return nil, false, []fieldErr{{"ItemNumber", CodeItemExists,
			fmt.Sprintf("The item %s already exists in organization %s.", in.ItemNumber, o.Code)}}, nil
	}
	if old == nil && uom == "" {
		return nil, false, []fieldErr{{"PrimaryUOMCode", CodeItemInvalid, "The attribute PrimaryUOMCode is required."}}, nil
	}
	it := fusion.Item{ItemNumber: in.ItemNumber, OrganizationCode: o.Code, ItemStatus: "Active",
		LotControlled: fusion.Bool(false), SerialControlled: fusion.Bool(false), Program340B: fusion.Bool(false)}
	if old != nil {
		it = *old
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&it.Description, in.ItemDescription)
	set(&it.PrimaryUOMCode, uom)
	set(&it.ItemClass, in.ItemClass)
	set(&it.ItemStatus, in.ItemStatusValue)
	if in.LotControlValue != "" {
		it.LotControlled = fusion.Bool(in.LotControlValue != fusion.LotControlNone)
	}
	if in.SerialNumberControlValue != "" {
		it.SerialControlled = fusion.Bool(in.SerialNumberControlValue != fusion.SerialControlNone)
	}
	if len(in.DFF) > 0 {
		if v, ok := in.DFF[0][fusion.DFF340BAttribute].(string); ok {
			it.Program340B = fusion.Bool(v == "Y")
		}
	}
	if old != nil {
		if errs := s.controlChange(old, &it); len(errs) > 0 {
			return nil, false, errs, nil
		}
	}
	s.scm.items[k] = &it
	var undo func()
	if old == nil {
		s.scm.itemIDs[k] = s.scm.nextItem
		s.scm.nextItem++
		undo = func() { delete(s.scm.items, k); delete(s.scm.itemIDs, k) }
	} else {
		undo = func() { s.scm.items[k] = old }
	}
	return &it, old == nil, nil, undo
}

// controlChange refuses, as Fusion does, to change an item's lot or serial
// control while the organization holds stock of it: the rows already
// received under one control would not match the other. Called with s.mu
// held.
func (s *Server) controlChange(old, it *fusion.Item) []fieldErr {
	var changed []string
	if fusion.IsTrue(old.LotControlled) != fusion.IsTrue(it.LotControlled) {
		changed = append(changed, "LotControlValue")
	}
	if fusion.IsTrue(old.SerialControlled) != fusion.IsTrue(it.SerialControlled) {
		changed = append(changed, "SerialNumberControlValue")
	}
	if len(changed) == 0 || !s.hasStock(old.OrganizationCode, old.ItemNumber) {
		return nil
	}
	var errs []fieldErr
	for _, attr := range changed {
		what := "lot control"
		if attr == "SerialNumberControlValue" {
			what = "serial number control"
		}
		errs = append(errs, fieldErr{attr, CodeControlOnhand, fmt.Sprintf(
			"You can't change the %s of item %s in organization %s because on-hand quantity exists.", what, old.ItemNumber, old.OrganizationCode)})
	}
	return errs
}

// hasStock reports whether any subinventory of org holds a non-zero
// on-hand quantity of item. Called with s.mu held.
func (s *Server) hasStock(org, item string) bool {
	for k, q := range s.scm.onhand {
		if k.org == org && k.item == item && !q.IsZero() {
			return true
		}
	}
	return false
}

func (s *Server) itemJSON(r *http.Request, it *fusion.Item, ex expandSet) map[string]any {
	id := s.scm.itemIDs[itemKey{it.OrganizationCode, it.ItemNumber}]
	lot, ser := fusion.LotControlNone, fusion.SerialControlNone
	if fusion.IsTrue(it.LotControlled) {
		lot = fusion.LotControlFull
	}
	if fusion.IsTrue(it.SerialControlled) {
		ser = fusion.SerialControlAtRcpt
	}
	self := baseURL(r) + APIPath + fusion.ItemsPath + "/" + strconv.FormatInt(id, 10)
	m := map[string]any{
		"ItemId": id, "ItemNumber": it.ItemNumber, "OrganizationCode": it.OrganizationCode,
		"ItemDescription": it.Description, "PrimaryUOMCode": it.PrimaryUOMCode, "PrimaryUOMValue": s.uomName(it.PrimaryUOMCode),
		"ItemClass": it.ItemClass, "ItemStatusValue": it.ItemStatus,
		"LotControlValue": lot, "SerialNumberControlValue": ser,
		"links": []any{link("self", self, "itemsV2", "item"), link("child", self+"/child/DFF", "DFF", "collection")},
	}
	if ex.has("DFF") {
		flag := "N"
		if fusion.IsTrue(it.Program340B) {
			flag = "Y"
		}
		m["DFF"] = child([]any{map[string]any{"__FLEX_Context": fusion.DFFContext, fusion.DFF340BAttribute: flag}})
	}
	return m
}

func (s *Server) itemPost(w http.ResponseWriter, r *http.Request) {
	var in itemIn
	if err := decodeJSON(r, &in); err != nil {
		badRequest(w, "%v", err)
		return
	}
	upsert := strings.EqualFold(strings.TrimSpace(r.Header.Get("Upsert-Mode")), "true")
	s.mu.Lock()
	it, created, errs, _ := s.putItem(in, upsert)
	var body map[string]any
	if it != nil {
		body = s.itemJSON(r, it, expandAll)
	}
	s.mu.Unlock()
	switch {
	case len(errs) > 0:
		writeErrors(w, http.StatusBadRequest, errs)
	case created:
		writeJSON(w, http.StatusCreated, body)
	default:
		writeJSON(w, http.StatusOK, body)
	}
}

var itemAttrs = map[string]func(*fusion.Item) string{
	"ItemNumber":       func(i *fusion.Item) string { return i.ItemNumber },
	"OrganizationCode": func(i *fusion.Item) string { return i.OrganizationCode },
	"ItemDescription":  func(i *fusion.Item) string { return i.Description },
	"ItemClass":        func(i *fusion.Item) string { return i.ItemClass },
	"ItemStatusValue":  func(i *fusion.Item) string { return i.ItemStatus },
	"PrimaryUOMCode":   func(i *fusion.Item) string { return i.PrimaryUOMCode },
}

func (s *Server) sortedItems() []*fusion.Item {
	out := make([]*fusion.Item, 0, len(s.scm.items))
	for _, it := range s.scm.items {
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.OrganizationCode != b.OrganizationCode {
			return a.OrganizationCode < b.OrganizationCode
		}
		return a.ItemNumber < b.ItemNumber
	})
	return out
}

func (s *Server) itemGet(w http.ResponseWriter, r *http.Request) {
	q := queryParams(r)
	limit, offset, err := paging(q)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	terms, ok := filterTerms(w, q["q"], "itemsV2", func(a string) bool { return itemAttrs[a] != nil })
	if !ok {
		return
	}
	ex := parseExpandSet(q["expand"])
	var items []any
	s.mu.Lock()
	for _, it := range s.sortedItems() {
		match := true
		for _, t := range terms {
			match = match && t.match(kString, itemAttrs[t.attr](it))
		}
		if match {
			items = append(items, s.itemJSON(r, it, ex))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, collection(r, q, items, limit, offset))
}

// --- suppliers -----------------------------------------------------------

type supplierIn struct {
	Supplier       string `json:"Supplier"`
	SupplierNumber string `json:"SupplierNumber"`
	Status         string `json:"Status"`
	Addresses      []struct {
		AddressName  string `json:"AddressName"`
		AddressLine1 string `json:"AddressLine1"`
		City         string `json:"City"`
		PostalCode   string `json:"PostalCode"`
		CountryCode  string `json:"CountryCode"`
	} `json:"addresses"`
	Sites []struct {
		SupplierSite        string `json:"SupplierSite"`
		ProcurementBU       string `json:"ProcurementBU"`
		SupplierAddressName string `json:"SupplierAddressName"`
	} `json:"sites"`
}

// createSupplier creates a supplier with its addresses and sites. Called
// with s.mu held.
func (s *Server) createSupplier(in supplierIn) (*simSupplier, []fieldErr, func()) {
	var errs []fieldErr
	if in.Supplier == "" {
		errs = append(errs, fieldErr{"Supplier", CodeSupplierInvalid, "The attribute Supplier is required."})
	}
	if in.SupplierNumber != "" {
		for _, o := range s.scm.suppliers {
			if o.Number == in.SupplierNumber {
				errs = append(errs, fieldErr{"SupplierNumber", CodeSupplierExists, fmt.Sprintf("The supplier number %s already exists.", in.SupplierNumber)})
			}
		}
	}
	for _, o := range s.scm.suppliers {
		if in.Supplier != "" && o.Name == in.Supplier {
			errs = append(errs, fieldErr{"Supplier", CodeSupplierExists, fmt.Sprintf("The supplier %s already exists.", in.Supplier)})
		}
	}
	addrs := map[string]bool{}
	sup := &simSupplier{Name: in.Supplier, Number: in.SupplierNumber, Status: in.Status}
	if sup.Status == "" {
		sup.Status = "ACTIVE"
	}
	for _, a := range in.Addresses {
		if a.AddressName == "" || addrs[a.AddressName] {
			errs = append(errs, invalid("AddressName", CodeSupplierInvalid, a.AddressName))
			continue
		}
		addrs[a.AddressName] = true
		sup.Addresses = append(sup.Addresses, simAddress{Name: a.AddressName, Line1: a.AddressLine1, City: a.City, PostalCode: a.PostalCode, Country: a.CountryCode})
	}
	sites := map[string]bool{}
	for _, st := range in.Sites {
		switch {
		case st.SupplierSite == "" || sites[st.SupplierSite]:
			errs = append(errs, invalid("SupplierSite", CodeSupplierInvalid, st.SupplierSite))
		case st.ProcurementBU == "":
			errs = append(errs, fieldErr{"ProcurementBU", CodeSupplierInvalid, fmt.Sprintf("The attribute ProcurementBU is required for site %s.", st.SupplierSite)})
		case st.SupplierAddressName != "" && !addrs[st.SupplierAddressName]:
			errs = append(errs, invalid("SupplierAddressName", CodeSupplierInvalid, st.SupplierAddressName))
		}
		sites[st.SupplierSite] = true
		sup.Sites = append(sup.Sites, simSite{Site: st.SupplierSite, ProcurementBU: st.ProcurementBU, Addr: st.SupplierAddressName})
	}
	if len(errs) > 0 {
		return nil, errs, nil
	}
	sup.ID = s.scm.nextSupplier
	s.scm.nextSupplier++
	if sup.Number == "" {
		sup.Number = strconv.FormatInt(sup.ID%1000000, 10) // Fusion numbers suppliers itself
	}
	for i := range sup.Sites {
		sup.Sites[i].ID = s.scm.nextSite
		s.scm.nextSite++
	}
	sup.Updated = s.supplierNow()
	s.scm.suppliers = append(s.scm.suppliers, sup)
	n := len(s.scm.suppliers)
	return sup, nil, func() { s.scm.suppliers = s.scm.suppliers[:n-1] }
}

func supplierJSON(r *http.Request, sup *simSupplier, ex expandSet) map[string]any {
	self := baseURL(r) + APIPath + fusion.SuppliersPath + "/" + strconv.FormatInt(sup.ID, 10)
	m := map[string]any{
		"SupplierId": sup.ID, "Supplier": sup.Name, "SupplierNumber": sup.Number, "Status": sup.Status,
		"BusinessRelationship": "SPEND_AUTHORIZED", "LastUpdateDate": sup.Updated.UTC().Format(time.RFC3339Nano),
		"links": []any{link("self", self, "suppliers", "item"),
			link("child", self+"/child/addresses", "addresses", "collection"),
			link("child", self+"/child/sites", "sites", "collection")},
	}
	if ex.has("addresses") {
		m["addresses"] = child(addressItems(sup))
	}
	if ex.has("sites") {
		m["sites"] = child(siteItems(sup))
	}
	return m
}

func addressItems(sup *simSupplier) []any {
	var out []any
	for _, a := range sup.Addresses {
		out = append(out, map[string]any{"AddressName": a.Name, "AddressLine1": a.Line1, "City": a.City, "PostalCode": a.PostalCode, "CountryCode": a.Country})
	}
	return out
}

func siteItems(sup *simSupplier) []any {
	var out []any
	for _, st := range sup.Sites {
		out = append(out, map[string]any{"SupplierSiteId": st.ID, "SupplierSite": st.Site, "ProcurementBU": st.ProcurementBU, "SupplierAddressName": st.Addr})
	}
	return out
}

func (s *Server) supplierPost(w http.ResponseWriter, r *http.Request) {
	var in supplierIn
	if err := decodeJSON(r, &in); err != nil {
		badRequest(w, "%v", err)
		return
	}
	s.mu.Lock()
	sup, errs, _ := s.createSupplier(in)
	var body map[string]any
	if sup != nil {
		body = supplierJSON(r, sup, expandAll)
	}
	s.mu.Unlock()
	if len(errs) > 0 {
		writeErrors(w, http.StatusBadRequest, errs)
		return
	}
	writeJSON(w, http.StatusCreated, body)
}

var supplierAttrs = map[string]func(*simSupplier) string{
	"SupplierId":     func(s *simSupplier) string { return strconv.FormatInt(s.ID, 10) },
	"Supplier":       func(s *simSupplier) string { return s.Name },
	"SupplierNumber": func(s *simSupplier) string { return s.Number },
	"Status":         func(s *simSupplier) string { return s.Status },
	"LastUpdateDate": func(s *simSupplier) string { return s.Updated.UTC().Format(time.RFC3339Nano) },
}

func (s *Server) supplierGet(w http.ResponseWriter, r *http.Request) {
	q := queryParams(r)
	limit, offset, err := paging(q)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	terms, ok := filterTerms(w, q["q"], "suppliers", func(a string) bool { return supplierAttrs[a] != nil })
	if !ok {
		return
	}
	ex := parseExpandSet(q["expand"])
	var items []any
	s.mu.Lock()
	for _, sup := range s.scm.suppliers {
		match := true
		for _, t := range terms {
			kind := kString
			if t.attr == "LastUpdateDate" {
				kind = kTime
			}
			match = match && t.match(kind, supplierAttrs[t.attr](sup))
		}
		if match {
			items = append(items, supplierJSON(r, sup, ex))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, collection(r, q, items, limit, offset))
}

// supplierChildGet serves suppliers/{id}/child/sites and …/addresses.
func (s *Server) supplierChildGet(w http.ResponseWriter, r *http.Request) {
	q := queryParams(r)
	limit, offset, err := paging(q)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sup := range s.scm.suppliers {
		if sup.ID == id {
			items := siteItems(sup)
			if r.PathValue("child") == "addresses" {
				items = addressItems(sup)
			}
			writeJSON(w, http.StatusOK, collection(r, q, items, limit, offset))
			return
		}
	}
	writeError(w, http.StatusNotFound, "The supplier "+r.PathValue("id")+" doesn't exist.", "")
}

// --- inventoryOnhandBalances -----------------------------------------------

// OnhandRow is one on-hand balance.
type OnhandRow struct {
	Organization, Subinventory, ItemNumber, UOM string
	Quantity                                    fusion.Decimal
}

// onhandRows returns the balances sorted. Called with s.mu held.
func (s *Server) onhandRows() []OnhandRow {
	out := make([]OnhandRow, 0, len(s.scm.onhand))
	for k, q := range s.scm.onhand {
		uom := ""
		if it := s.scm.items[itemKey{k.org, k.item}]; it != nil {
			uom = it.PrimaryUOMCode
		}
		out = append(out, OnhandRow{Organization: k.org, Subinventory: k.subinv, ItemNumber: k.item, UOM: uom, Quantity: q})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Organization != b.Organization {
			return a.Organization < b.Organization
		}
		if a.ItemNumber != b.ItemNumber {
			return a.ItemNumber < b.ItemNumber
		}
		return a.Subinventory < b.Subinventory
	})
	return out
}

var onhandAttrs = map[string]func(*OnhandRow) string{
	"OrganizationCode": func(o *OnhandRow) string { return o.Organization },
	"SubinventoryCode": func(o *OnhandRow) string { return o.Subinventory },
	"ItemNumber":       func(o *OnhandRow) string { return o.ItemNumber },
}

func (s *Server) onhandGet(w http.ResponseWriter, r *http.Request) {
	q := queryParams(r)
	limit, offset, err := paging(q)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	terms, ok := filterTerms(w, q["q"], "inventoryOnhandBalances", func(a string) bool { return onhandAttrs[a] != nil })
	if !ok {
		return
	}
	var items []any
	s.mu.Lock()
	for _, row := range s.onhandRows() {
		match := true
		for _, t := range terms {
			match = match && t.match(kString, onhandAttrs[t.attr](&row))
		}
		if !match {
			continue
		}
		desc := ""
		if it := s.scm.items[itemKey{row.Organization, row.ItemNumber}]; it != nil {
			desc = it.Description
		}
		o, _ := s.org(row.Organization)
		items = append(items, map[string]any{
			"OrganizationCode": row.Organization, "OrganizationName": o.Name, "ItemNumber": row.ItemNumber,
			"ItemDescription": desc, "SubinventoryCode": row.Subinventory, "PrimaryUOMCode": row.UOM,
			"OnhandQuantity": row.Quantity,
		})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, collection(r, q, items, limit, offset))
}
