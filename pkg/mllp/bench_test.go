package mllp_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sinewhq/sinew/pkg/mllp"
)

// BenchmarkRoundTrip measures message → ACK over loopback TCP with a handler
// that answers at once: the transport's own ceiling, on one connection and
// on 32 used concurrently.
func BenchmarkRoundTrip(b *testing.B) {
	m := msg(1)
	reply := []byte("MSH|^~\\&|SINEW|ST-MARYS|EPIC||20250101||ACK^A01^ACK|1|P|2.5\rMSA|AA|1\r")
	h := mllp.HandlerFunc(func(context.Context, *mllp.Conn, []byte) []byte { return reply })
	for _, conns := range []int{1, 32} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			ts := startServer(b, mllp.ServerConfig{}, h)
			clients := make([]*mllp.Client, conns)
			for i := range clients {
				c, err := mllp.Dial(context.Background(), mllp.ClientConfig{Addr: ts.addr})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				clients[i] = c
			}
			b.SetBytes(int64(len(m)))
			b.ReportAllocs()
			b.ResetTimer()
			var left atomic.Int64
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			for _, c := range clients {
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						if _, err := c.Send(context.Background(), m); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
