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
	"github.com/sinewhq/sinew/pkg/track"
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
// `max` also waits for the console's tracking index to catch up (its
// sinew.track.status watermark at AUDIT's last sequence) and reports the CPU
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
			steady(b, fusion, a.mllp, fmt.Sprintf("S%d", run))
		}
	})
	b.Run("max", func(b *testing.B) {
		fusion, a, sys := benchSystem(b)
		for range b.N {
			run++
			// A longer run profiles how the rate changes as state grows; 32
			// connections are as many interfaces as a large site's Epic sends on.
			n, conns := envInt("SINEW_BENCH_MAX_N", 20000), envInt("SINEW_BENCH_MAX_CONNS", 32)
			before := fusion.count(b)
			w0, b0 := writes(b, sys)
			per0, subj0 := streamWrites(b, sys)
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
			// The rest of a message's work is asynchronous (the tracking
			// index built from AUDIT, the reconciler's reads): the CPU until
			// the index has caught up is what a message costs in all, and how
			// long that takes after the last row is the lag.
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
			// What the run left resident (duplicate windows, KV subjects,
			// caches, the index's bounded cache), when the last row lands:
			// growth, not a peak.
			b.ReportMetric(float64(rss1-rss0)/float64(n), "sinew-rss-B/msg")
			b.ReportMetric(float64(rss2-rss0)/float64(n), "settled-rss-B/msg")
			w1, b1 := writes(b, sys)
			// Subjects a message adds for good: the server keeps every
			// subject of a file stream in memory (its per-subject index)
			// for as long as the subject holds a message.
			per1, subj1 := streamWrites(b, sys)
			var newSubjects uint64
			for name, k := range subj1 {
				newSubjects += k - min(k, subj0[name])
			}
			b.ReportMetric(float64(newSubjects)/float64(n), "subjects/msg")
			if os.Getenv("SINEW_BENCH_STREAM_WRITES") != "" { // where the writes go, one line a stream
				for name, w := range per1 {
					if d := w - per0[name]; d > 0 {
						b.Logf("writes/msg %-24s %.3f   subjects/msg %.3f", name, float64(d)/float64(n),
							float64(subj1[name]-min(subj1[name], subj0[name]))/float64(n))
					}
				}
			}
			b.ReportMetric(float64(w1-w0)/float64(n), "js-writes/msg")
			b.ReportMetric(float64(b1-b0)/float64(n), "js-bytes/msg")
		}
	})
}

// steady sends 10,000 dispenses at 1,000 a second over 8 connections and
// reports the latency to a row in fusionsim (p50, p99, max).
func steady(b *testing.B, fusion *fusionProc, addr, prefix string) {
	before := fusion.count(b)
	lat, _ := accepted(b, fusion, drive(b, addr, 10000, 8, 1000, prefix), before)
	b.ReportMetric(float64(pct(lat, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(lat, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
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

// fetch is the body served at url.
func fetch(tb testing.TB, url string) []byte {
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

// saveHeap writes the heap profile served at url to the file out.
func saveHeap(tb testing.TB, url, out string) {
	if err := os.WriteFile(out, fetch(tb, url), 0o644); err != nil {
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

// settle waits until the console's tracking index (the asynchronous
// rest of a message's work: AUDIT into the index) has read AUDIT's last
// record (sinew.track.status), at most limit. Other consumers are done
// when the rows are in Fusion, or idle in the bench (the reconciler's
// inventory check is off).
func settle(tb testing.TB, s *system, limit time.Duration) {
	nc := s.adminJS(tb).Conn()
	ctx := context.Background()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if st, err := track.AskStatus(ctx, nc); err == nil && st.Lag() == 0 {
			return
		}
	}
	tb.Logf("tracking index still behind AUDIT after %s", limit)
}

// streamWrites is each stream's last sequence and its number of
// subjects, by name.
func streamWrites(tb testing.TB, s *system) (seqs, subjects map[string]uint64) {
	js := s.adminJS(tb)
	seqs, subjects = map[string]uint64{}, map[string]uint64{}
	l := js.ListStreams(context.Background())
	for info := range l.Info() {
		seqs[info.Config.Name] = info.State.LastSeq
		subjects[info.Config.Name] = info.State.NumSubjects
	}
	if err := l.Err(); err != nil {
		tb.Fatal(err)
	}
	return seqs, subjects
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

// BenchmarkEndToEndExternal is BenchmarkEndToEnd against a Sinew that is
// already running, e.g. the three-node compose cluster
// (deploy/compose/bench/e2e.sh runs it beside a single-node `sinew up`):
// $SINEW_BENCH_MLLP is its MLLP listener, $SINEW_BENCH_FUSION the URL of
// the fusionsim it posts to. The same dispenses, the same two runs:
// latency at a steady 1,000 a second over 8 connections, then the rate
// with 32 connections sending as fast as they are acknowledged. The
// processes are not this benchmark's, so no CPU or memory figures.
// $SINEW_BENCH_RUN_ID keeps control ids unique across invocations
// against one system. Run with -benchtime 1x.
func BenchmarkEndToEndExternal(b *testing.B) {
	addr, furl := os.Getenv("SINEW_BENCH_MLLP"), os.Getenv("SINEW_BENCH_FUSION")
	if addr == "" || furl == "" {
		b.Skip("SINEW_BENCH_MLLP and SINEW_BENCH_FUSION name the system to measure")
	}
	fusion := &fusionProc{url: furl}
	id := os.Getenv("SINEW_BENCH_RUN_ID")
	if id == "" {
		id = strconv.FormatInt(time.Now().Unix()%100000, 10)
	}
	run := 0
	b.Run("steady1000", func(b *testing.B) {
		for range b.N {
			run++
			steady(b, fusion, addr, fmt.Sprintf("XS%s-%d-", id, run))
		}
	})
	b.Run("max", func(b *testing.B) {
		for range b.N {
			run++
			n := envInt("SINEW_BENCH_MAX_N", 20000)
			before := fusion.count(b)
			start := time.Now()
			s := drive(b, addr, n, 32, 0, fmt.Sprintf("XM%s-%d-", id, run))
			ingested := time.Since(start)
			lat, last := accepted(b, fusion, s, before)
			b.ReportMetric(float64(n)/ingested.Seconds(), "ingest-msg/s")
			b.ReportMetric(float64(n)/last.Sub(start).Seconds(), "e2e-msg/s")
			b.ReportMetric(float64(pct(lat, 0.99).Microseconds())/1000, "p99-ms")
		}
	})
}
