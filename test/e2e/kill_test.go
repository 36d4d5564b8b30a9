package e2e

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
)

// TestKilledMidTrafficLosesNothingAcknowledged kills `sinew up` with
// SIGKILL while senders are mid-stream, restarts it on the same data dir,
// and checks that every message that was answered AA is in HL7_IN exactly
// once: commit before acknowledge, proven by a crash rather than argued.
func TestKilledMidTrafficLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	a := newAddrs(t)
	s, _ := up(t, dir, a)

	const senders = 4
	var mu sync.Mutex
	acked := map[string]bool{}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for k := range senders {
		wg.Go(func() {
			c, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: a.mllp, Match: hl7.AckMatches, AckTimeout: 2 * time.Second, Retries: -1})
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for i := 0; ctx.Err() == nil; i++ {
				ctrl := fmt.Sprintf("K%d-%06d", k, i)
				msg := "MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126||ADT^A08|" + ctrl + "|P|2.5\rPID|1||E1^^^STMARYS^MR\r"
				reply, err := c.Send(ctx, []byte(msg))
				if err != nil {
					return // the server is gone
				}
				if ack, err := hl7.Parse(reply); err == nil && ack.Get("MSA-1") == hl7.AA {
					mu.Lock()
					acked[ctrl] = true
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(2 * time.Second)
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.exited
	stop()
	wg.Wait()
	if len(acked) < 20 {
		t.Fatalf("only %d messages acknowledged before the kill", len(acked))
	}

	s2, _ := up(t, dir, a)
	stored := storedControlIDs(t, s2)
	var lost, doubled int
	for ctrl := range acked {
		switch stored[ctrl] {
		case 0:
			lost++
		case 1:
		default:
			doubled++
		}
	}
	t.Logf("%d acknowledged before SIGKILL, %d stored after restart", len(acked), len(stored))
	if lost > 0 || doubled > 0 {
		t.Errorf("%d acknowledged messages lost, %d stored twice", lost, doubled)
	}
	s2.stop(t)
}

// storedControlIDs counts the messages in HL7_IN by control id.
func storedControlIDs(t *testing.T, s *system) map[string]int {
	t.Helper()
	st, err := s.js(t).Stream(context.Background(), "HL7_IN")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		var ev sinewv1.Hl7Received
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		stored[ev.ControlId]++
	}
	return stored
}
