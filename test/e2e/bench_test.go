package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
)

// dispense is a Willow RDS^O13 whose prescription number (the
// transaction's reference in Fusion) is also its control id: unique across
// runs, or ingest would take a later run's messages for reused control ids.
func dispense(rx string) []byte {
	return fmt.Appendf(nil, "MSH|^~\\&|WILLOW|STMARYS|SINEW|STMARYS|20261126075500||RDS^O13^RDS_O13|%[1]s|P|2.5.1\r"+
		"PID|1||E1234567^^^STMARYS^MR||TESTPATIENT^ALPHA||19700101|F\r"+
		"PV1|1|I|ED^^^STMARYS\r"+
		"ORC|RE|%[1]s|%[1]s||CM\r"+
		"RXD|1|0781-3207-95^Ceftriaxone 1 g vial^NDC|%[2]s|2|EA^^UCUM||%[1]s\r"+
		"ZRX|Y|EDPHARM\r", rx, time.Now().UTC().Format("20060102150405"))
}

type sent struct {
	rx string
	at time.Time
}

// drive sends n dispenses over conns MLLP connections, at rate messages a
// second in total (as fast as acknowledged when rate is 0), and returns
// when each was sent.
func drive(b *testing.B, addr string, n, conns, rate int, prefix string) []sent {
	ctx := context.Background()
	out := make([]sent, n)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range conns {
		wg.Go(func() {
			cl, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: addr, Match: hl7.AckMatches, AckTimeout: 10 * time.Second})
			if err != nil {
				b.Error(err)
				return
			}
			defer cl.Close()
			for i := c; i < n; i += conns {
				if rate > 0 { // open loop: message i is due at i/rate
					if wait := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); wait > 0 {
						time.Sleep(wait)
					}
				}
				rx := fmt.Sprintf("%s%08d", prefix, i)
				at := time.Now()
				if _, err := cl.Send(ctx, dispense(rx)); err != nil {
					b.Error(err)
					return
				}
				out[i] = sent{rx: rx, at: at}
			}
		})
	}
	wg.Wait()
	return out
}

// accepted waits until fusionsim holds every reference in s and returns
// each one's latency, MLLP send to the row's creation in Fusion.
func accepted(b *testing.B, f *fusionProc, s []sent, before int) ([]time.Duration, time.Time) {
	want := make(map[string]time.Time, len(s))
	for _, x := range s {
		want[x.rx] = x.at
	}
	deadline := time.Now().Add(5 * time.Minute)
	// Wait on the row count (cheap for fusionsim) before reading the rows
	// once: polling every row would take CPU from what is measured.
	for f.count(b) < before+len(s) && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
	}
	for {
		var rows []struct {
			TransactionReference string
			CreatedAt            time.Time
		}
		f.get(b, "/sim/inventory", &rows)
		var lat []time.Duration
		var last time.Time
		for _, r := range rows {
			if at, ok := want[r.TransactionReference]; ok {
				lat = append(lat, r.CreatedAt.Sub(at))
				if r.CreatedAt.After(last) {
					last = r.CreatedAt
				}
			}
		}
		if len(lat) >= len(s) {
			slices.Sort(lat)
			return lat, last
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d transactions in Fusion after 5 min", len(lat), len(s))
		}
		time.Sleep(time.Second)
	}
}

// benchFlags are extra `sinew up` flags for BenchmarkEndToEnd, from
// $SINEW_BENCH_UP_FLAGS (e.g. "--sync-always=false"); fusionsim's come
// from $SINEW_BENCH_FUSION_FLAGS (e.g. "-pprof-addr 127.0.0.1:6062").
var benchFlags = strings.Fields(os.Getenv("SINEW_BENCH_UP_FLAGS"))

// count is the number of rows in fusionsim's inventory interface.
func (f *fusionProc) count(tb testing.TB) int {
	var c struct{ Rows int }
	f.get(tb, "/sim/inventory/count", &c)
	return c.Rows
}

func pct(lat []time.Duration, p float64) time.Duration {
	return lat[min(len(lat)-1, int(float64(len(lat))*p))]
}

// BenchmarkEndToEnd measures MLLP receipt to acceptance by fusionsim for
// pharmacy dispenses through ingest, transform and loader on `sinew up`
// (one process: NATS, every service) and fusionsim (another), both on
// this machine: latency at a steady 1,000 messages/s over 8 connections,
// and the highest rate sustained when 32 connections send as fast as they
// are acknowledged ($SINEW_BENCH_MAX_CONNS another number; more senders
// mean fuller group commits and batches downstream). Run with -benchtime 1x.
//
// Each sub-benchmark starts its own fusionsim and `sinew up`, so neither
// measures the state the other left (the duplicate windows, the keys).
//
// `max` also waits for the TRACK indexer to catch up and reports the CPU
// and resident memory per message by then (settled-*), and the wait
// (settle-s). $SINEW_BENCH_STREAM_WRITES logs the writes per message of
// each stream; $SINEW_BENCH_HEAP_URL and $SINEW_BENCH_HEAP_OUT save
// `sinew up`'s heap profile (with --pprof-addr) once settled.
func BenchmarkEndToEnd(b *testing.B) {
	run := 0
	b.Run("steady1000", func(b *testing.B) {
		fusion, a, _ := benchSystem(b)
		for range b.N {
			run++
			n := 10000
			before := fusion.count(b)
			lat, _ := accepted(b, fusion, drive(b, a.mllp, n, 8, 1000, fmt.Sprintf("S%d", run)), before)
			b.ReportMetric(float64(pct(lat, 0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(pct(lat, 0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
		}
	})
	b.Run("max", func(b *testing.B) {
		fusion, a, sys := benchSystem(b)
		for range b.N {
			run++
			n := 20000
			if v, err := strconv.Atoi(os.Getenv("SINEW_BENCH_MAX_N")); err == nil && v > 0 {
				n = v // a longer run, e.g. to profile how the rate changes as state grows
			}
			conns := 32 // as many interfaces as a large site's Epic sends on
			if v, err := strconv.Atoi(os.Getenv("SINEW_BENCH_MAX_CONNS")); err == nil && v > 0 {
				conns = v
			}
			before := fusion.count(b)
			w0, b0 := writes(b, sys)
			per0 := streamWrites(b, sys)
			cs0, cf0, ch0 := cpuTime(sys.cmd.Process.Pid), cpuTime(fusion.pid), cpuTime(os.Getpid())
			rss0 := rss(sys.cmd.Process.Pid)
			start := time.Now()
			s := drive(b, a.mllp, n, conns, 0, fmt.Sprintf("M%d", run))
			ingested := time.Since(start)
			// CPU is read when the last row lands, before the rows are read back.
			for fusion.count(b) < before+n && time.Since(start) < 5*time.Minute {
				time.Sleep(100 * time.Millisecond)
			}
			cs1, cf1, ch1 := cpuTime(sys.cmd.Process.Pid), cpuTime(fusion.pid), cpuTime(os.Getpid())
			rss1 := rss(sys.cmd.Process.Pid)
			// The rest of a message's work is asynchronous (the TRACK index
			// built from AUDIT, the reconciler's reads): the CPU until every
			// durable consumer has nothing pending is what a message costs in
			// all, and how long that takes after the last row is the lag.
			landed := time.Now()
			settle(b, sys, 3*time.Minute)
			b.ReportMetric(time.Since(landed).Seconds(), "settle-s")
			cs2 := cpuTime(sys.cmd.Process.Pid)
			rss2 := rss(sys.cmd.Process.Pid)
			if u, out := os.Getenv("SINEW_BENCH_HEAP_URL"), os.Getenv("SINEW_BENCH_HEAP_OUT"); u != "" && out != "" {
				saveHeap(b, u, out) // e.g. http://127.0.0.1:6061/debug/pprof/heap with --pprof-addr 127.0.0.1:6061
			}
			lat, last := accepted(b, fusion, s, before)
			b.ReportMetric(float64(n)/ingested.Seconds(), "ingest-msg/s")
			b.ReportMetric(float64(n)/last.Sub(start).Seconds(), "e2e-msg/s")
			b.ReportMetric(float64(pct(lat, 0.99).Microseconds())/1000, "p99-ms")
			perMsg := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
			b.ReportMetric(perMsg(cs1-cs0), "sinew-cpu-us/msg")
			b.ReportMetric(perMsg(cs2-cs0), "settled-cpu-us/msg")
			b.ReportMetric(perMsg(cf1-cf0), "fusionsim-cpu-us/msg")
			b.ReportMetric(perMsg(ch1-ch0), "harness-cpu-us/msg")
			// What the run left resident (duplicate windows, KV and TRACK
			// subjects, caches), when the last row lands: growth, not a peak.
			b.ReportMetric(float64(rss1-rss0)/float64(n), "sinew-rss-B/msg")
			b.ReportMetric(float64(rss2-rss0)/float64(n), "settled-rss-B/msg")
			w1, b1 := writes(b, sys)
			if os.Getenv("SINEW_BENCH_STREAM_WRITES") != "" { // where the writes go, one line a stream
				for name, w := range streamWrites(b, sys) {
					if d := w - per0[name]; d > 0 {
						b.Logf("writes/msg %-24s %.3f", name, float64(d)/float64(n))
					}
				}
			}
			b.ReportMetric(float64(w1-w0)/float64(n), "js-writes/msg")
			b.ReportMetric(float64(b1-b0)/float64(n), "js-bytes/msg")
		}
	})
}

// benchSystem starts fusionsim (50 ms ESS steps, no faults) and `sinew up`
// against it, stopped when b ends.
func benchSystem(b *testing.B) (*fusionProc, addrs, *system) {
	fusion := startFusion(b, append([]string{"-step", "50ms"}, strings.Fields(os.Getenv("SINEW_BENCH_FUSION_FLAGS"))...)...)
	a := addrs{nats: freeAddr(b), http: freeAddr(b), mllp: freeAddr(b)}
	sys, _ := upWith(b, b.TempDir(), a, append([]string{"--fusion-url", fusion.url}, benchFlags...), append([]string{"SINEW_RECONCILER_INVENTORY_EVERY=0s"}, glEnv...))
	b.Cleanup(func() { sys.stop(b) })
	return fusion, a, sys
}

// rss is the resident set of process pid in bytes, from /proc (0 where
// there is none).
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuTime is the CPU time (user and system, every thread) process pid has
// used so far, from /proc (0 where there is none): CPU per message is a
// steadier figure than the rate on a shared machine.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th, in USER_HZ (100 a second on Linux).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

// saveHeap writes the heap profile served at url to the file out.
func saveHeap(tb testing.TB, url, out string) {
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(out, body, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// adminJS is a JetStream context as the admin user, closed with tb.
func (s *system) adminJS(tb testing.TB) jetstream.JetStream {
	nc, err := nats.Connect(s.natsURL, s.admin(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// settle waits until the TRACK indexer (the asynchronous rest of a
// message's work: AUDIT into TRACK) has nothing pending or unacknowledged,
// at most limit. Other consumers are done when the rows are in Fusion, or
// idle in the bench (the reconciler's inventory check is off).
func settle(tb testing.TB, s *system, limit time.Duration) {
	js := s.adminJS(tb)
	ctx := context.Background()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		c, err := js.Consumer(ctx, "AUDIT", "track-indexer")
		if err != nil {
			continue
		}
		if info, err := c.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
			return
		}
	}
	tb.Logf("track indexer still busy after %s", limit)
}

// streamWrites is each stream's last sequence, by name.
func streamWrites(tb testing.TB, s *system) map[string]uint64 {
	js := s.adminJS(tb)
	out := map[string]uint64{}
	l := js.ListStreams(context.Background())
	for info := range l.Info() {
		out[info.Config.Name] = info.State.LastSeq
	}
	if err := l.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// writes sums the messages ever stored (last sequence) and the bytes held
// over every stream: the JetStream writes a run costs. The KV stream keeps
// one revision per key, so its bytes count the last revision only.
func writes(tb testing.TB, s *system) (n, bytes uint64) {
	js := s.adminJS(tb)
	l := js.ListStreams(context.Background())
	for info := range l.Info() {
		n += info.State.LastSeq
		bytes += info.State.Bytes
	}
	if err := l.Err(); err != nil {
		tb.Fatal(err)
	}
	return n, bytes
}
