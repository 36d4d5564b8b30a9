package reconciler_test

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/batchstate"
	"github.com/sinewhq/sinew/pkg/recon"
)

// BenchmarkReconcileGL1M is a 1,000,000-line batch (100 journals of
// 10,000 lines) imported into fusionsim by the loader, then reconciled by
// the reconciler service: Fusion's read-back page by page, the
// GlInterface.zip from a temporary file. It reports the heap the
// reconciliation adds at its peak (peak-heap-MB: HeapInuse sampled every
// 20 ms, less the heap before it started, which holds fusionsim's copy of
// the batch and the embedded server) and the process's VmHWM.
func BenchmarkReconcileGL1M(b *testing.B) { benchmarkReconcileGL(b, "HB-1M", 100) }

// BenchmarkReconcileGL2M is BenchmarkReconcileGL1M with 2,000,000 lines
// (200 journals): the reconciliation's memory stays the same.
func BenchmarkReconcileGL2M(b *testing.B) { benchmarkReconcileGL(b, "HB-2M", 200) }

func benchmarkReconcileGL(b *testing.B, batch string, journals int) {
	const perJournal = 10_000
	for range b.N {
		b.StopTimer()
		e := start(b, tuning{noReconciler: true})
		var lines []glLine
		for g := range int64(journals) {
			lines = append(lines, balanced(800001+g, perJournal)...)
		}
		e.glBatch(b, batch, lines)
		lines = nil
		e.waitState(b, batch, 30*time.Minute, func(s *batchstate.State) bool { return s.Step == batchstate.Imported })
		runtime.GC()
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(live)
		base := live[0].Value.Uint64()
		var peak, peakInuse atomic.Uint64
		done := make(chan struct{})
		go func() {
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
				metrics.Read(s)
				if v := s[0].Value.Uint64(); v > peak.Load() {
					peak.Store(v)
				}
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peakInuse.Load() {
					peakInuse.Store(m.HeapInuse)
				}
				select {
				case <-done:
					return
				case <-t.C:
				}
			}
		}()
		b.StartTimer()
		e.startReconciler()
		s := e.waitState(b, batch, 30*time.Minute, func(s *batchstate.State) bool { return s.Step == batchstate.Reconciled })
		b.StopTimer()
		close(done)
		if n := journals * perJournal; s.Verdict != recon.VerdictPass || !strings.Contains(s.Detail, fmt.Sprintf("%d lines: %d matched", n, n)) {
			b.Fatalf("%s: %s", s.Verdict, s.Detail)
		}
		b.ReportMetric(float64(peak.Load()-min(base, peak.Load()))/(1<<20), "peak-live-MB")
		b.ReportMetric(float64(base)/(1<<20), "base-live-MB")
		b.ReportMetric(float64(peakInuse.Load())/(1<<20), "peak-inuse-MB")
		if st, err := os.ReadFile("/proc/self/status"); err == nil {
			for _, l := range strings.Split(string(st), "\n") {
				if strings.HasPrefix(l, "VmHWM:") {
					var kb float64
					for _, f := range strings.Fields(l)[1:2] {
						for _, c := range f {
							kb = kb*10 + float64(c-'0')
						}
					}
					b.ReportMetric(kb/1024, "VmHWM-MB")
				}
			}
		}
	}
}
