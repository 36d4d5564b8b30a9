package streams_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

// BenchmarkRawPublish is the ceiling beside the MLLP figures
// (scripts/bench-durable.sh): bare JetStream publishes of a 0.6 KB message
// with a Nats-Msg-Id to a file stream, no Sinew code but the publish call,
// fsync per write (sync) and OS-buffered, from one publisher, from 32
// concurrent ones, and as atomic batches of 8, 32 and 256 (one publisher).
func BenchmarkRawPublish(b *testing.B) {
	body := make([]byte, 600)
	for _, mode := range []struct {
		name string
		sync bool
	}{{"sync", true}, {"buffered", false}} {
		b.Run(mode.name, func(b *testing.B) {
			nc := benchServer(b, mode.sync)
			var n int64
			id := func() string { n++; return "raw-" + strconv.FormatInt(n, 10) }
			msg := func(msgID string) *nats.Msg {
				m := &nats.Msg{Subject: "bench.raw", Data: body, Header: nats.Header{}}
				m.Header.Set(jetstream.MsgIDHeader, msgID)
				return m
			}
			ctx := context.Background()
			b.Run("1pub", func(b *testing.B) {
				for b.Loop() {
					if _, err := streams.Publish(ctx, nc, msg(id())); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
			b.Run("32pub", func(b *testing.B) {
				var mu sync.Mutex
				next := func() string { mu.Lock(); defer mu.Unlock(); return id() }
				b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := streams.Publish(ctx, nc, msg(next())); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
			for _, size := range []int{8, 32, 256} {
				b.Run("atomic"+strconv.Itoa(size), func(b *testing.B) {
					batch := make([]*nats.Msg, 0, size)
					flush := func() {
						if _, err := streams.PublishAtomic(ctx, nc, batch); err != nil {
							b.Fatal(err)
						}
						batch = batch[:0]
					}
					for b.Loop() {
						if batch = append(batch, msg(id())); len(batch) == size {
							flush()
						}
					}
					if len(batch) > 0 {
						flush()
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
				})
			}
		})
	}
}

// BenchmarkDiskFsync is the file system's fsync rate beside the publish
// figures: 512-byte write + fsync, from one writer (as one stream's
// writes are: nats-server stores a stream's messages in one goroutine) and
// from eight at once, each on its own file (as eight streams), in the
// temporary directory (the same file system as the JetStream stores).
func BenchmarkDiskFsync(b *testing.B) {
	for _, writers := range []int{1, 8} {
		b.Run(strconv.Itoa(writers)+"writers", func(b *testing.B) {
			dir := b.TempDir()
			var n atomic.Int64
			b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
			if writers == 1 {
				b.SetParallelism(1)
			}
			b.RunParallel(func(pb *testing.PB) {
				f, err := os.Create(filepath.Join(dir, "fsync-"+strconv.FormatInt(n.Add(1), 10)))
				if err != nil {
					b.Error(err)
					return
				}
				defer f.Close()
				buf := make([]byte, 512)
				for pb.Next() {
					if _, err := f.Write(buf); err != nil {
						b.Error(err)
						return
					}
					if err := f.Sync(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
		})
	}
}

func benchServer(b *testing.B, syncAlways bool) *nats.Conn {
	b.Helper()
	start := natstest.Start
	if syncAlways {
		start = natstest.StartSyncAlways
	}
	srv := start(b)
	nc, js := srv.Connect(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"},
		Storage: jetstream.FileStorage, Duplicates: time.Hour, AllowAtomicPublish: true}); err != nil {
		b.Fatal(err)
	}
	return nc
}
