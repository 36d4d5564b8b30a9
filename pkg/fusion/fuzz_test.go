package fusion

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/corpus"
)

// Fuzz targets for everything this client decodes from Fusion: the ESS
// callback, error envelopes, Retry-After, decimals, import reports and
// every REST answer (through the real client against a real HTTP server
// answering the fuzzer's bytes). None may panic or hang; amounts stay
// exact (no float64 anywhere in the decoders).

// fusionSeeds are the corpus's payload shapes (when present) and the
// in-repo synthetic ones.
func fusionSeeds(f *testing.F) [][]byte {
	var out [][]byte
	files := corpus.Seeds(f, "fusion", "*.json")
	files = append(files, "testdata/erpintegrations.synthetic.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
		var all map[string]json.RawMessage
		if json.Unmarshal(b, &all) == nil {
			for _, v := range all {
				out = append(out, v)
				var s string // payloads kept as JSON strings
				if json.Unmarshal(v, &s) == nil {
					out = append(out, []byte(s))
				}
			}
		}
	}
	return append(out, []byte(`{"items":[{"TransactionQuantity":1.5e400}],"hasMore":false}`), []byte(`{"JOBS":[{"JOBS":[{}]}]}`))
}

func FuzzParseCallback(f *testing.F) {
	for _, s := range fusionSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cb, err := ParseCallback(bytes.NewReader(b))
		if err == nil {
			_ = cb.RequestIDs()
		}
	})
}

func FuzzReadError(f *testing.F) {
	for _, s := range fusionSeeds(f) {
		f.Add(400, "", s)
	}
	f.Add(503, "7", []byte("Service down"))
	f.Add(429, "Wed, 21 Oct 2026 07:28:00 GMT", []byte(`{"title":"x","o:errorDetails":[{}]}`))
	f.Fuzz(func(t *testing.T, status int, retryAfter string, b []byte) {
		resp := &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {retryAfter}}, Body: io.NopCloser(bytes.NewReader(b))}
		e := readError(resp)
		_ = e.Error()
		_ = e.Temporary()
	})
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"7", "0", "-1", "99999999999999999999", "Wed, 21 Oct 2026 07:28:00 GMT", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 10, 21, 7, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		if d := ParseRetryAfter(s, now); d < 0 {
			t.Fatalf("%q: negative %v", s, d)
		}
	})
}

func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"0", "-1.25", "1e3", "12345678901234567890.123456789", ".5", "", "NaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDecimal(s)
		if err != nil {
			return
		}
		// A decimal that parsed prints and parses to itself.
		d2, err := ParseDecimal(string(d))
		if err != nil || d2 != d {
			t.Fatalf("%q -> %q -> %q (%v)", s, d, d2, err)
		}
	})
}

func FuzzParseImportReport(f *testing.F) {
	f.Add("1.out", []byte(ReportTitle+"\nTotal: 2 group id(s)\n"))
	f.Add("1.log", []byte("Total: 3 group id(s)\n"))
	for _, s := range fusionSeeds(f) {
		f.Add("10075842.out", s)
	}
	f.Fuzz(func(t *testing.T, name string, b []byte) {
		_, _ = ParseImportReport(map[string][]byte{name: b, "x.log": b})
	})
}

// FuzzClientAnswers serves the fuzzer's status and body on every REST
// resource and calls the client's readers and writers: a hostile or broken
// Fusion answer is an error, never a panic or a loop.
func FuzzClientAnswers(f *testing.F) {
	for _, s := range fusionSeeds(f) {
		f.Add(uint8(0), 200, s)
	}
	f.Add(uint8(1), 200, []byte(`{"items":[{"JeBatchId":1,"JournalHeader":[{"JournalLines":[{"EnteredDebitAmount":"1.00"}]}]}],"hasMore":true}`))
	f.Add(uint8(2), 207, []byte(`{"parts":[{"id":"1","path":"/x","operation":"create","payload":{"status":"400"}}]}`))
	f.Add(uint8(3), 500, []byte(`{"title":"boom"}`))
	var body atomic.Pointer[[]byte]
	var status, calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The first answer is the fuzzer's; later pages are empty, so a
		// fuzzed hasMore cannot page for ever.
		if calls.Add(1) > 1 {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"items":[],"hasMore":false,"count":0}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(status.Load()))
		_, _ = w.Write(*body.Load())
	}))
	f.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, Username: "u", Password: "p", Timeout: 2 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	calls_ := []func() error{
		func() error { _, err := c.JobStatus(ctx, "1"); return err },
		func() error {
			_, err := c.JournalBatches(ctx, JournalBatchQuery{Source: "Epic", GroupID: 1})
			return err
		},
		func() error {
			_, err := c.InventoryTransactions(ctx, InventoryQuery{Organization: "MAIN", SourceCode: "EPIC"})
			return err
		},
		func() error {
			_, _, err := c.CreateInventoryTransactions(ctx, []InventoryTransaction{{}})
			return err
		},
		func() error { _, err := c.FindItem(ctx, "MAIN", "RX-1"); return err },
		func() error { _, err := c.ExecutionDetails(ctx, "1"); return err },
		func() error { _, err := c.FindImportRequests(ctx, "f.zip"); return err },
		func() error { _, err := c.LedgerBalances(ctx, LedgerBalanceQuery{}); return err },
		func() error { _, err := c.OnhandQuantities(ctx, "MAIN", "RX-1"); return err },
		func() error { _, err := c.FindSupplier(ctx, "9001"); return err },
	}
	f.Fuzz(func(t *testing.T, which uint8, code int, b []byte) {
		if code < 200 || code > 599 || code == 204 || code == 304 || (code >= 100 && code < 200) {
			code = 200
		}
		status.Store(int64(code))
		body.Store(&b)
		calls.Store(0)
		err := calls_[int(which)%len(calls_)]()
		if err != nil && strings.TrimSpace(err.Error()) == "" {
			t.Fatal("an error without a text")
		}
	})
}
