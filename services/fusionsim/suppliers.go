package fusionsim

import (
	"net/http"
	"slices"
	"strconv"
	"time"
)

// supplierNow is a strictly increasing LastUpdateDate for suppliers, so
// an incremental read (q=LastUpdateDate>'…') never misses or ties two
// changes. Called with s.mu held.
func (s *Server) supplierNow() time.Time {
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, o := range s.scm.suppliers {
		if !now.After(o.Updated) {
			now = o.Updated.Add(time.Millisecond)
		}
	}
	return now
}

// supplierPatch changes a supplier's name or status (ACTIVE, INACTIVE),
// as PATCH suppliers/{SupplierId} does.
func (s *Server) supplierPatch(w http.ResponseWriter, r *http.Request) {
	var in map[string]string
	if err := decodeJSON(r, &in); err != nil {
		badRequest(w, "%v", err)
		return
	}
	var errs []fieldErr
	for k, v := range in {
		switch {
		case k == "Status" && !slices.Contains([]string{"ACTIVE", "INACTIVE"}, v):
			errs = append(errs, invalid("Status", CodeSupplierInvalid, v))
		case k == "Supplier" && v == "":
			errs = append(errs, fieldErr{"Supplier", CodeSupplierInvalid, "The attribute Supplier is required."})
		case k != "Status" && k != "Supplier":
			errs = append(errs, fieldErr{k, CodeSupplierInvalid, "The attribute " + k + " can't be updated."})
		}
	}
	if len(errs) > 0 {
		writeErrors(w, http.StatusBadRequest, errs)
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sup := range s.scm.suppliers {
		if sup.ID != id {
			continue
		}
		if v, ok := in["Supplier"]; ok {
			for _, o := range s.scm.suppliers {
				if o != sup && o.Name == v {
					writeErrors(w, http.StatusBadRequest, []fieldErr{{"Supplier", CodeSupplierExists, "The supplier " + v + " already exists."}})
					return
				}
			}
			sup.Name = v
		}
		if v, ok := in["Status"]; ok {
			sup.Status = v
		}
		sup.Updated = s.supplierNow()
		writeJSON(w, http.StatusOK, supplierJSON(r, sup, expandAll))
		return
	}
	writeError(w, http.StatusNotFound, "The supplier "+r.PathValue("id")+" doesn't exist.", "")
}
