package track

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestLookupAtScale fills an Index with $SINEW_TRACK_SCALE index records
// (five hops per identifier, interleaved as a busy day interleaves them,
// one batch per 256 audit records as the indexer commits) and
// times 1,000 lookups of random identifiers. Skipped unless set:
//
//	SINEW_TRACK_SCALE=1000000 go test -run TestLookupAtScale -v -timeout 60m ./pkg/track
func TestLookupAtScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SINEW_TRACK_SCALE"))
	if n <= 0 {
		t.Skip("set SINEW_TRACK_SCALE=N (index records) to measure lookups over N records")
	}
	idx, err := OpenIndex(t.TempDir(), IndexConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	hop := Hop{Kind: "control_id", At: time.Now(), Flow: "willow-inventory", Hop: "transform", Outcome: "ok",
		Subject: "hl7.in.WILLOW.RDS.O13.willow-inventory", Stream: "HL7_IN", StreamSeq: 123456, EventID: "01J0000000000000000000000",
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Detail: "delivery 1"}
	const hopsPer = 5
	ids := n / hopsPer
	t0 := time.Now()
	// A window of 64 messages in flight: their hops interleave with the
	// hops of the 63 around them; each hop is one audit record.
	const window, perBatch = 64, 256
	seq := uint64(0)
	b := idx.newBatch()
	inBatch := 0
	for base := 0; base < ids; base += window {
		for range hopsPer {
			for id := base; id < min(base+window, ids); id++ {
				seq++
				h := hop
				h.AuditSeq = seq
				if err := b.add(seq, 0, []Entry{{Value: "MSG" + strconv.Itoa(id), Hop: h}}); err != nil {
					t.Fatal(err)
				}
				if inBatch++; inBatch == perBatch {
					if err := b.commit(seq); err != nil {
						t.Fatal(err)
					}
					b, inBatch = idx.newBatch(), 0
				}
			}
		}
	}
	if err := b.commit(seq); err != nil {
		t.Fatal(err)
	}
	fill := time.Since(t0)
	t.Logf("filled %d records (%d identifiers) in %s", seq, ids, fill.Round(time.Second))
	var lat []time.Duration
	for range 1000 {
		id := "MSG" + strconv.Itoa(rand.IntN(ids))
		t1 := time.Now()
		hops, err := idx.LookupValue(id)
		lat = append(lat, time.Since(t1))
		if err != nil || len(hops) != hopsPer {
			t.Fatalf("%s: %d hops, %v", id, len(hops), err)
		}
	}
	t1 := time.Now()
	if _, err := idx.LookupValue("NO-SUCH-ID"); err == nil {
		t.Fatal("found a missing id")
	}
	miss := time.Since(t1)
	slices.Sort(lat)
	t.Logf("lookup over %d records: p50 %s, p99 %s, max %s; a miss %s", seq,
		lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1], miss)
	fmt.Fprintf(os.Stderr, "RESULT records=%d fill=%s p50=%s p99=%s max=%s miss=%s\n", seq, fill.Round(time.Millisecond), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1], miss)
}
