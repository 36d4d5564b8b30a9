package recon_test

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/recon"
)

// BenchmarkReconcile1MBudget is BenchmarkReconcile1M's batch with the
// posted lines streamed through Post, under memory budgets from 4 MiB to
// one that holds the whole batch. It reports the live heap the engine
// adds at its peak (peak-live-MB: a forced GC and /gc/heap/live:bytes
// every 50 ms, less the inputs' heap), which follows the budget, not the
// batch.
func BenchmarkReconcile1MBudget(b *testing.B) {
	in, src := bigBatch(b)
	for _, budget := range []int64{4 << 20, 16 << 20, 64 << 20, 1 << 30} {
		b.Run(fmt.Sprintf("%dMiB", budget>>20), func(b *testing.B) {
			var peak float64
			for b.Loop() {
				c := *in
				c.Posted, c.MemoryBudget, c.TempDir = nil, budget, b.TempDir()
				var res *recon.Result
				peak = max(peak, peakLive(func() {
					rc := recon.NewReconciler(&c)
					for i := range in.Posted {
						if err := rc.Post(&in.Posted[i]); err != nil {
							b.Fatal(err)
						}
					}
					for i := range src {
						if err := rc.Add(&src[i]); err != nil {
							b.Fatal(err)
						}
					}
					var err error
					if res, err = rc.Finish(); err != nil {
						b.Fatal(err)
					}
				}))
				check1M(b, res)
			}
			b.ReportMetric(peak, "peak-live-MB")
		})
	}
}

// peakLive runs fn and returns the most live heap it added, in MiB.
func peakLive(fn func()) float64 {
	read := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		runtime.GC()
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	base := read()
	var peak atomic.Uint64
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	fn()
	close(done)
	<-stopped
	return float64(peak.Load()-min(base, peak.Load())) / (1 << 20)
}
