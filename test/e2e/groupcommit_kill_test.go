package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
)

// TestKilledMidGroupCommitStoresEachMessageOnce kills `sinew up` (the
// durable default: fsync per write, group commit on) with SIGKILL while 32
// senders keep groups of messages in flight, then has every sender resend
// the message it got no answer for, as an HL7 sender does. Every message
// answered AA before the kill is stored, no message is stored twice (a
// group whose commit was cut off is either all there or not at all, and a
// resend of one that is there is recognised as a duplicate), and every
// resend is answered AA and stored once.
func TestKilledMidGroupCommitStoresEachMessageOnce(t *testing.T) {
	dir := t.TempDir()
	a := newAddrs(t)
	s, _ := up(t, dir, a)

	const senders = 32
	var mu sync.Mutex
	acked := map[string]bool{}
	pending := make([]string, senders) // the message each sender had no answer for
	msg := func(ctrl string) []byte {
		return []byte("MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126||ADT^A08|" + ctrl + "|P|2.5\rPID|1||E1^^^STMARYS^MR\r")
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for k := range senders {
		wg.Go(func() {
			c, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: a.mllp, Match: hl7.AckMatches, AckTimeout: 5 * time.Second, Retries: -1})
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for i := 0; ctx.Err() == nil; i++ {
				ctrl := fmt.Sprintf("G%02d-%06d", k, i)
				pending[k] = ctrl
				reply, err := c.Send(ctx, msg(ctrl))
				if err != nil {
					return // the server is gone: ctrl is unanswered
				}
				if ack, err := hl7.Parse(reply); err == nil && ack.Get("MSA-1") == hl7.AA {
					mu.Lock()
					acked[ctrl] = true
					mu.Unlock()
				}
				pending[k] = ""
			}
		})
	}
	// Let groups form, and see that they did, before the kill.
	time.Sleep(2 * time.Second)
	groups, grouped := groupCommits(t, a.http)
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.exited
	stop()
	wg.Wait()
	t.Logf("before the kill: %d group commits holding %.0f messages", groups, grouped)
	if groups == 0 || grouped <= float64(groups) {
		t.Errorf("no group of two or more messages was committed (%d groups, %.0f messages): the test did not exercise group commit", groups, grouped)
	}
	if len(acked) < 20 {
		t.Fatalf("only %d messages acknowledged before the kill", len(acked))
	}

	s2, _ := up(t, dir, a)
	c, err := mllp.Dial(context.Background(), mllp.ClientConfig{Addr: a.mllp, Match: hl7.AckMatches, AckTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	resent := 0
	for _, ctrl := range pending {
		if ctrl == "" {
			continue
		}
		reply, err := c.Send(context.Background(), msg(ctrl))
		if err != nil {
			t.Fatalf("resend %s: %v", ctrl, err)
		}
		if ack, err := hl7.Parse(reply); err != nil || ack.Get("MSA-1") != hl7.AA {
			t.Fatalf("resend %s answered %q", ctrl, reply)
		}
		acked[ctrl] = true
		resent++
	}
	c.Close()

	stored := storedControlIDs(t, s2)
	var lost, doubled int
	for ctrl := range acked {
		if stored[ctrl] == 0 {
			lost++
		}
	}
	for ctrl, n := range stored {
		if n > 1 {
			doubled++
			t.Logf("%s stored %d times", ctrl, n)
		}
	}
	t.Logf("%d acknowledged (%d of them resent after the restart), %d stored", len(acked), resent, len(stored))
	if lost > 0 || doubled > 0 {
		t.Errorf("%d acknowledged messages lost, %d stored more than once", lost, doubled)
	}
	s2.stop(t)
}

// groupCommits reads the group commit histogram from /metrics: groups
// committed and the messages in them.
func groupCommits(t *testing.T, httpAddr string) (groups uint64, messages float64) {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		switch {
		case !ok:
		case strings.HasPrefix(name, "sinew_bus_group_commit_messages_count"):
			n, _ := strconv.ParseUint(value, 10, 64)
			groups += n
		case strings.HasPrefix(name, "sinew_bus_group_commit_messages_sum"):
			v, _ := strconv.ParseFloat(value, 64)
			messages += v
		}
	}
	return groups, messages
}
