package telemetry

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestHandler(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	published := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sinew_test_published_total",
		Help: "Messages published in the test.",
	})
	reg.MustRegister(published)
	published.Add(3)

	notReady := errors.New("nats: not connected")
	tests := []struct {
		name     string
		ready    func() error
		method   string
		path     string
		wantCode int
		wantBody string // substring
	}{
		{"metrics", nil, "GET", "/metrics", 200, "sinew_test_published_total 3"},
		{"healthz", nil, "GET", "/healthz", 200, "ok\n"},
		{"healthz while not ready", func() error { return notReady }, "GET", "/healthz", 200, "ok\n"},
		{"healthz HEAD", nil, "HEAD", "/healthz", 200, ""},
		{"readyz nil func", nil, "GET", "/readyz", 200, "ready\n"},
		{"readyz ready", func() error { return nil }, "GET", "/readyz", 200, "ready\n"},
		{"readyz not ready", func() error { return notReady }, "GET", "/readyz", 503, "nats: not connected\n"},
		{"wrong method", nil, "POST", "/healthz", 405, ""},
		{"unknown path", nil, "GET", "/debug/pprof/", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(Handler(reg, tt.ready))
			defer srv.Close()
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("body %q lacks %q", body, tt.wantBody)
			}
		})
	}
}

// serveOnPort0 runs ServeListener on a free port and returns its base URL
// and a channel with ServeListener's result.
func serveOnPort0(t *testing.T, ctx context.Context, h http.Handler) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, h) }()
	return "http://" + ln.Addr().String(), done
}

func waitResult(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
		return nil
	}
}

func TestServeListenerShutdown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	url, done := serveOnPort0(t, ctx, Handler(prometheus.NewRegistry(), nil))

	if code, body := get(t, url+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	cancel()
	if err := waitResult(t, done); err != nil {
		t.Fatalf("clean shutdown returned %v", err)
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Error("server still answering after shutdown")
	}
}

// TestServeListenerDrains checks that a request in flight when ctx is
// cancelled still gets its answer.
func TestServeListenerDrains(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	})
	ctx, cancel := context.WithCancel(t.Context())
	url, done := serveOnPort0(t, ctx, slow)

	type result struct {
		code int
		body string
	}
	resc := make(chan result, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			resc <- result{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		resc <- result{resp.StatusCode, string(b)}
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		t.Fatalf("returned %v before the request finished", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if r := <-resc; r.code != 200 || r.body != "done" {
		t.Errorf("in-flight request got %d %q", r.code, r.body)
	}
	if err := waitResult(t, done); err != nil {
		t.Errorf("clean shutdown returned %v", err)
	}
}

func TestServe(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", Handler(prometheus.NewRegistry(), nil)) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := waitResult(t, done); err != nil {
		t.Fatalf("clean shutdown returned %v", err)
	}
}

func TestServeCancelledContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Serve(ctx, "127.0.0.1:0", http.NotFoundHandler()); err != nil {
		t.Errorf("Serve with a done context returned %v", err)
	}
}

func TestServeErrors(t *testing.T) {
	t.Parallel()
	t.Run("bad address", func(t *testing.T) {
		t.Parallel()
		err := Serve(t.Context(), "127.0.0.1:notaport", http.NotFoundHandler())
		if err == nil || !strings.Contains(err.Error(), "telemetry: listen 127.0.0.1:notaport") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("address in use", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		err = Serve(t.Context(), ln.Addr().String(), http.NotFoundHandler())
		if err == nil || !strings.Contains(err.Error(), "telemetry: listen") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("listener fails", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		err = ServeListener(t.Context(), ln, http.NotFoundHandler())
		if err == nil || !strings.Contains(err.Error(), "telemetry: serve") {
			t.Errorf("got %v", err)
		}
	})
}
