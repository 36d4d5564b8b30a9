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
// tried again up to ReadAttempts (Retry-After honoured), a POST never.
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
		wantErr   bool
		wantCalls int32
	}{
		{"default tries once", 0, 1, http.MethodGet, true, 1},
		{"a 503 then an answer", 3, 1, http.MethodGet, false, 2},
		{"two 503s then an answer", 3, 2, http.MethodGet, false, 3},
		{"more 503s than attempts", 3, 5, http.MethodGet, true, 3},
		{"a write is never tried again", 5, 1, http.MethodPost, true, 1},
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
			err = c.do(ctx, request{op: "test", method: tc.method, path: "/things", body: map[string]int{}}, &out)
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
