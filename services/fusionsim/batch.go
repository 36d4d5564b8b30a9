package fusionsim

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/fusion"
)

// The batch endpoint (POST APIPath/ with application/vnd.oracle.adf.batch+json):
// parts run in order under one lock; when any part fails every effect is
// undone and the answer (400) lists only the failing parts with their
// errors. When all succeed the answer (200) lists every part with its
// payload. ASSUMPTION: the failure status (400) and the per-part "status"
// field are the simulator's; the corpus only fixes all-or-none and
// "only failing parts".

type batchPart struct {
	ID        string          `json:"id"`
	Path      string          `json:"path"`
	Operation string          `json:"operation"`
	Status    int             `json:"status,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"`
}

func (s *Server) batchPost(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != fusion.BatchContentType {
		writeError(w, http.StatusUnsupportedMediaType, "A batch request needs Content-Type "+fusion.BatchContentType+".", "")
		return
	}
	var req struct {
		Parts []batchPart `json:"parts"`
	}
	if err := decodeJSON(r, &req); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if len(req.Parts) == 0 {
		badRequest(w, "The batch request has no parts.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	var undos []func()
	var ok, failed []batchPart
	var allErrs []fieldErr
	for _, p := range req.Parts {
		status, body, errs, undo := s.batchPart(r, p, now)
		if undo != nil {
			undos = append(undos, undo)
		}
		out := batchPart{ID: p.ID, Path: p.Path, Operation: p.Operation, Status: status}
		if len(errs) > 0 {
			out.Payload, _ = json.Marshal(errorEnvelope(status, errs))
			failed = append(failed, out)
			allErrs = append(allErrs, errs...)
			continue
		}
		out.Payload, _ = json.Marshal(body)
		ok = append(ok, out)
	}
	if len(failed) > 0 {
		for i := len(undos) - 1; i >= 0; i-- {
			undos[i]()
		}
		env := errorEnvelope(http.StatusBadRequest, allErrs)
		writeJSONAs(w, http.StatusBadRequest, "application/vnd.oracle.adf.error+json", struct {
			errorBody
			Parts []batchPart `json:"parts"`
		}{env, failed})
		return
	}
	writeBatchAnswer(w, ok)
}

// writeBatchAnswer writes {"parts": [...]} around payloads already encoded
// (json.Marshal would compact each of them again).
func writeBatchAnswer(w http.ResponseWriter, parts []batchPart) {
	b := []byte(`{"parts":[`)
	for i, p := range parts {
		if i > 0 {
			b = append(b, ',')
		}
		head, err := json.Marshal(batchPart{ID: p.ID, Path: p.Path, Operation: p.Operation, Status: p.Status})
		if err != nil {
			writeError(w, http.StatusInternalServerError, "encoding: "+err.Error(), "")
			return
		}
		b = append(b, head[:len(head)-1]...) // without its closing brace
		if len(p.Payload) > 0 {
			b = append(b, `,"payload":`...)
			b = append(b, p.Payload...)
		}
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	w.Header().Set("Content-Type", fusion.BatchContentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// batchPart runs one part. Called with s.mu held.
func (s *Server) batchPart(r *http.Request, p batchPart, now time.Time) (int, any, []fieldErr, func()) {
	path := strings.TrimPrefix(p.Path, APIPath)
	if i := strings.Index(path, APIPath); i >= 0 { // absolute URL
		path = path[i+len(APIPath):]
	}
	path = "/" + strings.Trim(path, "/")
	bad := func(msg string) (int, any, []fieldErr, func()) {
		return http.StatusBadRequest, nil, []fieldErr{{"path", "", msg}}, nil
	}
	decode := func(v any) []fieldErr {
		if err := decodeBytes(p.Payload, v); err != nil {
			return []fieldErr{{"payload", "", err.Error()}}
		}
		return nil
	}
	switch {
	case path == fusion.InventoryStagedTransactionsPath && p.Operation == fusion.OpCreate:
		var in txnIn
		if errs := decode(&in); errs != nil {
			return http.StatusBadRequest, nil, errs, nil
		}
		row, errs, undo := s.stageTxn(in, false, now)
		if len(errs) > 0 {
			return http.StatusBadRequest, nil, errs, nil
		}
		return http.StatusCreated, s.txnItem(r, row, expandAll), nil, undo
	case path == fusion.ItemsPath && (p.Operation == fusion.OpCreate || p.Operation == fusion.OpUpsert):
		var in itemIn
		if errs := decode(&in); errs != nil {
			return http.StatusBadRequest, nil, errs, nil
		}
		it, created, errs, undo := s.putItem(in, p.Operation == fusion.OpUpsert)
		if len(errs) > 0 {
			return http.StatusBadRequest, nil, errs, nil
		}
		st := http.StatusOK
		if created {
			st = http.StatusCreated
		}
		return st, s.itemJSON(r, it, expandAll), nil, undo
	case path == fusion.SuppliersPath && p.Operation == fusion.OpCreate:
		var in supplierIn
		if errs := decode(&in); errs != nil {
			return http.StatusBadRequest, nil, errs, nil
		}
		sup, errs, undo := s.createSupplier(in)
		if len(errs) > 0 {
			return http.StatusBadRequest, nil, errs, nil
		}
		return http.StatusCreated, supplierJSON(r, sup, expandAll), nil, undo
	}
	return bad("The operation " + p.Operation + " on " + p.Path + " isn't supported in a batch by the simulator.")
}
