package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkMemoryPlateau shows that what a message leaves in memory is
// bounded in time: a steady stream of dispenses ($SINEW_BENCH_PLATEAU_RATE,
// 500 a second, over 8 connections) for $SINEW_BENCH_PLATEAU_FOR (12 min)
// into `sinew up` whose two windows of per-message state are shortened
// in proportion, so that a day's plateau is reached in minutes: the
// duplicate window ($SINEW_BENCH_PLATEAU_WINDOW, 2 min; 1 h shipped) and
// the loader's claim_ttl ($SINEW_BENCH_PLATEAU_TTL, 3 min; 2 h shipped,
// claim_skew 30 s). Once both have passed, every new message's state
// replaces an expired one's and the resident set stops growing; with the
// shipped windows it grows through the whole run (one whole run per
// setting, so run it twice to compare: SINEW_BENCH_PLATEAU_WINDOW=1h
// SINEW_BENCH_PLATEAU_TTL=2h for the shipped values).
//
// Reported: the RSS of `sinew up` at the start, when the windows have
// filled (window + TTL after the first message) and at the end;
// fill-B/msg is the growth per message until the windows filled and
// late-B/msg after it (0 means bounded); the same for the live heap at
// the last GC (fill-live-B/msg, late-live-B/msg: the RSS also holds what
// the runtime has not yet handed back); lag-rows is how many dispenses
// were not yet in fusionsim when the last was acknowledged (the pipeline
// kept up when small). The samples are logged every 30 s. Run with
// -benchtime 1x.
func BenchmarkMemoryPlateau(b *testing.B) {
	rate := envInt("SINEW_BENCH_PLATEAU_RATE", 500)
	dur := envDuration(b, "SINEW_BENCH_PLATEAU_FOR", 12*time.Minute)
	window := envDuration(b, "SINEW_BENCH_PLATEAU_WINDOW", 2*time.Minute)
	ttl := envDuration(b, "SINEW_BENCH_PLATEAU_TTL", 3*time.Minute)
	filled := window + ttl
	if filled >= dur {
		b.Fatalf("the run (%v) must outlast the windows (%v + %v)", dur, window, ttl)
	}
	fusion := startFusion(b, "-step", "50ms")
	a := addrs{nats: freeAddr(b), http: freeAddr(b), mllp: freeAddr(b)}
	env := append([]string{"SINEW_RECONCILER_INVENTORY_EVERY=0s",
		"SINEW_TOPOLOGY_DUPLICATE_WINDOW=" + window.String(),
		"SINEW_LOADER_CLAIM_TTL=" + ttl.String(), "SINEW_LOADER_CLAIM_SKEW=30s"}, glEnv...)
	sys, _ := upWith(b, b.TempDir(), a, append([]string{"--fusion-url", fusion.url}, benchFlags...), env)
	b.Cleanup(func() { sys.stop(b) })
	pid := sys.cmd.Process.Pid

	type sample struct {
		at        time.Duration
		rss, live int64
	}
	// The live heap at the last GC: the next GC's goal is twice it
	// (GOGC 100). Less noisy than the RSS, which the runtime does not
	// hand back at once.
	live := func() int64 { return int64(promGauge(b, "http://"+a.http+"/metrics", "go_memstats_next_gc_bytes") / 2) }
	for run := range b.N {
		before := fusion.count(b)
		n := rate * int(dur/time.Second)
		rss0, live0 := rss(pid), live()
		start := time.Now()
		var (
			mu      sync.Mutex
			samples []sample
		)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			t := time.NewTicker(10 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					mu.Lock()
					samples = append(samples, sample{time.Since(start), rss(pid), live()})
					mu.Unlock()
				}
			}
		})
		drive(b, a.mllp, n, 8, rate, fmt.Sprintf("P%d-", run))
		elapsed := time.Since(start)
		lag := before + n - fusion.count(b)
		close(stop)
		wg.Wait()
		rss2, live2 := rss(pid), live()

		// The RSS when the windows had filled: the first sample at or
		// after it.
		rss1, live1, at1 := rss2, live2, elapsed
		for _, s := range samples {
			if s.at >= filled {
				rss1, live1, at1 = s.rss, s.live, s.at
				break
			}
		}
		for _, s := range samples {
			if s.at%(30*time.Second) < 10*time.Second {
				b.Logf("t=%4.0fs  rss %6.1f MB  live heap %6.1f MB", s.at.Seconds(), float64(s.rss)/(1<<20), float64(s.live)/(1<<20))
			}
		}
		// Messages sent by d into the run, at the rate reached (the open
		// loop falls behind when ACKs are slower than the rate asked).
		msgsBy := func(d time.Duration) float64 { return float64(n) * d.Seconds() / elapsed.Seconds() }
		b.ReportMetric(float64(rss0)/(1<<20), "rss-start-MB")
		b.ReportMetric(float64(rss1)/(1<<20), "rss-filled-MB")
		b.ReportMetric(float64(rss2)/(1<<20), "rss-end-MB")
		b.ReportMetric(float64(rss1-rss0)/msgsBy(at1), "fill-B/msg")
		b.ReportMetric(float64(rss2-rss1)/max(1, msgsBy(elapsed-at1)), "late-B/msg")
		b.ReportMetric(float64(live1-live0)/msgsBy(at1), "fill-live-B/msg")
		b.ReportMetric(float64(live2-live1)/max(1, msgsBy(elapsed-at1)), "late-live-B/msg")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "sent-msg/s")
		b.ReportMetric(float64(lag), "lag-rows")
	}
}

// promGauge is the value of the unlabelled series name on the Prometheus
// text page at url.
func promGauge(tb testing.TB, url, name string) float64 {
	for line := range strings.Lines(string(fetch(tb, url))) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	tb.Fatalf("%s: not on %s", name, url)
	return 0
}

func envDuration(tb testing.TB, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		tb.Fatalf("%s=%q: want a duration", name, v)
	}
	return d
}
