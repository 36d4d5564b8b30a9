// Package natstest starts a real embedded nats-server with JetStream for a
// test, on a free port and a temporary store, and tears it down afterwards.
package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/natsembed"
	"github.com/sinewhq/sinew/pkg/streams"
)

// Server is a running test server.
type Server struct {
	*server.Server
	StoreDir string
}

// Start starts a server that stops when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, false)
}

// StartSyncAlways is Start with an fsync per JetStream write, as `sinew
// up` ships (the durable default).
func StartSyncAlways(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, true)
}

func start(tb testing.TB, syncAlways bool) *Server {
	tb.Helper()
	dir := tb.TempDir()
	s, err := natsembed.Start(natsembed.Options{Addr: "127.0.0.1:0", StoreDir: dir, SyncAlways: syncAlways})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { natsembed.Stop(s) })
	return &Server{Server: s, StoreDir: dir}
}

// Connect opens a client connection closed when the test ends.
func (s *Server) Connect(tb testing.TB) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.Name(tb.Name()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return nc, js
}

// StartWithTopology starts a server, ensures the topology built from opts
// and returns a connection to it.
func StartWithTopology(tb testing.TB, opts streams.Options) (*Server, *nats.Conn, jetstream.JetStream) {
	tb.Helper()
	s := Start(tb)
	nc, js := s.Connect(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := streams.New(opts).Ensure(ctx, js); err != nil {
		tb.Fatal(err)
	}
	return s, nc, js
}

// Service is what Run runs: any Sinew service (bus.Service).
type Service interface {
	Run(ctx context.Context) error
	Ready() error
}

// Run runs svc until the test ends (then stops it and checks it returned
// nil) and waits up to 10 s for it to be ready.
func Run(tb testing.TB, svc Service) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for svc.Ready() != nil {
		select {
		case err := <-done:
			tb.Fatalf("service stopped before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("service not ready after 10 s: %v", svc.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
