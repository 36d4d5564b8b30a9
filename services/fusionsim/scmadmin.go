package fusionsim

import (
	"net/http"
	"sort"
	"strconv"

	"github.com/sinewhq/sinew/pkg/fusion"
)

// SourceLine is the repeat-detection key of a staged transaction.
type SourceLine struct {
	SourceCode     string `json:"SourceCode"`
	SourceHeaderID int64  `json:"SourceHeaderId"`
	SourceLineID   int64  `json:"SourceLineId"`
}

// SourceLineStats counts the interface rows of one source line: Rows all
// of them, Processed those with ProcessFlag 1 (tests of Sinew's exactly-
// once posting assert Processed == 1 and Rows == 1).
type SourceLineStats struct {
	SourceLine
	Rows                    int     `json:"rows"`
	Processed               int     `json:"processed"`
	Errors                  int     `json:"errors"`
	TransactionInterfaceIDs []int64 `json:"transactionInterfaceIds"`
}

func (s *Server) scmAdminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /sim/inventory", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, simStagedRows(s.InventoryRows()))
	})
	mux.HandleFunc("GET /sim/inventory/count", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		n := len(s.scm.staged)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]int{"Rows": n})
	})
	mux.HandleFunc("GET /sim/inventory/lines", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, simSourceLines(s.InventoryLines()))
	})
	mux.HandleFunc("GET /sim/inventory/duplicates", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, simSourceLines(s.InventoryDuplicates()))
	})
	// Fusion losing a posted transaction (a purge, a restore): tests of
	// the nightly catch-up remove one source line's rows.
	mux.HandleFunc("DELETE /sim/inventory/lines", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		h, err1 := strconv.ParseInt(q.Get("SourceHeaderId"), 10, 64)
		l, err2 := strconv.ParseInt(q.Get("SourceLineId"), 10, 64)
		if q.Get("SourceCode") == "" || err1 != nil || err2 != nil {
			writeError(w, http.StatusBadRequest, "SourceCode, SourceHeaderId and SourceLineId are required", "")
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"Removed": s.RemoveInventoryLine(SourceLine{q.Get("SourceCode"), h, l})})
	})
	mux.HandleFunc("GET /sim/items", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Items())
	})
	mux.HandleFunc("GET /sim/suppliers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, simSuppliers(s.Suppliers()))
	})
	mux.HandleFunc("GET /sim/onhand", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, simOnhand(s.Onhand()))
	})
}

// InventoryRows returns every staged transaction, read lag or not, oldest first.
func (s *Server) InventoryRows() []StagedRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]StagedRow, 0, len(s.scm.staged))
	for _, r := range s.scm.staged {
		out = append(out, *r)
	}
	return out
}

// RemoveInventoryLine drops every staged row of a source line (on-hand is
// left as it was) and returns how many it dropped.
func (s *Server) RemoveInventoryLine(k SourceLine) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.scm.staged[:0]
	for _, r := range s.scm.staged {
		if (SourceLine{r.SourceCode, r.SourceHeaderID, r.SourceLineID}) != k {
			kept = append(kept, r)
		}
	}
	n := len(s.scm.staged) - len(kept)
	clear(s.scm.staged[len(kept):])
	s.scm.staged = kept
	delete(s.scm.byLine, k)
	return n
}

// InventoryLines counts the interface rows per source line.
func (s *Server) InventoryLines() []SourceLineStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[SourceLine]*SourceLineStats{}
	var order []SourceLine
	for _, r := range s.scm.staged {
		k := SourceLine{r.SourceCode, r.SourceHeaderID, r.SourceLineID}
		st := m[k]
		if st == nil {
			st = &SourceLineStats{SourceLine: k}
			m[k] = st
			order = append(order, k)
		}
		st.Rows++
		if r.ProcessFlag == fusion.ProcessFlagPending {
			st.Processed++
		} else {
			st.Errors++
		}
		st.TransactionInterfaceIDs = append(st.TransactionInterfaceIDs, r.TransactionInterfaceID)
	}
	out := make([]SourceLineStats, 0, len(order))
	for _, k := range order {
		out = append(out, *m[k])
	}
	return out
}

// InventoryDuplicates returns the source lines with more than one
// interface row: Fusion accepts a repeated SourceHeaderId/SourceLineId, so
// these are the effects Sinew must never cause.
func (s *Server) InventoryDuplicates() []SourceLineStats {
	out := []SourceLineStats{}
	for _, st := range s.InventoryLines() {
		if st.Rows > 1 {
			out = append(out, st)
		}
	}
	return out
}

// Items returns every item, sorted by organization and number.
func (s *Server) Items() []fusion.Item {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []fusion.Item
	for _, it := range s.sortedItems() {
		out = append(out, *it)
	}
	return out
}

// Suppliers returns every supplier with its sites.
func (s *Server) Suppliers() []fusion.Supplier {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]fusion.Supplier, 0, len(s.scm.suppliers))
	for _, sup := range s.scm.suppliers {
		fs := fusion.Supplier{SupplierID: sup.ID, Name: sup.Name, SupplierNumber: sup.Number, Status: sup.Status}
		addr := map[string]simAddress{}
		for _, a := range sup.Addresses {
			addr[a.Name] = a
		}
		for _, st := range sup.Sites {
			a := addr[st.Addr]
			fs.Sites = append(fs.Sites, fusion.SupplierSite{Site: st.Site, ProcurementBU: st.ProcurementBU,
				AddressLine1: a.Line1, City: a.City, PostalCode: a.PostalCode, Country: a.Country})
		}
		out = append(out, fs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SupplierID < out[j].SupplierID })
	return out
}

// Onhand returns every on-hand balance.
func (s *Server) Onhand() []OnhandRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.onhandRows()
}
