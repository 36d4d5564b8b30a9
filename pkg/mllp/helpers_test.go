package mllp_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/pkg/tlstest"
)

// secret marks message content in tests: it must never reach a log.
const secret = "DOE^JANE^SECRET"

func msg(i int) []byte {
	return []byte("MSH|^~\\&|EPIC|ST-MARYS|SINEW||20250101||ADT^A01|" + strconv.Itoa(i) + "|P|2.5\rPID|1||" + secret + "\r")
}

// ack is the test handlers' reply: "ACK|" and the message.
func ack(m []byte) []byte { return append([]byte("ACK|"), m...) }

var echo = mllp.HandlerFunc(func(_ context.Context, _ *mllp.Conn, m []byte) []byte { return ack(m) })

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type testServer struct {
	srv  *mllp.Server
	addr string
	reg  *prometheus.Registry
	logs *logBuffer
	stop context.CancelFunc
	done chan error
}

// startServer serves h on 127.0.0.1 until the test ends (or stop is called)
// and checks that no log line carries message content.
func startServer(t testing.TB, cfg mllp.ServerConfig, h mllp.Handler) *testServer {
	t.Helper()
	ts := &testServer{reg: prometheus.NewRegistry(), logs: &logBuffer{}, done: make(chan error, 1)}
	cfg.Metrics = ts.reg
	cfg.Logger = zerolog.New(ts.logs).Level(zerolog.DebugLevel)
	srv, err := mllp.NewServer(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts.srv, ts.addr, ts.stop = srv, ln.Addr().String(), cancel
	go func() { ts.done <- srv.Serve(ctx, ln) }()
	eventually(t, "Serve", func() bool { return srv.Addr() != nil })
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ts.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
			ts.done <- err // for a test that waits too
		case <-time.After(15 * time.Second):
			t.Error("Serve did not return")
		}
		if logs := ts.logs.String(); strings.Contains(logs, secret) || strings.Contains(logs, "SECRET") {
			t.Errorf("message content in the logs:\n%s", logs)
		}
	})
	return ts
}

// metric returns the value of the named counter or gauge with the given
// label (name=value, or "" for none).
func (ts *testServer) metric(t testing.TB, name, label string) float64 {
	t.Helper()
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" {
				ok := false
				for _, lp := range m.GetLabel() {
					ok = ok || lp.GetName()+"="+lp.GetValue() == label
				}
				if !ok {
					continue
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s{%s} not found", name, label)
	return 0
}

// eventually polls cond for up to 5s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func dial(t *testing.T, cfg mllp.ClientConfig) *mllp.Client {
	t.Helper()
	c, err := mllp.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn is a test peer speaking bytes: it writes what it is told and reads
// frames with a Reader.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	rd *mllp.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, rd: mllp.NewReader(nc, mllp.ReaderOptions{})}
}

func (c *rawConn) write(s string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next frame or error, waiting at most d.
func (c *rawConn) next(d time.Duration) (string, error) {
	c.nc.SetReadDeadline(time.Now().Add(d))
	p, err := c.rd.Next()
	return string(p), err
}

// pki is a test CA with certificates it issued.
type pki struct {
	pool   *x509.CertPool
	server tls.Certificate // for 127.0.0.1
	client tls.Certificate // CN=ST-MARYS
}

func newPKI(t *testing.T, cn string) *pki {
	t.Helper()
	p := tlstest.New(t, cn)
	return &pki{pool: p.Pool, server: p.Server, client: p.Client(t, "ST-MARYS")}
}
