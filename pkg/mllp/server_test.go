package mllp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/mllp"
)

func TestNewServerChecksConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  mllp.ServerConfig
		h    mllp.Handler
		want string
	}{
		{"nil handler", mllp.ServerConfig{}, nil, "nil handler"},
		{"negative frame size", mllp.ServerConfig{MaxFrameSize: -1}, echo, "negative MaxFrameSize"},
		{"TLS without certificate", mllp.ServerConfig{TLS: newTLSConfigWithoutCert()}, echo, "no server certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := mllp.NewServer(tc.cfg, tc.h); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewServer error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	var seen atomic.Pointer[string]
	ts := startServer(t, mllp.ServerConfig{}, mllp.HandlerFunc(func(_ context.Context, c *mllp.Conn, m []byte) []byte {
		info := c.ID() + " " + c.RemoteAddr().String()
		seen.Store(&info)
		if c.PeerCertificates() != nil {
			t.Error("PeerCertificates without TLS")
		}
		return ack(m)
	}))
	if got := ts.srv.Addr().String(); got != ts.addr {
		t.Errorf("Addr() = %s, want %s", got, ts.addr)
	}
	c := dial(t, mllp.ClientConfig{Addr: ts.addr})
	reply, err := c.Send(context.Background(), msg(1))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(reply, ack(msg(1))) {
		t.Errorf("reply %q", reply)
	}
	if info := seen.Load(); info == nil || len(strings.Fields(*info)[0]) < 8 {
		t.Errorf("handler saw conn %v", info)
	}
	if got := ts.metric(t, "sinew_mllp_frames_total", ""); got != 1 {
		t.Errorf("frames_total = %v", got)
	}
	if got := ts.metric(t, "sinew_mllp_connections_total", "result=accepted"); got != 1 {
		t.Errorf("connections_total{accepted} = %v", got)
	}
}

// TestOrderOnOneConnection: 1,000 messages on one connection reach the
// handler in order, sent one by one and pipelined.
func TestOrderOnOneConnection(t *testing.T) {
	const n = 1000
	var mu sync.Mutex
	var got []string
	ts := startServer(t, mllp.ServerConfig{}, mllp.HandlerFunc(func(_ context.Context, _ *mllp.Conn, m []byte) []byte {
		mu.Lock()
		got = append(got, string(m))
		mu.Unlock()
		return ack(m)
	}))

	t.Run("send and wait", func(t *testing.T) {
		c := dial(t, mllp.ClientConfig{Addr: ts.addr})
		for i := range n {
			reply, err := c.Send(context.Background(), msg(i))
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if !bytes.Equal(reply, ack(msg(i))) {
				t.Fatalf("message %d: reply %q", i, reply)
			}
		}
	})
	t.Run("pipelined", func(t *testing.T) {
		rc := dialRaw(t, ts.addr)
		var all []byte
		for i := range n {
			all = mllp.Encode(all, msg(n+i))
		}
		go rc.nc.Write(all) // the server replies while we write
		for i := range n {
			reply, err := rc.next(5 * time.Second)
			if err != nil {
				t.Fatalf("reply %d: %v", i, err)
			}
			if reply != string(ack(msg(n+i))) {
				t.Fatalf("reply %d out of order: %.60q", i, reply)
			}
		}
	})
	mu.Lock()
	defer mu.Unlock()
	for i, m := range got {
		if m != string(msg(i)) {
			t.Fatalf("handler saw message %d out of order", i)
		}
	}
}

func TestConcurrentConnections(t *testing.T) {
	const conns, each = 20, 50
	ts := startServer(t, mllp.ServerConfig{}, echo)
	clients := make([]*mllp.Client, conns)
	for k := range clients {
		clients[k] = dial(t, mllp.ClientConfig{Addr: ts.addr})
	}
	eventually(t, "20 open connections", func() bool { return ts.metric(t, "sinew_mllp_open_connections", "") == conns })
	var wg sync.WaitGroup
	for k, c := range clients {
		wg.Go(func() {
			defer c.Close()
			for i := range each {
				m := msg(k*1000 + i)
				reply, err := c.Send(context.Background(), m)
				if err != nil || !bytes.Equal(reply, ack(m)) {
					t.Errorf("connection %d, message %d: %.40q, %v", k, i, reply, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := ts.metric(t, "sinew_mllp_frames_total", ""); got != conns*each {
		t.Errorf("frames_total = %v, want %d", got, conns*each)
	}
	if got := ts.metric(t, "sinew_mllp_connections_total", "result=accepted"); got != conns {
		t.Errorf("connections_total{accepted} = %v, want %d", got, conns)
	}
	eventually(t, "connections closed", func() bool { return ts.metric(t, "sinew_mllp_open_connections", "") == 0 })
}

// TestRawFraming drives the server with hand-made bytes.
func TestRawFraming(t *testing.T) {
	type step struct {
		write string   // bytes to send (each byte on its own if split)
		split bool     // one write per byte, with a pause
		want  []string // replies expected after this write
	}
	tests := []struct {
		name    string
		allowCR bool
		steps   []step
		framing map[string]float64 // framing_errors_total by kind
	}{
		{name: "frame split into single bytes", steps: []step{
			{write: "\x0bMSH|split\x1c\x0d", split: true, want: []string{"ACK|MSH|split"}},
		}},
		{name: "several frames in one write", steps: []step{
			{write: "\x0bA\x1c\x0d\x0bB\x1c\x0d\x0bC\x1c\x0d", want: []string{"ACK|A", "ACK|B", "ACK|C"}},
		}},
		{name: "junk and NULs between frames", steps: []step{
			{write: "\x00\x00garbage\x0bA\x1c\x0d\r\n\x0bB\x1c\x0d", want: []string{"ACK|A", "ACK|B"}},
		}, framing: map[string]float64{"junk": 2}},
		{name: "missing CR allowed: answered without waiting", allowCR: true, steps: []step{
			{write: "\x0bA\x1c", want: []string{"ACK|A"}},
			{write: "\x0bB\x1c", want: []string{"ACK|B"}},
			{write: "\x0dX\x1c\x0d\x0bC\x1c\x0d", want: []string{"ACK|C"}},
		}, framing: map[string]float64{"junk": 1}},
		{name: "missing CR refused", steps: []step{
			{write: "\x0bA\x1c\x0bB\x1c\x0d", want: []string{"ACK|B"}},
		}, framing: map[string]float64{"missing_cr": 1}},
		{name: "sender restarts a message", steps: []step{
			{write: "\x0bMSH|half", want: nil},
			{write: "\x0bMSH|whole\x1c\x0d", want: []string{"ACK|MSH|whole"}},
		}, framing: map[string]float64{"start_in_frame": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, mllp.ServerConfig{AllowMissingCR: tc.allowCR}, echo)
			rc := dialRaw(t, ts.addr)
			for _, st := range tc.steps {
				if st.split {
					for i := range len(st.write) {
						rc.write(st.write[i : i+1])
						time.Sleep(time.Millisecond)
					}
				} else {
					rc.write(st.write)
				}
				for _, want := range st.want {
					got, err := rc.next(5 * time.Second)
					if err != nil || got != want {
						t.Fatalf("reply = %q, %v; want %q", got, err, want)
					}
				}
			}
			// Nothing else comes: closing our side ends the connection cleanly.
			rc.nc.(*net.TCPConn).CloseWrite()
			if got, err := rc.next(5 * time.Second); err != io.EOF {
				t.Fatalf("after the last reply: %q, %v; want EOF", got, err)
			}
			for _, kind := range []string{"junk", "too_large", "start_in_frame", "missing_cr", "truncated", "read_timeout"} {
				if got := ts.metric(t, "sinew_mllp_framing_errors_total", "kind="+kind); got != tc.framing[kind] {
					t.Errorf("framing_errors_total{kind=%s} = %v, want %v", kind, got, tc.framing[kind])
				}
			}
		})
	}
}

// TestJunkLoggedInHex: junk is logged as its first 16 bytes in hex; frames
// never are.
func TestJunkLoggedInHex(t *testing.T) {
	ts := startServer(t, mllp.ServerConfig{}, echo)
	rc := dialRaw(t, ts.addr)
	rc.write("HELLO-THIS-IS-JUNK-" + secret + string(mllp.Encode(nil, msg(1))))
	if _, err := rc.next(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "junk logged", func() bool { return strings.Contains(ts.logs.String(), "first_hex") })
	logs := ts.logs.String()
	if want := `"first_hex":"48454c4c4f2d544849532d49532d4a55"`; !strings.Contains(logs, want) {
		t.Errorf("logs lack %s:\n%s", want, logs)
	}
	if !strings.Contains(logs, `"bytes":34`) || !strings.Contains(logs, `"offset":0`) {
		t.Errorf("junk log lacks its size or offset:\n%s", logs)
	}
}

// TestOversizeFrame: an oversize frame gets no reply, is counted, and the
// connection goes on with the next frame.
func TestOversizeFrame(t *testing.T) {
	var handled atomic.Int32
	ts := startServer(t, mllp.ServerConfig{MaxFrameSize: 1024}, mllp.HandlerFunc(func(_ context.Context, _ *mllp.Conn, m []byte) []byte {
		handled.Add(1)
		return ack(m)
	}))
	rc := dialRaw(t, ts.addr)
	rc.write(string(mllp.Encode(nil, bytes.Repeat([]byte("X"), 100_000))))
	rc.write(string(mllp.Encode(nil, []byte("MSH|next"))))
	if got, err := rc.next(5 * time.Second); err != nil || got != "ACK|MSH|next" {
		t.Fatalf("reply = %q, %v", got, err)
	}
	if got := ts.metric(t, "sinew_mllp_framing_errors_total", "kind=too_large"); got != 1 {
		t.Errorf("too_large = %v", got)
	}
	if handled.Load() != 1 {
		t.Errorf("handler called %d times", handled.Load())
	}
}

func TestMaxConns(t *testing.T) {
	ts := startServer(t, mllp.ServerConfig{MaxConns: 2}, echo)
	var first [2]*rawConn
	for i := range first {
		first[i] = dialRaw(t, ts.addr)
		first[i].write(string(mllp.Encode(nil, []byte("hi"))))
		if _, err := first[i].next(5 * time.Second); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	third := dialRaw(t, ts.addr)
	third.write(string(mllp.Encode(nil, []byte("hi"))))
	if got, err := third.next(5 * time.Second); err == nil || timeoutErr(err) {
		t.Fatalf("third connection: %q, %v; want it closed", got, err)
	}
	// The server counts the refusal after closing: wait for the count.
	eventually(t, "the refusal counted", func() bool {
		return ts.metric(t, "sinew_mllp_connections_total", "result=rejected") == 1
	})
	// A slot freed is a slot usable.
	first[0].nc.Close()
	eventually(t, "a free slot", func() bool { return ts.metric(t, "sinew_mllp_open_connections", "") == 1 })
	again := dialRaw(t, ts.addr)
	again.write(string(mllp.Encode(nil, []byte("hi"))))
	if _, err := again.next(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func timeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestTimeouts(t *testing.T) {
	tests := []struct {
		name     string
		cfg      mllp.ServerConfig
		send     string
		min, max time.Duration
		timeouts float64 // framing_errors_total{kind=read_timeout}
	}{
		{"idle connection closed", mllp.ServerConfig{IdleTimeout: 200 * time.Millisecond},
			"", 150 * time.Millisecond, 3 * time.Second, 0},
		{"idle after a message", mllp.ServerConfig{IdleTimeout: 200 * time.Millisecond},
			"\x0bMSH|1\x1c\x0d", 150 * time.Millisecond, 3 * time.Second, 0},
		{"junk does not keep it open", mllp.ServerConfig{IdleTimeout: 200 * time.Millisecond},
			"noise", 150 * time.Millisecond, 3 * time.Second, 0},
		{"frame that never ends", mllp.ServerConfig{ReadTimeout: 200 * time.Millisecond, IdleTimeout: time.Hour},
			"\x0bMSH|never ends", 150 * time.Millisecond, 3 * time.Second, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, tc.cfg, echo)
			rc := dialRaw(t, ts.addr)
			start := time.Now()
			if tc.send != "" {
				rc.write(tc.send)
			}
			for {
				_, err := rc.next(5 * time.Second)
				if err == nil {
					continue // the reply to a complete message
				}
				if err != io.EOF {
					t.Fatalf("read: %v; want EOF from the server closing", err)
				}
				break
			}
			if d := time.Since(start); d < tc.min || d > tc.max {
				t.Errorf("closed after %v, want between %v and %v", d, tc.min, tc.max)
			}
			eventually(t, "read_timeout counted", func() bool {
				return ts.metric(t, "sinew_mllp_framing_errors_total", "kind=read_timeout") == tc.timeouts
			})
		})
	}
}

// TestReadTimeoutIsPerFrame: a slow frame that completes in time is fine,
// and the time a handler takes is not charged to the next frame.
func TestReadTimeoutIsPerFrame(t *testing.T) {
	ts := startServer(t, mllp.ServerConfig{ReadTimeout: 300 * time.Millisecond},
		mllp.HandlerFunc(func(_ context.Context, _ *mllp.Conn, m []byte) []byte {
			time.Sleep(400 * time.Millisecond)
			return ack(m)
		}))
	rc := dialRaw(t, ts.addr)
	// Two frames, the second's start pipelined behind the first.
	rc.write("\x0bA\x1c\x0d\x0bB")
	time.Sleep(150 * time.Millisecond)
	rc.write("B\x1c")
	time.Sleep(100 * time.Millisecond)
	rc.write("\x0d")
	for _, want := range []string{"ACK|A", "ACK|BB"} {
		if got, err := rc.next(5 * time.Second); err != nil || got != want {
			t.Fatalf("reply = %q, %v; want %q", got, err, want)
		}
	}
}

func TestHandlerPanic(t *testing.T) {
	ts := startServer(t, mllp.ServerConfig{}, mllp.HandlerFunc(func(_ context.Context, _ *mllp.Conn, m []byte) []byte {
		if bytes.Contains(m, []byte("boom")) {
			panic("cannot parse " + string(m)) // would leak the message if logged
		}
		return ack(m)
	}))
	bad, good := dialRaw(t, ts.addr), dialRaw(t, ts.addr)
	bad.write(string(mllp.Encode(nil, append([]byte("boom "), msg(1)...))))
	if got, err := bad.next(5 * time.Second); err != io.EOF {
		t.Fatalf("after panic: %q, %v; want EOF", got, err)
	}
	good.write(string(mllp.Encode(nil, []byte("MSH|fine"))))
	if got, err := good.next(5 * time.Second); err != nil || got != "ACK|MSH|fine" {
		t.Fatalf("other connection: %q, %v", got, err)
	}
	// And a new one.
	c := dial(t, mllp.ClientConfig{Addr: ts.addr})
	if _, err := c.Send(context.Background(), msg(2)); err != nil {
		t.Fatal(err)
	}
	if got := ts.metric(t, "sinew_mllp_handler_panics_total", ""); got != 1 {
		t.Errorf("handler_panics_total = %v", got)
	}
	if logs := ts.logs.String(); !strings.Contains(logs, `"panic_type":"string"`) {
		t.Errorf("panic not logged:\n%s", logs)
	}
}

// TestGracefulShutdown: cancelling the server's context lets a handler in
// progress finish and its reply reach the sender; idle connections close at
// once; new connections are refused; Serve returns nil.
func TestGracefulShutdown(t *testing.T) {
	started := make(chan struct{}, 1)
	var handlerCancelled atomic.Bool
	ts := startServer(t, mllp.ServerConfig{}, mllp.HandlerFunc(func(ctx context.Context, _ *mllp.Conn, m []byte) []byte {
		if string(m) == "slow" {
			started <- struct{}{}
			time.Sleep(300 * time.Millisecond)
			handlerCancelled.Store(ctx.Err() != nil)
		}
		return ack(m)
	}))
	idle := dialRaw(t, ts.addr)
	busy := dial(t, mllp.ClientConfig{Addr: ts.addr, Retries: -1})
	type result struct {
		reply []byte
		err   error
	}
	res := make(chan result, 1)
	go func() {
		r, err := busy.Send(context.Background(), []byte("slow"))
		res <- result{r, err}
	}()
	<-started
	begin := time.Now()
	ts.stop()

	if _, err := idle.next(5 * time.Second); err != io.EOF {
		t.Errorf("idle connection: %v, want EOF", err)
	}
	if d := time.Since(begin); d > 200*time.Millisecond {
		t.Errorf("idle connection closed after %v, not at once", d)
	}
	r := <-res
	if r.err != nil || string(r.reply) != "ACK|slow" {
		t.Fatalf("in-flight message: %q, %v", r.reply, r.err)
	}
	if err := <-ts.done; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	ts.done <- nil
	if d := time.Since(begin); d < 250*time.Millisecond || d > 2*time.Second {
		t.Errorf("Serve returned %v after cancel", d)
	}
	if handlerCancelled.Load() {
		t.Error("handler context cancelled during graceful shutdown")
	}
	if nc, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		nc.Close()
		t.Error("new connection accepted after shutdown")
	}
}

// TestShutdownFrameInProgress: a frame being received when shutdown begins
// is completed, handled and answered.
func TestShutdownFrameInProgress(t *testing.T) {
	ts := startServer(t, mllp.ServerConfig{}, echo)
	rc := dialRaw(t, ts.addr)
	rc.write("\x0bMSH|first half")
	eventually(t, "connection open", func() bool { return ts.metric(t, "sinew_mllp_open_connections", "") == 1 })
	time.Sleep(50 * time.Millisecond) // let the server read the first half
	ts.stop()
	time.Sleep(100 * time.Millisecond)
	rc.write(", second half\x1c\x0d\x0bMSH|not read")
	if got, err := rc.next(5 * time.Second); err != nil || got != "ACK|MSH|first half, second half" {
		t.Fatalf("reply = %q, %v", got, err)
	}
	if got, err := rc.next(5 * time.Second); err == nil || timeoutErr(err) {
		t.Fatalf("after the reply: %q, %v; want the connection closed", got, err)
	}
}

// TestShutdownTimeout: a handler that does not finish is cut off after
// ShutdownTimeout, its context cancelled.
func TestShutdownTimeout(t *testing.T) {
	started := make(chan struct{})
	ts := startServer(t, mllp.ServerConfig{ShutdownTimeout: 200 * time.Millisecond},
		mllp.HandlerFunc(func(ctx context.Context, _ *mllp.Conn, m []byte) []byte {
			close(started)
			<-ctx.Done()
			return nil
		}))
	rc := dialRaw(t, ts.addr)
	rc.write(string(mllp.Encode(nil, []byte("stuck"))))
	<-started
	begin := time.Now()
	ts.stop()
	if err := <-ts.done; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	ts.done <- nil
	if d := time.Since(begin); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("Serve returned %v after cancel, want about 200ms", d)
	}
	if _, err := rc.next(time.Second); err == nil || timeoutErr(err) {
		t.Errorf("connection still open: %v", err)
	}
}

func TestServeTwice(t *testing.T) {
	ts := startServer(t, mllp.ServerConfig{}, echo)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := ts.srv.Serve(context.Background(), ln); err == nil {
		t.Fatal("second Serve succeeded")
	}
}

func TestListenAndServe(t *testing.T) {
	// Find a free port, then let the server listen on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv, err := mllp.NewServer(mllp.ServerConfig{Addr: addr}, echo)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(ctx) }()
	eventually(t, "listening", func() bool { return srv.Addr() != nil })
	c := dial(t, mllp.ClientConfig{Addr: addr})
	if _, err := c.Send(context.Background(), []byte("MSH|"+strconv.Itoa(1))); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
