package mllp_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/mllp"
)

// dialFrom connects to addr from the local IP from (127.0.0.x: every
// loopback address is this host), or returns the error.
func dialFrom(t *testing.T, from, addr string) (*rawConn, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, rd: mllp.NewReader(nc, mllp.ReaderOptions{})}, nil
}

// answered reports whether rc gets an answer to a message.
func answered(rc *rawConn) bool {
	if _, err := rc.nc.Write(mllp.Encode(nil, []byte("MSH|hi"))); err != nil {
		return false
	}
	got, err := rc.next(5 * time.Second)
	return err == nil && got == "ACK|MSH|hi"
}

// TestFloodOfIdleConnections reproduces issue 9 item 9 (500 idle
// connections held every slot, legitimate senders were reset, idle ones cut
// after 600 s): one address gets MaxConnsPerPeer connections, other
// addresses still get in, a known (allowlisted) sender gets in even when
// the server is full, and idle connections are closed after IdleTimeout.
func TestFloodOfIdleConnections(t *testing.T) {
	// Long enough that setting up the flood on a loaded 2-core machine
	// (under -race) does not outlast it: the counts below need the flood held.
	const idle = 3 * time.Second
	ts := startServer(t, mllp.ServerConfig{
		MaxConns: 12, MaxConnsPerPeer: 8, IdleTimeout: idle,
		KnownPeers: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")},
	}, echo)
	probe, err := dialFrom(t, "127.0.0.2", ts.addr)
	if err != nil {
		t.Skipf("cannot connect from 127.0.0.2 on this host: %v", err)
	}
	probe.nc.Close()
	eventually(t, "probe closed", func() bool { return ts.metric(t, "sinew_mllp_open_connections", "") == 0 })

	// The flood: 40 idle connections from one address.
	held := 0
	var flood []*rawConn
	for range 40 {
		rc, err := dialFrom(t, "127.0.0.1", ts.addr)
		if err != nil {
			continue
		}
		flood = append(flood, rc)
	}
	eventually(t, "flood settled", func() bool {
		return ts.metric(t, "sinew_mllp_connections_total", "result=rejected") >= 32
	})
	for _, rc := range flood {
		rc.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := rc.nc.Read(make([]byte, 1)); err != nil && isTimeout(err) {
			held++ // still open
		}
	}
	if held != 8 {
		t.Errorf("%d connections from one address held, want MaxConnsPerPeer = 8", held)
	}

	// Other addresses still get in, up to MaxConns - ReservedConns (12 - 1).
	var others []*rawConn
	for _, ip := range []string{"127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		rc, err := dialFrom(t, ip, ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		if !answered(rc) {
			t.Errorf("%s not answered while one address floods", ip)
		}
		others = append(others, rc)
	}
	if rc, err := dialFrom(t, "127.0.0.6", ts.addr); err == nil && answered(rc) {
		t.Error("an unknown peer took the slot reserved for known peers")
	}

	// Known senders: the reserved slot, then room made by closing the
	// unknown connection idle longest (one of the flood's).
	for i := range 3 {
		rc, err := dialFrom(t, "127.0.0.2", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		if !answered(rc) {
			t.Fatalf("known sender %d not answered on a full server", i)
		}
	}
	if got := ts.metric(t, "sinew_mllp_connections_total", "result=evicted"); got != 2 {
		t.Errorf("evicted = %v, want 2", got)
	}
	for _, rc := range others {
		if !answered(rc) {
			t.Error("a busy-recently connection was closed to make room")
		}
	}

	// Idle connections are closed after IdleTimeout.
	start := time.Now()
	for _, rc := range flood {
		rc.nc.SetReadDeadline(time.Now().Add(idle + 5*time.Second))
		if _, err := io.ReadAll(rc.nc); err != nil && isTimeout(err) {
			t.Fatalf("an idle connection was still open after %v", time.Since(start))
		}
	}
	eventually(t, "every idle connection closed", func() bool { return ts.metric(t, "sinew_mllp_open_connections", "") == 0 })
	if took := time.Since(start); took > idle+3*time.Second {
		t.Errorf("idle connections closed after %v, idle timeout %v", took, idle)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestParsePeers(t *testing.T) {
	got, err := mllp.ParsePeers([]string{"10.1.2.3", "10.1.0.0/16", "::1", "::ffff:10.0.0.1", "10.9.9.9/8"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.1.2.3/32", "10.1.0.0/16", "::1/128", "10.0.0.1/32", "10.0.0.0/8"}
	for i, p := range got {
		if p.String() != want[i] {
			t.Errorf("ParsePeers[%d] = %s, want %s", i, p, want[i])
		}
	}
	if _, err := mllp.ParsePeers([]string{"st-marys.example"}); err == nil {
		t.Error("a host name was accepted")
	}
}

func TestDefaultIdleTimeoutIsAtMostAMinute(t *testing.T) {
	if mllp.DefaultIdleTimeout > time.Minute {
		t.Errorf("DefaultIdleTimeout %v", mllp.DefaultIdleTimeout)
	}
}

// TestUnfinishedHandshakesDoNotHoldOutMutualTLS: clients that open TCP
// connections and never start TLS fill the server; a client with a
// verified certificate still gets in (the oldest unfinished handshake is
// closed for it), and once known it is never closed to make room.
func TestUnfinishedHandshakesDoNotHoldOutMutualTLS(t *testing.T) {
	ca := newPKI(t, "sinew")
	ts := startServer(t, mllp.ServerConfig{MaxConns: 4, MaxConnsPerPeer: -1, ReadTimeout: time.Minute, TLS: &tls.Config{
		Certificates: []tls.Certificate{ca.server}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: ca.pool, MinVersion: tls.VersionTLS12,
	}}, echo)
	for range 4 {
		dialRaw(t, ts.addr) // never says a word
	}
	eventually(t, "four open", func() bool { return ts.metric(t, "sinew_mllp_open_connections", "") == 4 })
	var clients []*mllp.Client
	for i := range 4 {
		c, err := mllp.Dial(context.Background(), mllp.ClientConfig{Addr: ts.addr, Retries: -1, AckTimeout: 5 * time.Second,
			TLS: &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{ca.client}}})
		if err != nil {
			t.Fatalf("mTLS client %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		if reply, err := c.Send(context.Background(), []byte("MSH|tls")); err != nil || string(reply) != "ACK|MSH|tls" {
			t.Fatalf("mTLS client %d: %q, %v", i, reply, err)
		}
		clients = append(clients, c)
	}
	// Full of known clients: a fifth is refused, the four are kept.
	if c, err := mllp.Dial(context.Background(), mllp.ClientConfig{Addr: ts.addr, Retries: -1, AckTimeout: 2 * time.Second,
		TLS: &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{ca.client}}}); err == nil {
		if _, err := c.Send(context.Background(), []byte("MSH|fifth")); err == nil {
			t.Error("a fifth connection was served on a server full of known clients")
		}
		c.Close()
	}
	for i, c := range clients {
		if _, err := c.Send(context.Background(), []byte("MSH|again")); err != nil {
			t.Errorf("known client %d closed: %v", i, err)
		}
	}
}

// FuzzParsePeers: ParsePeers never panics, and every prefix it returns is
// valid and masked.
func FuzzParsePeers(f *testing.F) {
	for _, s := range []string{"10.1.2.3", "10.1.0.0/16", "::1", "::ffff:10.0.0.1", "fe80::1%eth0", "10.9.9.9/8", "", "x/33"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := mllp.ParsePeers([]string{s})
		if err != nil {
			return
		}
		for _, p := range ps {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("ParsePeers(%q) = %v", s, p)
			}
		}
	})
}

// TestSlowDripIsCut: bytes dripped slowly, inside a frame or as junk
// between frames, do not keep a connection open past the read timeout
// (from the frame's first byte) or the idle timeout (from the last frame).
func TestSlowDripIsCut(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first string
	}{
		{"inside a frame", "\x0bMSH|"},
		{"junk between frames", "j"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const limit = 400 * time.Millisecond
			ts := startServer(t, mllp.ServerConfig{ReadTimeout: limit, IdleTimeout: limit}, echo)
			rc := dialRaw(t, ts.addr)
			start := time.Now()
			rc.write(tc.first)
			closed := make(chan time.Duration, 1)
			go func() {
				rc.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, _ = io.ReadAll(rc.nc)
				closed <- time.Since(start)
			}()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case took := <-closed:
					if took < limit-50*time.Millisecond || took > limit+2*time.Second {
						t.Errorf("closed after %v, limit %v", took, limit)
					}
					return
				case <-tick.C:
					if _, err := rc.nc.Write([]byte("x")); err != nil {
						continue // closed: the reader reports when
					}
				}
			}
		})
	}
}
