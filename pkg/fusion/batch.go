package fusion

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// BatchContentType is the media type of Fusion's batch requests.
const BatchContentType = "application/vnd.oracle.adf.batch+json"

// Batch operations.
const (
	OpCreate = "create"
	OpUpsert = "upsert"
	OpGet    = "get"
)

// BatchPart is one operation of a batch: ID names it in the answer, Path is
// the resource under APIPath ("/inventoryStagedTransactions").
type BatchPart struct {
	ID, Path, Operation string
	Payload             any
}

// BatchPartResult is a part of the answer: Status and Payload when it took
// effect, Error when it failed.
type BatchPartResult struct {
	ID      string
	Status  int
	Error   *Error
	Payload json.RawMessage
}

type wireBatchPart struct {
	ID        string          `json:"id"`
	Path      string          `json:"path"`
	Operation string          `json:"operation"`
	Status    json.Number     `json:"status,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"`
}

// Batch sends parts as one all-or-none batch request: either every part
// takes effect or none does. On success it returns one result per part.
// When a part fails it returns only the failing parts (each with its
// Error) together with an *Error (the batch's status, permanent for a 4xx):
// nothing of the batch took effect.
func (c *Client) Batch(ctx context.Context, parts []BatchPart) ([]BatchPartResult, error) {
	var out struct {
		Parts []wireBatchPart `json:"parts"`
	}
	if failed, err := c.postBatch(ctx, parts, &out); err != nil || len(parts) == 0 {
		return failed, err
	}
	res := make([]BatchPartResult, 0, len(out.Parts))
	for _, p := range out.Parts {
		r := BatchPartResult{ID: p.ID, Status: http.StatusOK, Payload: p.Payload}
		if n, err := p.Status.Int64(); err == nil && n > 0 {
			r.Status = int(n)
		}
		if r.Status >= 400 {
			r.Error = partError(r.Status, p.Payload)
		}
		res = append(res, r)
	}
	return res, nil
}

// CreateInventoryTransactions stages ts in one all-or-none batch request,
// part i named "p<i>", and returns each one's status, read in the same pass
// as the answer (a busy loader's batches are most of what it decodes).
// When a part fails it returns the failing parts and an *Error, as Batch.
func (c *Client) CreateInventoryTransactions(ctx context.Context, ts []InventoryTransaction) ([]StagedStatus, []BatchPartResult, error) {
	parts := make([]BatchPart, len(ts))
	for i, t := range ts {
		parts[i] = BatchPart{ID: "p" + strconv.Itoa(i), Path: InventoryStagedTransactionsPath, Operation: OpCreate, Payload: t}
	}
	var out struct {
		Parts []struct {
			ID      string           `json:"id"`
			Payload stagedStatusWire `json:"payload"`
		} `json:"parts"`
	}
	if failed, err := c.postBatch(ctx, parts, &out); err != nil || len(ts) == 0 {
		return nil, failed, err
	}
	st := make([]StagedStatus, len(ts))
	seen := make([]bool, len(ts))
	for _, p := range out.Parts {
		i, err := strconv.Atoi(strings.TrimPrefix(p.ID, "p"))
		if err != nil || i < 0 || i >= len(ts) || seen[i] {
			return nil, nil, &ProtocolError{Op: "batch", Err: fmt.Errorf("part id %q not sent or repeated", p.ID)}
		}
		if st[i], err = p.Payload.status(); err != nil {
			return nil, nil, &ProtocolError{Op: "batch", Err: fmt.Errorf("part %s: %w", p.ID, err)}
		}
		seen[i] = true
	}
	for i, ok := range seen {
		if !ok {
			return nil, nil, &ProtocolError{Op: "batch", Err: fmt.Errorf("no answer for part p%d", i)}
		}
	}
	return st, nil, nil
}

// postBatch posts parts and decodes a 2xx answer into out; on a failed batch
// it returns the failing parts with the error.
func (c *Client) postBatch(ctx context.Context, parts []BatchPart, out any) ([]BatchPartResult, error) {
	const op = "batch"
	if len(parts) == 0 {
		return nil, nil
	}
	body := struct {
		Parts []wireBatchPart `json:"parts"`
	}{}
	seen := map[string]bool{}
	for _, p := range parts {
		if p.ID == "" || seen[p.ID] {
			return nil, fmt.Errorf("fusion: %s: part id %q empty or repeated", op, p.ID)
		}
		seen[p.ID] = true
		payload, err := marshalPayload(p.Payload)
		if err != nil {
			return nil, fmt.Errorf("fusion: %s: part %s: %w", op, p.ID, err)
		}
		path := p.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		body.Parts = append(body.Parts, wireBatchPart{ID: p.ID, Path: path, Operation: p.Operation, Payload: payload})
	}
	if err := c.do(ctx, request{op: op, method: http.MethodPost, path: "/", body: body, contentType: BatchContentType}, out); err != nil {
		return batchFailure(err)
	}
	return nil, nil
}

// marshalPayload encodes a part's payload; InventoryTransaction, Item and
// Supplier values are sent in their wire shape.
func marshalPayload(v any) (json.RawMessage, error) {
	switch p := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		return p, nil
	case InventoryTransaction:
		w, err := p.wire()
		if err != nil {
			return nil, err
		}
		return json.Marshal(w)
	case *InventoryTransaction:
		return marshalPayload(*p)
	case Item:
		return json.Marshal(p.wire())
	case *Item:
		return json.Marshal(p.wire())
	case Supplier:
		return json.Marshal(p.wire())
	case *Supplier:
		return json.Marshal(p.wire())
	}
	return json.Marshal(v)
}

// batchFailure splits a failed batch's answer into its failing parts.
func batchFailure(err error) ([]BatchPartResult, error) {
	fe, ok := asError(err)
	if !ok || len(fe.raw) == 0 {
		return nil, err
	}
	var out struct {
		Parts []wireBatchPart `json:"parts"`
	}
	if decodeNumbers(fe.raw, &out) != nil {
		return nil, err
	}
	var res []BatchPartResult
	for _, p := range out.Parts {
		st := fe.StatusCode
		if n, err := p.Status.Int64(); err == nil && n > 0 {
			st = int(n)
		}
		res = append(res, BatchPartResult{ID: p.ID, Status: st, Error: partError(st, p.Payload), Payload: p.Payload})
	}
	return res, err
}

// partError reads a part's error payload (Fusion's error envelope).
func partError(status int, payload json.RawMessage) *Error {
	return readError(&http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(payload))})
}

// stagedStatusWire is the status part of a staged row as Fusion writes it
// (empty in a row being posted).
type stagedStatusWire struct {
	TransactionInterfaceID json.Number `json:"TransactionInterfaceId,omitempty"`
	ProcessFlag            json.Number `json:"ProcessFlag,omitempty"`
	ErrorCode              string      `json:"ErrorCode,omitempty"`
	ErrorExplanation       string      `json:"ErrorExplanation,omitempty"`
}

func (w stagedStatusWire) status() (StagedStatus, error) {
	id, err := int64Of(w.TransactionInterfaceID)
	if err != nil || id <= 0 {
		return StagedStatus{}, fmt.Errorf("TransactionInterfaceId %q", w.TransactionInterfaceID)
	}
	pf, err := int64Of(w.ProcessFlag)
	if err != nil {
		return StagedStatus{}, fmt.Errorf("ProcessFlag: %w", err)
	}
	return StagedStatus{TransactionInterfaceID: id, ProcessFlag: int(pf), ErrorCode: w.ErrorCode, ErrorExplanation: w.ErrorExplanation}, nil
}
