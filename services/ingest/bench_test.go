package ingest_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/pkg/streams"
)

// benchMsg is a 0.7 KB ADT^A08 with a unique control id.
func benchMsg(conn, i int) []byte {
	return fmt.Appendf(nil, "MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126101500||ADT^A08^ADT_A01|B%02d-%09d|P|2.5.1\r"+
		"EVN|A08|20261126101500\r"+
		"PID|1||E%07d^^^STMARYS^MR||SIMULATED^ALPHA^Q||19700101|F|||100 MAIN ST^^SPRINGFIELD^IL^62701^USA||(217)555-0100|||S||ACC%09d\r"+
		"PV1|1|I|4WEST^401^A^STMARYS||||1234^ATTENDING^ALICE|||MED||||1|||1234^ATTENDING^ALICE|IN||BCBS|||||||||||||||||||STMARYS|||||20261126080000\r"+
		"PV2|||^CHEST PAIN\r"+
		"OBX|1|NM|8867-4^Heart rate^LN||72|/min|60-100|N|||F\r"+
		"AL1|1|DA|70618^Penicillin^RXNORM|SV|HIVES\r"+
		"DG1|1||R07.9^Chest pain, unspecified^I10||20261126|A\r", conn, i, 1000000+i%9000000, i)
}

// benchClients starts ingest with topo and connects n MLLP clients to it.
func benchClients(b *testing.B, topo streams.Options, n int) []*mllp.Client {
	e := start(b, topo, nil)
	_ = e.client.Close()
	clients := make([]*mllp.Client, n)
	for i := range clients {
		c, err := mllp.Dial(context.Background(), mllp.ClientConfig{Addr: e.svc.MLLPAddr().String(), Match: hl7.AckMatches})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		clients[i] = c
	}
	return clients
}

// BenchmarkCommitAck is MLLP receipt to ACK through the real listener and
// JetStream (commit before acknowledge, control-id check, audit record):
// ns/op is per message over all connections; p50/p99 are ACK latencies.
func BenchmarkCommitAck(b *testing.B) {
	for _, conns := range []int{1, 32} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			topo := streams.DefaultOptions()
			topo.IngestMaxBytes = 8 << 30
			clients := benchClients(b, topo, conns)
			var next atomic.Int64
			lat := make([][]time.Duration, conns)
			var wg sync.WaitGroup
			b.ResetTimer()
			for k, c := range clients {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						t0 := time.Now()
						if _, err := c.Send(context.Background(), benchMsg(k, int(i))); err != nil {
							b.Error(err)
							return
						}
						lat[k] = append(lat[k], time.Since(t0))
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			all := slices.Concat(lat...)
			slices.Sort(all)
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			}
		})
	}
}

// BenchmarkSteady2000 paces messages at 2,000/s over 8 connections and
// reports ACK latency: run it with -benchtime 10000x (five seconds).
func BenchmarkSteady2000(b *testing.B) {
	const rate, conns = 2000, 8
	clients := benchClients(b, streams.DefaultOptions(), conns)
	work := make(chan int, conns)
	lat := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	for k, c := range clients {
		wg.Go(func() {
			for i := range work {
				t0 := time.Now()
				if _, err := c.Send(context.Background(), benchMsg(k, i)); err != nil {
					b.Error(err)
					return
				}
				lat[k] = append(lat[k], time.Since(t0))
			}
		})
	}
	b.ResetTimer()
	t0 := time.Now()
	for i := range b.N {
		// An absolute schedule: a late message is sent at once, so the
		// average rate holds.
		if d := time.Until(t0.Add(time.Duration(i) * time.Second / rate)); d > 0 {
			time.Sleep(d)
		}
		work <- i
	}
	close(work)
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(all[len(all)-1].Microseconds()), "max-µs")
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	}
}
