package fusionsim

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
)

// adminRoutes are the /sim/ endpoints: faults, inspection and reset. They
// need no credentials and see no faults. Inspection answers the Sim* shapes
// of simjson.go: Fusion's attribute names, ids as strings.
func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /sim/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("POST /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			badRequest(w, "faults: %v", err)
			return
		}
		if err := s.SetFaults(f); err != nil {
			badRequest(w, "%v", err)
			return
		}
		writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("DELETE /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		_ = s.SetFaults(Faults{})
		writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("POST /sim/release", func(w http.ResponseWriter, r *http.Request) {
		s.Release()
		writeJSON(w, http.StatusOK, map[string]string{"status": "released"})
	})
	mux.HandleFunc("POST /sim/reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		writeJSON(w, http.StatusOK, map[string]string{"status": "reset"})
	})
	mux.HandleFunc("GET /sim/payments", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Payments())
	})
	mux.HandleFunc("GET /sim/workers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Workers())
	})
	mux.HandleFunc("GET /sim/imports", func(w http.ResponseWriter, r *http.Request) {
		m := s.GroupImports()
		out := make([]SimGroupImport, 0, len(m))
		for g, st := range m {
			out = append(out, SimGroupImport{GroupID: g, Imports: st.Imports, Posted: st.Posted, Held: st.Held})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].GroupID < out[j].GroupID })
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /sim/interface", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, simInterfaceRows(s.InterfaceRows()))
	})
	mux.HandleFunc("GET /sim/batches", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, simBatches(s.JournalBatches()))
	})
	mux.HandleFunc("GET /sim/requests", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, simRequests(s.Requests()))
	})
	mux.HandleFunc("GET /sim/requests/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		files := s.JobFiles(id)
		if files == nil {
			writeError(w, http.StatusNotFound, "no such request", "")
			return
		}
		writeJSON(w, http.StatusOK, SimRequestFiles{RequestID: id, RequestStatus: s.JobStatus(id), Log: files[0], Output: files[1]})
	})
	mux.HandleFunc("GET /sim/callbacks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, simCallbacks(s.Callbacks()))
	})
	s.scmAdminRoutes(mux)
}

// Reset forgets every request, interface row, journal and balance, stops
// running chains, restores the configured faults and puts the SCM state
// (staged transactions, items, suppliers, on-hand) back to the master data.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.st.abort)
	next := s.st.nextReq // request ids never repeat within a process
	s.st = newState(next)
	s.scm = newSCMState(s.md, s.scm)
	s.hcm = nil
	s.pay = nil
	s.faults = s.cfg.Faults.clone()
}

// GroupImports returns, per GROUP_ID, what Journal Import did with it.
func (s *Server) GroupImports() map[int64]GroupStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int64]GroupStats, len(s.st.imports))
	for g, st := range s.st.imports {
		out[g] = *st
	}
	return out
}

// InterfaceRows returns a copy of GL_INTERFACE.
func (s *Server) InterfaceRows() []InterfaceRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]InterfaceRow, 0, len(s.st.iface))
	for _, r := range s.st.iface {
		c := *r
		c.Segments = append([]string(nil), r.Segments...)
		out = append(out, c)
	}
	return out
}

// JournalBatches returns every batch posted, read lag or not.
func (s *Server) JournalBatches() []Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Batch, 0, len(s.st.batches))
	for _, b := range s.st.batches {
		c := *b
		c.Journals = append([]Journal(nil), b.Journals...)
		out = append(out, c)
	}
	return out
}

// JobFiles returns the log and output of request id, or nil if unknown.
func (s *Server) JobFiles(id int64) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.st.jobs[id]
	if j == nil {
		return nil
	}
	return []string{j.log, j.out}
}
