package fusionsim

import (
	"strconv"
	"time"

	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/money"
)

// The /sim/ inspection endpoints answer these shapes: attribute names as
// Fusion's REST resources spell them (UpperCamelCase, "Id"), and every id a
// JSON string. Sinew's ids reach 63 bits (SourceHeaderId and SourceLineId
// are hashes) and a float64 JSON reader (JavaScript, jq) rounds any integer
// above 2^53; Fusion's own resources send their integer ids as numbers
// (ReqstId as a string), and the simulator does as Fusion does there.

// SimGroupImport is a row of /sim/imports: what Journal Import did with one
// GROUP_ID.
type SimGroupImport struct {
	GroupID int64 `json:"GroupId,string"`
	Imports int   `json:"Imports"`
	Posted  int   `json:"Posted"`
	Held    int   `json:"Held"`
}

// SimInterfaceRow is a row of /sim/interface: a GL_INTERFACE row, its
// columns camel-cased as Fusion's REST attributes are.
type SimInterfaceRow struct {
	InterfaceID        int64         `json:"InterfaceId,string"`
	LoadRequestID      int64         `json:"LoadRequestId,string"`
	Status             string        `json:"Status"` // NEW, P, or error codes such as EF04
	StatusDescription  string        `json:"StatusDescription,omitempty"`
	LedgerID           string        `json:"LedgerId"`
	LedgerName         string        `json:"LedgerName"`
	AccountingDate     string        `json:"AccountingDate"`
	UserJeSourceName   string        `json:"UserJeSourceName"`
	UserJeCategoryName string        `json:"UserJeCategoryName"`
	CurrencyCode       string        `json:"CurrencyCode"`
	PeriodName         string        `json:"PeriodName"`
	Segments           []string      `json:"Segments"` // SEGMENT1..SEGMENT30
	EnteredDr          *money.Amount `json:"EnteredDr,omitempty"`
	EnteredCr          *money.Amount `json:"EnteredCr,omitempty"`
	GroupID            int64         `json:"GroupId,string"`
	BatchName          string        `json:"BatchName"`                    // REFERENCE1
	BatchDescription   string        `json:"BatchDescription,omitempty"`   // REFERENCE2
	JournalName        string        `json:"JournalName"`                  // REFERENCE4
	JournalDescription string        `json:"JournalDescription,omitempty"` // REFERENCE5
	LineDescription    string        `json:"LineDescription,omitempty"`    // REFERENCE10
	Reference21        string        `json:"Reference21"`
}

// SimBatch is a journal batch of /sim/batches, read lag or not, named as
// the journalBatches resource names its attributes.
type SimBatch struct {
	JeBatchID        int64        `json:"JeBatchId,string"`
	BatchName        string       `json:"BatchName"`
	BatchDescription string       `json:"BatchDescription,omitempty"`
	UserJeSourceName string       `json:"UserJeSourceName"`
	LedgerID         string       `json:"LedgerId"`
	LedgerName       string       `json:"LedgerName"`
	PeriodName       string       `json:"PeriodName"`
	StatusMeaning    string       `json:"StatusMeaning"`
	GroupID          int64        `json:"GroupId,string"`
	RequestID        int64        `json:"RequestId,string"`
	PostedAt         time.Time    `json:"PostedAt"`
	VisibleAt        time.Time    `json:"VisibleAt"` // PostedAt + read lag
	JournalHeaders   []SimJournal `json:"JournalHeaders"`
}

// SimJournal is a journal header of a SimBatch with its lines.
type SimJournal struct {
	JeHeaderID         int64       `json:"JeHeaderId,string"`
	JournalName        string      `json:"JournalName"`
	JournalDescription string      `json:"JournalDescription,omitempty"`
	UserJeCategoryName string      `json:"UserJeCategoryName"`
	CurrencyCode       string      `json:"CurrencyCode"`
	PeriodName         string      `json:"PeriodName"`
	JournalLines       []SimJeLine `json:"JournalLines"`
}

// SimJeLine is a posted journal line.
type SimJeLine struct {
	LineNumber         int           `json:"LineNumber"`
	AccountCombination string        `json:"AccountCombination"`
	Segments           []string      `json:"Segments"`
	EnteredDebit       *money.Amount `json:"EnteredDebit,omitempty"`
	EnteredCredit      *money.Amount `json:"EnteredCredit,omitempty"`
	Description        string        `json:"Description,omitempty"`
	Reference21        string        `json:"Reference21"`
}

// SimRequest is an ESS request of /sim/requests.
type SimRequest struct {
	RequestID       int64     `json:"RequestId,string"`
	RootRequestID   int64     `json:"RootRequestId,string"`             // first request of its chain
	ParentRequestID int64     `json:"ParentRequestId,string,omitempty"` // absent for top-level jobs
	OperationName   string    `json:"OperationName"`                    // importBulkData or submitESSJobRequest
	JobName         string    `json:"JobName"`
	RequestStatus   string    `json:"RequestStatus"`
	FileName        string    `json:"FileName,omitempty"`
	Source          string    `json:"Source"`
	LedgerID        string    `json:"LedgerId"`
	GroupID         string    `json:"GroupId"` // as the ParameterList gave it (a number or ALL)
	SubmittedAt     time.Time `json:"SubmittedAt"`
}

// SimRequestFiles is /sim/requests/{id}: a request's status, log and output.
type SimRequestFiles struct {
	RequestID     int64  `json:"RequestId,string"`
	RequestStatus string `json:"RequestStatus"`
	Log           string `json:"Log"`
	Output        string `json:"Output"`
}

// SimCallback is a callback of /sim/callbacks.
type SimCallback struct {
	RequestID     int64  `json:"RequestId,string"`
	CallbackURL   string `json:"CallbackURL"`
	SummaryStatus string `json:"SummaryStatus"`
	Lost          bool   `json:"Lost"`      // dropped by a fault, never sent
	Attempts      int    `json:"Attempts"`  // POSTs tried
	Delivered     bool   `json:"Delivered"` // a 2xx came back
	LastError     string `json:"LastError,omitempty"`
}

// SimStagedRow is a row of /sim/inventory: a staged transaction, read lag
// or not, named as inventoryStagedTransactions names its attributes.
type SimStagedRow struct {
	TransactionInterfaceID   int64          `json:"TransactionInterfaceId,string"`
	OrganizationName         string         `json:"OrganizationName"`
	OrganizationCode         string         `json:"OrganizationCode"`
	SubinventoryCode         string         `json:"SubinventoryCode"`
	ItemNumber               string         `json:"ItemNumber"`
	TransactionTypeName      string         `json:"TransactionTypeName"`
	TransactionQuantity      fusion.Decimal `json:"TransactionQuantity"`
	TransactionUnitOfMeasure string         `json:"TransactionUnitOfMeasure"`
	TransactionDate          time.Time      `json:"TransactionDate"`
	SourceCode               string         `json:"SourceCode"`
	SourceHeaderID           int64          `json:"SourceHeaderId,string"`
	SourceLineID             int64          `json:"SourceLineId,string"`
	TransactionReference     string         `json:"TransactionReference,omitempty"`
	LotNumber                string         `json:"LotNumber,omitempty"`
	SerialNumber             string         `json:"SerialNumber,omitempty"`
	Program340B              bool           `json:"Program340B"` // DFF program340B
	CostCenter               string         `json:"CostCenter,omitempty"`
	ProcessFlag              int            `json:"ProcessFlag"` // 1 accepted, 3 error
	ErrorCode                string         `json:"ErrorCode,omitempty"`
	ErrorExplanation         string         `json:"ErrorExplanation,omitempty"`
	CreatedAt                time.Time      `json:"CreatedAt"`
	VisibleAt                time.Time      `json:"VisibleAt"` // CreatedAt + read lag
}

// SimSourceLine is a row of /sim/inventory/lines and /duplicates: the
// interface rows of one source line.
type SimSourceLine struct {
	SourceCode              string   `json:"SourceCode"`
	SourceHeaderID          int64    `json:"SourceHeaderId,string"`
	SourceLineID            int64    `json:"SourceLineId,string"`
	Rows                    int      `json:"Rows"`
	Processed               int      `json:"Processed"`
	Errors                  int      `json:"Errors"`
	TransactionInterfaceIDs []string `json:"TransactionInterfaceIds"`
}

// SimSupplier is a supplier of /sim/suppliers with its sites.
type SimSupplier struct {
	SupplierID     int64             `json:"SupplierId,string"`
	Supplier       string            `json:"Supplier"`
	SupplierNumber string            `json:"SupplierNumber"`
	Status         string            `json:"Status"`
	Sites          []SimSupplierSite `json:"Sites"`
}

// SimSupplierSite is a supplier site with its address.
type SimSupplierSite struct {
	SupplierSite  string `json:"SupplierSite"`
	ProcurementBU string `json:"ProcurementBU"`
	AddressLine1  string `json:"AddressLine1,omitempty"`
	City          string `json:"City,omitempty"`
	PostalCode    string `json:"PostalCode,omitempty"`
	CountryCode   string `json:"CountryCode,omitempty"`
}

// SimOnhand is a balance of /sim/onhand, named as inventoryOnhandBalances
// names its attributes.
type SimOnhand struct {
	OrganizationCode string         `json:"OrganizationCode"`
	SubinventoryCode string         `json:"SubinventoryCode"`
	ItemNumber       string         `json:"ItemNumber"`
	PrimaryUOMCode   string         `json:"PrimaryUOMCode"`
	OnhandQuantity   fusion.Decimal `json:"OnhandQuantity"`
}

func amountIf(a money.Amount, has bool) *money.Amount {
	if !has {
		return nil
	}
	return &a
}

func simInterfaceRows(rows []InterfaceRow) []SimInterfaceRow {
	out := make([]SimInterfaceRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, SimInterfaceRow{InterfaceID: r.ID, LoadRequestID: r.LoadRequestID, Status: r.Status,
			StatusDescription: r.StatusDescription, LedgerID: r.LedgerID, LedgerName: r.LedgerName,
			AccountingDate: r.AccountingDate, UserJeSourceName: r.Source, UserJeCategoryName: r.Category,
			CurrencyCode: r.Currency, PeriodName: r.Period, Segments: r.Segments,
			EnteredDr: amountIf(r.DR, r.HasDR), EnteredCr: amountIf(r.CR, r.HasCR), GroupID: r.GroupID,
			BatchName: r.BatchName, BatchDescription: r.BatchDescription, JournalName: r.JournalName,
			JournalDescription: r.JournalDescription, LineDescription: r.LineDescription, Reference21: r.Reference21})
	}
	return out
}

func simBatches(batches []Batch) []SimBatch {
	out := make([]SimBatch, 0, len(batches))
	for _, b := range batches {
		sb := SimBatch{JeBatchID: b.ID, BatchName: b.Name, BatchDescription: b.Description, UserJeSourceName: b.Source,
			LedgerID: b.LedgerID, LedgerName: b.LedgerName, PeriodName: b.Period, StatusMeaning: b.Status,
			GroupID: b.GroupID, RequestID: b.RequestID, PostedAt: b.PostedAt, VisibleAt: b.VisibleAt,
			JournalHeaders: make([]SimJournal, 0, len(b.Journals))}
		for _, j := range b.Journals {
			sj := SimJournal{JeHeaderID: j.ID, JournalName: j.Name, JournalDescription: j.Description,
				UserJeCategoryName: j.Category, CurrencyCode: j.Currency, PeriodName: j.Period,
				JournalLines: make([]SimJeLine, 0, len(j.Lines))}
			for _, l := range j.Lines {
				sj.JournalLines = append(sj.JournalLines, SimJeLine{LineNumber: l.Number, AccountCombination: l.Account,
					Segments: l.Segments, EnteredDebit: amountIf(l.DR, l.DR != 0), EnteredCredit: amountIf(l.CR, l.CR != 0),
					Description: l.Description, Reference21: l.Reference21})
			}
			sb.JournalHeaders = append(sb.JournalHeaders, sj)
		}
		out = append(out, sb)
	}
	return out
}

func simRequests(reqs []RequestInfo) []SimRequest {
	out := make([]SimRequest, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, SimRequest{RequestID: r.ID, RootRequestID: r.Root, ParentRequestID: r.Parent,
			OperationName: r.Operation, JobName: r.Job, RequestStatus: r.Status, FileName: r.FileName,
			Source: r.Source, LedgerID: r.LedgerID, GroupID: r.GroupID, SubmittedAt: r.Submitted})
	}
	return out
}

func simCallbacks(cbs []CallbackRecord) []SimCallback {
	out := make([]SimCallback, 0, len(cbs))
	for _, c := range cbs {
		out = append(out, SimCallback{RequestID: c.RequestID, CallbackURL: c.URL, SummaryStatus: c.SummaryStatus,
			Lost: c.Lost, Attempts: c.Attempts, Delivered: c.Delivered, LastError: c.LastError})
	}
	return out
}

func simStagedRows(rows []StagedRow) []SimStagedRow {
	out := make([]SimStagedRow, 0, len(rows))
	for _, r := range rows {
		t := r.InventoryTransaction
		out = append(out, SimStagedRow{TransactionInterfaceID: r.TransactionInterfaceID,
			OrganizationName: t.OrganizationName, OrganizationCode: r.OrganizationCode, SubinventoryCode: t.SubinventoryCode,
			ItemNumber: t.ItemNumber, TransactionTypeName: t.TransactionTypeName, TransactionQuantity: t.TransactionQuantity,
			TransactionUnitOfMeasure: t.TransactionUnitOfMeasure, TransactionDate: t.TransactionDate,
			SourceCode: t.SourceCode, SourceHeaderID: t.SourceHeaderID, SourceLineID: t.SourceLineID,
			TransactionReference: t.TransactionReference, LotNumber: t.LotNumber, SerialNumber: t.SerialNumber,
			Program340B: t.Program340B, CostCenter: t.CostCenter, ProcessFlag: r.ProcessFlag,
			ErrorCode: r.ErrorCode, ErrorExplanation: r.ErrorExplanation, CreatedAt: r.CreatedAt, VisibleAt: r.VisibleAt})
	}
	return out
}

func simSourceLines(lines []SourceLineStats) []SimSourceLine {
	out := make([]SimSourceLine, 0, len(lines))
	for _, l := range lines {
		ids := make([]string, 0, len(l.TransactionInterfaceIDs))
		for _, id := range l.TransactionInterfaceIDs {
			ids = append(ids, strconv.FormatInt(id, 10))
		}
		out = append(out, SimSourceLine{SourceCode: l.SourceCode, SourceHeaderID: l.SourceHeaderID, SourceLineID: l.SourceLineID,
			Rows: l.Rows, Processed: l.Processed, Errors: l.Errors, TransactionInterfaceIDs: ids})
	}
	return out
}

func simSuppliers(sups []fusion.Supplier) []SimSupplier {
	out := make([]SimSupplier, 0, len(sups))
	for _, s := range sups {
		ss := SimSupplier{SupplierID: s.SupplierID, Supplier: s.Name, SupplierNumber: s.SupplierNumber, Status: s.Status,
			Sites: make([]SimSupplierSite, 0, len(s.Sites))}
		for _, st := range s.Sites {
			ss.Sites = append(ss.Sites, SimSupplierSite{SupplierSite: st.Site, ProcurementBU: st.ProcurementBU,
				AddressLine1: st.AddressLine1, City: st.City, PostalCode: st.PostalCode, CountryCode: st.Country})
		}
		out = append(out, ss)
	}
	return out
}

func simOnhand(rows []OnhandRow) []SimOnhand {
	out := make([]SimOnhand, 0, len(rows))
	for _, r := range rows {
		out = append(out, SimOnhand{OrganizationCode: r.Organization, SubinventoryCode: r.Subinventory,
			ItemNumber: r.ItemNumber, PrimaryUOMCode: r.UOM, OnhandQuantity: r.Quantity})
	}
	return out
}
