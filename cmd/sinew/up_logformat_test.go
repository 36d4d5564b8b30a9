package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// firstLines keeps what is written and cancels once a line has arrived.
type firstLines struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	cancel context.CancelFunc
}

func (f *firstLines) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf.Write(p)
	if bytes.Contains(f.buf.Bytes(), []byte("embedded NATS")) {
		f.cancel()
	}
	return len(p), nil
}

func (f *firstLines) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buf.String()
}

func upArgs(t *testing.T, extra ...string) []string {
	return append([]string{"up", "--data-dir", t.TempDir(), "--nats-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--mllp-addr", "127.0.0.1:0", "--fusion-addr", "127.0.0.1:0", "--no-traffic"}, extra...)
}

func TestUpLogFormat(t *testing.T) {
	tests := []struct {
		format  string
		wantErr string
		json    bool
	}{
		{"json", "", true},
		{"console", "", false},
		{"xml", `log_format "xml"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			logs := &firstLines{cancel: cancel}
			var stdout bytes.Buffer
			err := run(ctx, upArgs(t, "--log-format", tt.format), &stdout, logs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			first, _, _ := strings.Cut(logs.String(), "\n")
			if !strings.Contains(first, "embedded NATS") {
				t.Fatalf("first line %q (err %v)", first, err)
			}
			if isJSON := strings.HasPrefix(first, "{"); isJSON != tt.json {
				t.Errorf("--log-format %s: line %q", tt.format, first)
			}
			if !tt.json && (!strings.Contains(first, "INF") || !strings.Contains(first, "service=sinew")) {
				t.Errorf("console line not for humans: %q", first)
			}
		})
	}
}
