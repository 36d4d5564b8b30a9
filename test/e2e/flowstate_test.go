package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/pkg/streams"
)

// sendDispenses sends n Willow dispenses (prescription numbers prefix+i)
// over conns MLLP connections and expects each to be acknowledged AA.
func sendDispenses(t testing.TB, addr string, n, conns int, prefix string) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	for c := range conns {
		wg.Go(func() {
			cl, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: addr, Match: hl7.AckMatches, AckTimeout: 10 * time.Second, Retries: 5, RetryDelay: 200 * time.Millisecond})
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			for i := c; i < n; i += conns {
				ack, err := cl.Send(ctx, dispense(fmt.Sprintf("%s%08d", prefix, i)))
				if err != nil {
					t.Error(err)
					return
				}
				if a, err := hl7.Parse(ack); err != nil || a.Get("MSA-1") != "AA" {
					t.Errorf("dispense %d answered %q", i, ack)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// loaderPending is how many commands of flow wait for its own loader
// consumer (loader-fusion-<flow>) on FUSION_CMD.
func loaderPending(t *testing.T, s *system, flow string) uint64 {
	t.Helper()
	c, err := s.js(t).Consumer(context.Background(), streams.FusionCmd, streams.LoaderFusionFlow(flow))
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.PauseUntil == nil || !info.Config.PauseUntil.After(time.Now()) {
		t.Fatalf("%s not paused: %+v", info.Name, info.Config.PauseUntil)
	}
	return info.NumPending
}

// flowRow is a line of `sinew flows --json`.
type flowRow struct {
	Flow     string `json:"flow"`
	State    string `json:"state"`
	Held     bool   `json:"held"`
	Backlog  uint64 `json:"backlog"`
	InFlight int    `json:"in_flight"`
}

func (s *system) flows(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return s.cli(t, append(append([]string{"flows"}, args...), "--flows", filepath.Join(repoRoot(t), "flows.yaml"))...)
}

func (s *system) flowRow(t *testing.T, id string) flowRow {
	t.Helper()
	out, err := s.flows(t, "--json", "--sample", "10ms")
	if err != nil {
		t.Fatalf("sinew flows: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r flowRow
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("sinew flows --json: %v: %s", err, line)
		}
		if r.Flow == id {
			return r
		}
	}
	t.Fatalf("sinew flows lists no %s:\n%s", id, out)
	return flowRow{}
}

// inventoryRefs counts fusionsim's inventory rows per transaction reference.
func inventoryRefs(t *testing.T, f *fusionProc) map[string]int {
	var rows []struct{ TransactionReference string }
	f.get(t, "/sim/inventory", &rows)
	m := make(map[string]int, len(rows))
	for _, r := range rows {
		m[r.TransactionReference]++
	}
	return m
}

// TestStagedFlowKeepsInputAndActivationDrainsExactlyOnce is the cutover of
// an HL7 flow: willow-inventory is staged, 10,000 dispenses arrive and are
// acknowledged, none reaches Fusion and all wait in HL7_IN; a restart of
// sinew up keeps the backlog and the state; activation drains it; a pause
// mid-drain stops posting within 5 s; resuming finishes with every
// dispense in Fusion exactly once. $SINEW_FLOWS_E2E_N sends another number.
func TestStagedFlowKeepsInputAndActivationDrainsExactlyOnce(t *testing.T) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("SINEW_FLOWS_E2E_N")); err == nil && v > 0 {
		n = v
	}
	const flow = "willow-inventory"
	fusion := startFusion(t, "-step", "50ms")
	dir := t.TempDir()
	a := newAddrs(t)
	env := append([]string{"SINEW_RECONCILER_INVENTORY_EVERY=0s"}, glEnv...)
	s, _ := upWith(t, dir, a, []string{"--fusion-url", fusion.url}, env)

	if out, err := s.flows(t, "stage", flow); err == nil {
		t.Fatalf("stage without --reason succeeded:\n%s", out)
	}
	if out, err := s.flows(t, "stage", flow, "--reason", "cutover rehearsal"); err != nil {
		t.Fatalf("flows stage: %v\n%s", err, out)
	}
	start := time.Now()
	sendDispenses(t, a.mllp, n, 8, "CUT")
	t.Logf("%d dispenses acknowledged in %v", n, time.Since(start).Round(time.Millisecond))

	waitFor(t, "every dispense kept for the flow", 30*time.Second, func() (bool, string) {
		r := s.flowRow(t, flow)
		return r.State == "staged" && r.Held && r.Backlog == uint64(n), fmt.Sprintf("%+v", r)
	})
	time.Sleep(2 * time.Second)
	if c := fusion.count(t); c != 0 {
		t.Fatalf("staged flow posted %d rows to Fusion", c)
	}

	// A restart keeps the backlog and the state.
	s.stop(t)
	s, _ = upWith(t, dir, a, []string{"--fusion-url", fusion.url}, env)
	if r := s.flowRow(t, flow); r.State != "staged" || r.Backlog != uint64(n) {
		t.Fatalf("after a restart: %+v, want staged with %d waiting", r, n)
	}
	time.Sleep(2 * time.Second)
	if c := fusion.count(t); c != 0 {
		t.Fatalf("staged flow posted %d rows to Fusion after a restart", c)
	}

	// Activate, pause mid-drain: posting stops within 5 s.
	if out, err := s.flows(t, "activate", flow, "--reason", "cutover", "--wait=false"); err != nil {
		t.Fatalf("flows activate: %v\n%s", err, out)
	}
	drainStart := time.Now()
	waitFor(t, "a fifth in Fusion", 120*time.Second, func() (bool, string) {
		c := fusion.count(t)
		return c >= n/5, fmt.Sprint(c, " rows")
	})
	out, err := s.flows(t, "pause", flow, "--reason", "checking the first rows")
	if err != nil {
		t.Fatalf("flows pause: %v\n%s", err, out)
	}
	paused := time.Now()
	time.Sleep(time.Until(paused.Add(5 * time.Second)))
	at5 := fusion.count(t)
	time.Sleep(3 * time.Second)
	if at8 := fusion.count(t); at8 != at5 || at5 >= n {
		t.Fatalf("paused: %d rows 5 s after the pause, %d 3 s later (of %d)", at5, at8, n)
	}
	// Nothing lost while paused: every dispense is in Fusion or held, its
	// message in HL7_IN or its command in FUSION_CMD (the flow's loader
	// consumer is paused too, so commands mapped before the pause wait).
	if r := s.flowRow(t, flow); r.State != "paused" || r.InFlight != 0 || uint64(at5)+r.Backlog != uint64(n) {
		t.Fatalf("paused: %d in Fusion and %+v held, want %d in all", at5, r, n)
	}
	held := loaderPending(t, s, flow)
	t.Logf("paused with %d of %d in Fusion, %d commands held on FUSION_CMD (%s)", at5, n, held, strings.TrimSpace(out))

	out, err = s.flows(t, "activate", flow, "--reason", "first rows checked", "--json", "--every", "500ms")
	if err != nil {
		t.Fatalf("flows activate: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var last struct {
		Event string  `json:"event"`
		Rate  float64 `json:"rate_per_sec"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Event != "drained" {
		t.Fatalf("activate --json ended with %q (%v)", lines[len(lines)-1], err)
	}
	waitFor(t, "every dispense in Fusion", 120*time.Second, func() (bool, string) {
		c := fusion.count(t)
		return c >= n, fmt.Sprint(c, " rows")
	})
	drained := time.Since(drainStart)
	time.Sleep(2 * time.Second) // anything doubled would land now
	refs := inventoryRefs(t, fusion)
	missing, doubled := 0, 0
	for i := range n {
		switch refs[fmt.Sprintf("CUT%08d", i)] {
		case 0:
			missing++
		case 1:
		default:
			doubled++
		}
	}
	if missing > 0 || doubled > 0 || len(refs) != n {
		t.Fatalf("Fusion holds %d references: %d of %d missing, %d doubled", len(refs), missing, n, doubled)
	}
	t.Logf("%d dispenses in Fusion exactly once; drain with a pause took %v (last activate reported %.0f msg/s)", n, drained.Round(time.Millisecond), last.Rate)
	s.stop(t)
}
