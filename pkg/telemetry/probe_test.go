package telemetry

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestProbeURL(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"0.0.0.0:9101", "http://127.0.0.1:9101/readyz"},
		{":9101", "http://127.0.0.1:9101/readyz"},
		{"[::]:9101", "http://127.0.0.1:9101/readyz"},
		{"10.0.0.5:9101", "http://10.0.0.5:9101/readyz"},
	} {
		got, err := ProbeURL(tc.addr, "/readyz")
		if err != nil || got != tc.want {
			t.Errorf("ProbeURL(%q) = %q, %v; want %q", tc.addr, got, err, tc.want)
		}
	}
	if _, err := ProbeURL("no-port", "/readyz"); err == nil {
		t.Error("ProbeURL without a port: no error")
	}
}

// TestProbe runs the health verb's check against the real readyz handler.
func TestProbe(t *testing.T) {
	var notReady error = errors.New("nats: not connected")
	srv := httptest.NewServer(Handler(nil, func() error { return notReady }))
	defer srv.Close()
	_, err := Probe(context.Background(), srv.URL+"/readyz", time.Second)
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("not ready: %v, want a 503 error", err)
	}
	notReady = nil
	if body, err := Probe(context.Background(), srv.URL+"/readyz", time.Second); err != nil || string(body) != "ready\n" {
		t.Fatalf("ready: %q %v", body, err)
	}
}
