package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/services/epicsim"
)

// inventoryFlows are the flows a synthetic day's HL7 traffic feeds.
var inventoryFlows = []string{"willow-inventory", "optime-materials", "beaker-inventory"}

// sendDay sends n messages of epicsim's synthetic day over MLLP and
// expects each to be acknowledged AA.
func sendDay(t *testing.T, addr string, g *epicsim.Generator, n int) {
	t.Helper()
	ctx := context.Background()
	c, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: addr, Match: hl7.AckMatches, AckTimeout: 5 * time.Second, Retries: 10, RetryDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range n {
		msg, typ := g.Next(time.Now())
		ack, err := c.Send(ctx, msg)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		a, err := hl7.Parse(ack)
		if err != nil || a.Get("MSA-1") != "AA" {
			t.Fatalf("%s answered %q", typ, ack)
		}
	}
}

type stagedLine struct {
	SourceCode              string
	SourceHeaderID          int64 `json:"SourceHeaderId,string"` // ids are strings on /sim/
	SourceLineID            int64 `json:"SourceLineId,string"`
	Rows, Processed, Errors int
}

// reconPasses reports whether every inventory flow's latest verdict for
// today is pass, with the report's text.
func reconPasses(t *testing.T, s *system) (bool, string) {
	var all strings.Builder
	ok := true
	for _, f := range inventoryFlows {
		out, err := s.cli(t, "recon", "report", "--flow", f, "--batch", time.Now().UTC().Format(time.DateOnly))
		all.WriteString(out)
		if err != nil {
			ok = false
		}
	}
	return ok, all.String()
}

// awayFromMidnight waits out the end of the UTC day when less than need
// is left of it. The test's checks reconcile "today", and its synthetic
// day stamped with the clock would otherwise be split over two days.
func awayFromMidnight(t *testing.T, need time.Duration) {
	t.Helper()
	now := time.Now().UTC()
	if left := now.Truncate(24 * time.Hour).Add(24 * time.Hour).Sub(now); left < need {
		t.Logf("%v left of the UTC day, less than the %v this test needs: waiting for the next", left.Round(time.Second), need)
		time.Sleep(left + 2*time.Second)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v:\n%s", what, d, detail)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestInventoryFlowsExactlyOnceUnderFaults: a synthetic day of Willow,
// OpTime and Beaker HL7 over MLLP into `sinew up`, loaded into fusionsim
// while it answers 10% 503s, a burst of 429s and 500s after taking the
// row; Sinew is killed (SIGKILL) mid-stream and restarted. Every
// transaction is in Fusion exactly once with its 340B flag and implant
// lot/serial (checked field by field by the reconciliation), unmapped NDCs
// wait in the DLQ and are delivered once the crosswalk is fixed and they
// are replayed, and every flow's day reconciles.
func TestInventoryFlowsExactlyOnceUnderFaults(t *testing.T) {
	awayFromMidnight(t, 8*time.Minute)
	fusion := startFusion(t, "-step", "50ms", "-seed", "3")
	// Every POST (the loader sends transactions in batch requests, items
	// and suppliers on their own) may fail; reads do not.
	fusion.faults(t, `{"http":[
		{"status":500,"after":true,"method":"POST","count":3},
		{"status":429,"retryAfter":"1s","method":"POST","count":5},
		{"status":503,"method":"POST","rate":0.1}
	]}`)
	dir := t.TempDir()
	a := newAddrs(t)
	env := append([]string{"SINEW_RECONCILER_INVENTORY_EVERY=1s"}, glEnv...)
	s, _ := upWith(t, dir, a, []string{"--fusion-url", fusion.url}, env)
	js := s.js(t)

	g := epicsim.NewGenerator(42, "STMARYS")
	g.UnmappedRate = 0.1
	sendDay(t, a.mllp, g, 250)
	// Kill Sinew while the loader is mid-way through the commands.
	waitFor(t, "some results", 30*time.Second, func() (bool, string) {
		n := streamMsgs(t, js, "RESULTS")
		return n >= 20, fmt.Sprint(n, " results")
	})
	cmds, results := streamMsgs(t, js, "FUSION_CMD"), streamMsgs(t, js, "RESULTS")
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.exited
	t.Logf("killed with about %d commands and %d results", cmds, results)
	s, _ = upWith(t, dir, a, []string{"--fusion-url", fusion.url}, env)
	js = s.js(t)
	sendDay(t, a.mllp, g, 150)

	waitFor(t, "every flow reconciled", 120*time.Second, func() (bool, string) { return reconPasses(t, s) })

	// Unmapped NDCs are dead letters; map them and replay.
	var seqs []string
	out, err := s.cli(t, "dlq", "list", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var dl struct {
			Seq    uint64
			Reason string
		}
		if json.Unmarshal([]byte(line), &dl) != nil {
			continue
		}
		if !strings.Contains(dl.Reason, "unmapped item code (source ndc) from RXD-2-1") { // the code itself is never in a text
			t.Errorf("unexpected dead letter: %s", line)
			continue
		}
		seqs = append(seqs, fmt.Sprint(dl.Seq))
	}
	if len(seqs) == 0 {
		t.Fatal("no unmapped NDC was dead-lettered")
	}
	demo, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "demo", "items.csv"))
	if err != nil {
		t.Fatal(err)
	}
	items := filepath.Join(t.TempDir(), "items.csv")
	uoms := filepath.Join(t.TempDir(), "uom.csv")
	if err := os.WriteFile(items, append(demo, []byte("ndc,0000-0000-00,RX-1001,MAIN,,EA,\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(uoms, []byte("epic_uom,fusion_uom,factor\nTAB,EA,1\nmL,EA,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, kf := range [][2]string{{"item", items}, {"uom", uoms}} {
		if out, err := s.cli(t, "crosswalk", "load", "--kind", kf[0], kf[1]); err != nil {
			t.Fatalf("crosswalk load %s: %v\n%s", kf[0], err, out)
		}
	}
	before := fusionRows(t, fusion)
	for _, seq := range seqs {
		if out, err := s.cli(t, "dlq", "replay", seq, "--reason", "NDC 0000-0000-00 mapped"); err != nil {
			t.Fatalf("replay %s: %v\n%s", seq, err, out)
		}
	}
	waitFor(t, "replayed dispenses in Fusion", 60*time.Second, func() (bool, string) {
		n := fusionRows(t, fusion)
		return n >= before+len(seqs), fmt.Sprintf("%d rows, %d before the replay of %d", n, before, len(seqs))
	})
	waitFor(t, "every flow reconciled after the replay", 60*time.Second, func() (bool, string) { return reconPasses(t, s) })

	// Exactly once, and the attributes that must never be lost.
	var dups []json.RawMessage
	fusion.get(t, "/sim/inventory/duplicates", &dups)
	if len(dups) != 0 {
		t.Errorf("transactions posted more than once: %s", dups)
	}
	var rows []struct {
		ItemNumber, LotNumber, SerialNumber string
		Program340B                         bool
	}
	fusion.get(t, "/sim/inventory", &rows)
	var flagged, implants int
	for _, r := range rows {
		if r.Program340B {
			flagged++
		}
		if strings.HasPrefix(r.ItemNumber, "IMP-") && r.LotNumber != "" {
			implants++
		}
	}
	if flagged == 0 || implants == 0 {
		t.Errorf("%d rows: %d with the 340B flag, %d implants with lots", len(rows), flagged, implants)
	}
	_, report := reconPasses(t, s)
	t.Logf("%d transactions in Fusion (%d 340B, %d implants with lot/serial), %d replayed; recon:\n%s", len(rows), flagged, implants, len(seqs), report)
	s.stop(t)
}

func fusionRows(t *testing.T, f *fusionProc) int {
	var lines []stagedLine
	f.get(t, "/sim/inventory/lines", &lines)
	n := 0
	for _, l := range lines {
		n += l.Processed
	}
	return n
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		return 0
	}
	info, err := st.Info(context.Background())
	if err != nil {
		return 0
	}
	return info.State.Msgs
}
