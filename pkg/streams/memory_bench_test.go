package streams_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

// BenchmarkServerStateMemory measures what the embedded nats-server keeps
// in memory per message, by kind of state, on a file stream: a message id
// inside the duplicate window, a subject of its own (the per-subject
// index every file stream keeps for its whole life: the idempotency keys,
// and the identifiers of the former TRACK stream), a KV key, an idempotency
// claim once its TTL has passed, and neither (the baseline). Heap in use
// after a GC, once the block caches have expired, over
// SINEW_BENCH_STATE_N messages (100,000 by default); run it once:
//
//	go test -run '^$' -bench ServerStateMemory -benchtime 1x ./pkg/streams/
func BenchmarkServerStateMemory(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("SINEW_BENCH_STATE_N")); err == nil && v > 0 {
		n = v
	}
	body := make([]byte, 200)
	key := func(i int) string {
		h := sha256.Sum256([]byte(strconv.Itoa(i)))
		return hex.EncodeToString(h[:16]) // the width of track.Key and of a hashed claim key
	}
	kinds := []struct {
		name string
		msg  func(i int) *nats.Msg
	}{
		{"baseline", func(int) *nats.Msg { return &nats.Msg{Subject: "state.one", Data: body} }},
		{"window-id", func(i int) *nats.Msg {
			m := &nats.Msg{Subject: "state.one", Data: body, Header: nats.Header{}}
			m.Header.Set(jetstream.MsgIDHeader, "track:"+strconv.Itoa(1_000_000+i)+":0:"+key(i))
			return m
		}},
		{"subject", func(i int) *nats.Msg { return &nats.Msg{Subject: "state." + key(i), Data: body} }},
		{"kv-key", func(i int) *nats.Msg {
			return &nats.Msg{Subject: "$KV.state.willow-inventory." + key(i), Data: body}
		}},
		// An idempotency claim as the loader writes it (Nats-TTL, here 1 s
		// for claim_ttl), in the bucket as Ensure makes it, measured once
		// expired: what a key leaves after its TTL.
		{"claim-expired", func(i int) *nats.Msg {
			m := &nats.Msg{Subject: "$KV." + streams.IdempotencyBucket(0) + ".willow-inventory." + key(i), Data: body, Header: nats.Header{}}
			m.Header.Set(jetstream.MsgTTLHeader, "1s")
			return m
		}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				srv := natstest.Start(b)
				nc, js := srv.Connect(b)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				if k.name == "claim-expired" {
					top := streams.Topology{KV: []jetstream.KeyValueConfig{{Bucket: streams.IdempotencyBucket(0), History: 1, Storage: jetstream.FileStorage}}}
					if err := top.Ensure(ctx, js); err != nil {
						b.Fatal(err)
					}
				} else if k.name == "kv-key" {
					if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "state", History: 1, Storage: jetstream.FileStorage}); err != nil {
						b.Fatal(err)
					}
				} else if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "STATE", Subjects: []string{"state.>"},
					Storage: jetstream.FileStorage, Duplicates: time.Hour}); err != nil {
					b.Fatal(err)
				}
				before := settledHeap()
				for i := range n {
					if _, err := js.PublishMsgAsync(k.msg(i)); err != nil {
						b.Fatal(err)
					}
					if i%4096 == 4095 {
						<-js.PublishAsyncComplete()
					}
				}
				<-js.PublishAsyncComplete()
				after := settledHeap()
				b.ReportMetric(float64(int64(after)-int64(before))/float64(n), "heap-B/msg")
				if k.name == "claim-expired" {
					// As many new claims again: what stays after the first
					// round is the peak's (maps sized for it), not more a key.
					for i := range n {
						if _, err := js.PublishMsgAsync(k.msg(n + i)); err != nil {
							b.Fatal(err)
						}
						if i%4096 == 4095 {
							<-js.PublishAsyncComplete()
						}
					}
					<-js.PublishAsyncComplete()
					b.ReportMetric(float64(int64(settledHeap())-int64(after))/float64(n), "2nd-round-heap-B/msg")
				}
				var subjects uint64
				for name := range js.StreamNames(ctx).Name() {
					if s, err := js.Stream(ctx, name); err == nil {
						subjects += s.CachedInfo().State.NumSubjects
					}
				}
				b.ReportMetric(float64(subjects), "subjects-left")
				cancel()
				nc.Close()
				srv.Shutdown()
			}
		})
	}
}

// settledHeap is the heap in use once the file store's block caches have
// expired (they hold recent messages for a few seconds) and a GC has run.
func settledHeap() uint64 {
	time.Sleep(6 * time.Second)
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
