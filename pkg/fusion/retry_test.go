package fusion

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadAttempts serves a temporary answer before a good one: a GET is
// tried again up to ReadAttempts (Retry-After honoured), and so is a
// POST that only reads (an erpintegrations download); a write never.
func TestReadAttempts(t *testing.T) {
	var calls atomic.Int32
	fail := atomic.Int32{} // answers left to fail
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if fail.Add(-1) >= 0 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"items":[],"hasMore":false}`))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name      string
		attempts  int
		fails     int32
		method    string
		reads     bool
		wantErr   bool
		wantCalls int32
	}{
		{"default tries once", 0, 1, http.MethodGet, false, true, 1},
		{"a 503 then an answer", 3, 1, http.MethodGet, false, false, 2},
		{"two 503s then an answer", 3, 2, http.MethodGet, false, false, 3},
		{"more 503s than attempts", 3, 5, http.MethodGet, false, true, 3},
		{"a write is never tried again", 5, 1, http.MethodPost, false, true, 1},
		{"a POST that reads is tried again", 3, 2, http.MethodPost, true, false, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Config{BaseURL: srv.URL, Username: "u", Password: "p", ReadAttempts: tc.attempts})
			if err != nil {
				t.Fatal(err)
			}
			calls.Store(0)
			fail.Store(tc.fails)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out map[string]any
			err = c.do(ctx, request{op: "test", method: tc.method, path: "/things", body: map[string]int{}, reads: tc.reads}, &out)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !IsTemporary(err) {
				t.Fatalf("err %v: not temporary", err)
			}
			if got := calls.Load(); got != tc.wantCalls {
				t.Fatalf("%d requests, want %d", got, tc.wantCalls)
			}
		})
	}
}

// TestDownloadExecutionDetailsIsARead: the ESS download is a POST that
// changes nothing, so a 503 on it is tried again in place.
func TestDownloadExecutionDetailsIsARead(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"OperationName":"downloadESSJobExecutionDetails","DocumentContent":""}`))
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Username: "u", Password: "p", ReadAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DownloadExecutionDetails(context.Background(), "42", "all"); err != nil {
		t.Fatalf("after one 503: %v", err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}
