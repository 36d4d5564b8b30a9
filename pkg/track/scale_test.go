package track_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/track"
)

// TestLookupAtScale fills TRACK with $SINEW_TRACK_SCALE index records
// (five hops per identifier, interleaved as a busy day interleaves them)
// and times 1,000 lookups of random identifiers. Skipped unless set:
//
//	SINEW_TRACK_SCALE=1000000 go test -run TestLookupAtScale -v -timeout 60m ./pkg/track
func TestLookupAtScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SINEW_TRACK_SCALE"))
	if n <= 0 {
		t.Skip("set SINEW_TRACK_SCALE=N (index records) to measure lookups over N records")
	}
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx := context.Background()
	const hopsPer = 5
	ids := n / hopsPer
	body, _ := json.Marshal(track.Hop{Kind: "control_id", At: time.Now(), Flow: "willow-inventory", Hop: "transform", Outcome: "ok",
		Subject: "hl7.in.WILLOW.RDS.O13.willow-inventory", Stream: "HL7_IN", StreamSeq: 123456, EventID: "01J0000000000000000000000",
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Detail: "delivery 1"})
	t0 := time.Now()
	// A window of 64 messages in flight: their hops interleave with the
	// hops of the 63 around them.
	const window = 64
	for base := 0; base < ids; base += window {
		for range hopsPer {
			for id := base; id < min(base+window, ids); id++ {
				m := &nats.Msg{Subject: track.Subject("MSG" + strconv.Itoa(id)), Data: body}
				if _, err := js.PublishMsgAsync(m); err != nil {
					t.Fatal(err)
				}
			}
		}
		if base%(window*8) == 0 {
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(5 * time.Minute):
				t.Fatal("publish stalled")
			}
		}
	}
	<-js.PublishAsyncComplete()
	fill := time.Since(t0)
	s, _ := js.Stream(ctx, streams.Track)
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("filled %d records (%d identifiers, %d bytes) in %s", info.State.Msgs, ids, info.State.Bytes, fill.Round(time.Second))
	var lat []time.Duration
	for range 1000 {
		id := "MSG" + strconv.Itoa(rand.IntN(ids))
		t1 := time.Now()
		hops, err := track.Lookup(ctx, js, id)
		lat = append(lat, time.Since(t1))
		if err != nil || len(hops) != hopsPer {
			t.Fatalf("%s: %d hops, %v", id, len(hops), err)
		}
	}
	t1 := time.Now()
	if _, err := track.Lookup(ctx, js, "NO-SUCH-ID"); err == nil {
		t.Fatal("found a missing id")
	}
	miss := time.Since(t1)
	slices.Sort(lat)
	t.Logf("lookup over %d records: p50 %s, p99 %s, max %s; a miss %s", info.State.Msgs,
		lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1], miss)
	fmt.Fprintf(os.Stderr, "RESULT records=%d p50=%s p99=%s max=%s miss=%s\n", info.State.Msgs, lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1], miss)
}
