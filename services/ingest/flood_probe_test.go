package ingest_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/ingest"
)

// TestIdleFloodDoesNotLockOutSenders: the probe of issue 9 item 9 against
// the ingest listener. One host opens many idle connections; an allowlisted
// sender (mllp.known_peers) and another host are still answered AA, and the
// idle connections are closed after the (shortened) idle timeout.
func TestIdleFloodDoesNotLockOutSenders(t *testing.T) {
	const idle = time.Second
	e := start(t, streams.DefaultOptions(), func(c *ingest.Config) {
		c.MLLP.MaxConns, c.MLLP.MaxConnsPerPeer, c.MLLP.IdleTimeout = 20, 10, idle
		c.MLLP.KnownPeers = []string{"127.0.0.2"}
	})
	addr := e.svc.MLLPAddr().String()
	_ = e.client.Close()
	probe, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot connect from 127.0.0.2 on this host: %v", err)
	}
	probe.Close()

	var flood []net.Conn
	for range 60 {
		nc, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}).Dial("tcp", addr)
		if err == nil {
			flood = append(flood, nc)
			t.Cleanup(func() { nc.Close() })
		}
	}
	for i, from := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.2"} {
		c, err := mllp.Dial(context.Background(), mllp.ClientConfig{Addr: addr, LocalAddr: from, Match: hl7.AckMatches,
			AckTimeout: 5 * time.Second, Retries: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		ctrl := "FLOOD-" + itoa(i)
		reply, err := c.Send(context.Background(), []byte("MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126||ADT^A08|"+ctrl+"|P|2.5\rPID|1\r"))
		if err != nil {
			t.Fatalf("sender on %s during the flood: %v", from, err)
		}
		if a, _ := hl7.Parse(reply); a.Get("MSA-1") != hl7.AA {
			t.Errorf("sender on %s answered %s", from, a.Get("MSA-1"))
		}
	}
	if n := len(e.stored(t)); n != 3 {
		t.Errorf("%d stored, want 3", n)
	}
	start := time.Now()
	for _, nc := range flood {
		nc.SetReadDeadline(time.Now().Add(idle + 5*time.Second))
		if _, err := io.ReadAll(nc); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("an idle connection still open after %v", time.Since(start))
			}
		}
	}
}
