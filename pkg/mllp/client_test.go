package mllp_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/mllp"
)

// startRawServer accepts connections on 127.0.0.1 and runs serve on each
// with its number (from 1) and a frame reader.
func startRawServer(t *testing.T, serve func(n int, nc net.Conn, rd *mllp.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for n := 1; ; n++ {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer nc.Close()
				serve(n, nc, mllp.NewReader(nc, mllp.ReaderOptions{}))
			})
		}
	})
	return ln.Addr().String()
}

// TestClientRetry: the first connection is dropped without a reply; the
// client reconnects and sends the same bytes again.
func TestClientRetry(t *testing.T) {
	var mu sync.Mutex
	var got []string
	addr := startRawServer(t, func(n int, nc net.Conn, rd *mllp.Reader) {
		p, err := rd.Next()
		if err != nil {
			return
		}
		mu.Lock()
		got = append(got, string(p))
		mu.Unlock()
		if n == 1 {
			return // drop it
		}
		nc.Write(mllp.Encode(nil, ack(p)))
		rd.Next() // until the client closes
	})
	c := dial(t, mllp.ClientConfig{Addr: addr, RetryDelay: 10 * time.Millisecond})
	reply, err := c.Send(context.Background(), msg(7))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(reply, ack(msg(7))) {
		t.Errorf("reply %q", reply)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != got[1] || got[0] != string(msg(7)) {
		t.Errorf("server received %d frames, want the message twice", len(got))
	}
}

func TestClientAckTimeout(t *testing.T) {
	var frames atomic.Int32
	addr := startRawServer(t, func(_ int, _ net.Conn, rd *mllp.Reader) {
		for {
			if _, err := rd.Next(); err != nil {
				return
			}
			frames.Add(1) // and never answer
		}
	})
	c := dial(t, mllp.ClientConfig{Addr: addr, AckTimeout: 100 * time.Millisecond, Retries: 1, RetryDelay: 10 * time.Millisecond})
	start := time.Now()
	_, err := c.Send(context.Background(), msg(1))
	if !errors.Is(err, mllp.ErrAckTimeout) {
		t.Fatalf("Send = %v, want ErrAckTimeout", err)
	}
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "attempt 2 of 2") {
		t.Errorf("error %q lacks the address or the attempts", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 3*time.Second {
		t.Errorf("gave up after %v, want about 2×100ms", d)
	}
	eventually(t, "both attempts received", func() bool { return frames.Load() == 2 })
}

// TestClientMatch: a stale reply (a late ACK for an earlier message) is
// skipped and counted.
func TestClientMatch(t *testing.T) {
	addr := startRawServer(t, func(_ int, nc net.Conn, rd *mllp.Reader) {
		for {
			p, err := rd.Next()
			if err != nil {
				return
			}
			out := mllp.Encode(nil, []byte("ACK|stale"))
			nc.Write(mllp.Encode(out, ack(p)))
		}
	})
	match := func(sent, reply []byte) bool { return bytes.Equal(reply, ack(sent)) }
	c := dial(t, mllp.ClientConfig{Addr: addr, Match: match})
	for i := range 3 {
		reply, err := c.Send(context.Background(), msg(i))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(reply, ack(msg(i))) {
			t.Fatalf("reply %q", reply)
		}
	}
	if c.Unmatched() != 3 {
		t.Errorf("Unmatched() = %d, want 3", c.Unmatched())
	}
}

// TestClientContext: ctx bounds Send; an expired context is not retried.
func TestClientContext(t *testing.T) {
	var frames atomic.Int32
	addr := startRawServer(t, func(_ int, _ net.Conn, rd *mllp.Reader) {
		for {
			if _, err := rd.Next(); err != nil {
				return
			}
			frames.Add(1)
		}
	})
	c := dial(t, mllp.ClientConfig{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Send(ctx, msg(1))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Send returned after %v", d)
	}
	time.Sleep(50 * time.Millisecond)
	if frames.Load() != 1 {
		t.Errorf("server received %d frames, want 1", frames.Load())
	}
}

func TestClientConcurrentSends(t *testing.T) {
	ts := startServer(t, mllp.ServerConfig{}, echo)
	c := dial(t, mllp.ClientConfig{Addr: ts.addr})
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Go(func() {
			for i := range 20 {
				m := msg(g*100 + i)
				reply, err := c.Send(context.Background(), m)
				if err != nil || !bytes.Equal(reply, ack(m)) {
					t.Errorf("Send: %.40q, %v", reply, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := ts.metric(t, "sinew_mllp_connections_total", "result=accepted"); got != 1 {
		t.Errorf("%v connections, want 1", got)
	}
}

func TestClientErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()
	if _, err := mllp.Dial(context.Background(), mllp.ClientConfig{Addr: closedAddr}); err == nil || !strings.Contains(err.Error(), closedAddr) {
		t.Errorf("Dial to a closed port: %v", err)
	}

	ts := startServer(t, mllp.ServerConfig{}, echo)
	c := dial(t, mllp.ClientConfig{Addr: ts.addr})
	if _, err := c.Send(context.Background(), []byte("MSH|\x0b")); !errors.Is(err, mllp.ErrInvalidPayload) {
		t.Errorf("Send of a framing byte: %v", err)
	}
	c.Close()
	if _, err := c.Send(context.Background(), msg(1)); !errors.Is(err, mllp.ErrClientClosed) {
		t.Errorf("Send after Close: %v", err)
	}
}

// TestClientReconnects: a connection the server closed (idle timeout) is
// replaced transparently on the next Send.
func TestClientReconnects(t *testing.T) {
	ts := startServer(t, mllp.ServerConfig{IdleTimeout: 100 * time.Millisecond}, echo)
	c := dial(t, mllp.ClientConfig{Addr: ts.addr, RetryDelay: -1})
	for i := range 2 {
		if _, err := c.Send(context.Background(), msg(i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if got := ts.metric(t, "sinew_mllp_connections_total", "result=accepted"); got != 2 {
		t.Errorf("%v connections, want 2", got)
	}
}

func TestMutualTLS(t *testing.T) {
	ca, other := newPKI(t, "sinew"), newPKI(t, "other")
	ts := startServer(t, mllp.ServerConfig{TLS: &tls.Config{
		Certificates: []tls.Certificate{ca.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.pool,
		MinVersion:   tls.VersionTLS12,
	}}, mllp.HandlerFunc(func(_ context.Context, c *mllp.Conn, m []byte) []byte {
		certs := c.PeerCertificates()
		if len(certs) == 0 {
			return []byte("ACK|no certificate")
		}
		return []byte("ACK|CN=" + certs[0].Subject.CommonName)
	}))
	tests := []struct {
		name string
		tls  *tls.Config
		want string // reply, or "" when refused
	}{
		{"client certificate", &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{ca.client}}, "ACK|CN=ST-MARYS"},
		{"TLS 1.2", &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{ca.client}, MaxVersion: tls.VersionTLS12}, "ACK|CN=ST-MARYS"},
		{"no client certificate", &tls.Config{RootCAs: ca.pool}, ""},
		{"certificate from another CA", &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{other.client}}, ""},
		{"server not trusted", &tls.Config{RootCAs: other.pool, Certificates: []tls.Certificate{ca.client}}, ""},
		{"plain TCP", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mllp.ClientConfig{Addr: ts.addr, TLS: tc.tls, Retries: -1, AckTimeout: 2 * time.Second}
			// With TLS 1.3 the client finishes its handshake before the server
			// checks its certificate: refusal may show at Dial or at Send.
			c, err := mllp.Dial(context.Background(), cfg)
			var reply []byte
			if err == nil {
				defer c.Close()
				reply, err = c.Send(context.Background(), msg(1))
			}
			switch {
			case tc.want == "" && err == nil:
				t.Fatalf("accepted: %q", reply)
			case tc.want != "" && (err != nil || string(reply) != tc.want):
				t.Fatalf("reply = %q, %v; want %q", reply, err, tc.want)
			}
		})
	}
	eventually(t, "refusals counted", func() bool {
		return ts.metric(t, "sinew_mllp_connections_total", "result=tls_error") == 4
	})
	if got := ts.metric(t, "sinew_mllp_connections_total", "result=accepted"); got != 2 {
		t.Errorf("accepted = %v, want 2", got)
	}
}

func newTLSConfigWithoutCert() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS12} }
