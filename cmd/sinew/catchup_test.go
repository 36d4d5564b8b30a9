package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/flowstate"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/schedule"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/epicsim"
	"github.com/sinewhq/sinew/services/fusionsim"
	"github.com/sinewhq/sinew/services/loader"
	"github.com/sinewhq/sinew/services/reconciler"
	"github.com/sinewhq/sinew/services/transform"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
	nightlycatchup "github.com/sinewhq/sinew/services/transform/flows/nightly-catchup"
)

// TestNightlyCatchUpRepostsTheLostTransactionOnce is the nightly catch-up
// end to end on real parts: a day of epicsim dispenses goes through
// transform and the loader to fusionsim (HTTP); one accepted transaction
// is removed from Fusion; `sinew flows run nightly-catchup --day D`
// (refused first while another run holds the lease) re-posts exactly that
// one, a second run posts nothing, Fusion keeps one row per transaction,
// and the run shows in `sinew recon report`.
func TestNightlyCatchUpRepostsTheLostTransactionOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end on real services")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	js, fsim, rc, lost, nlines := catchUpDay(ctx, t, 0) // the lost row is seconds old: production trusts so fresh a claim (read lag)
	day := time.Now().UTC().Format(time.DateOnly)

	// Refused while another run holds the lease.
	st, err := schedule.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	rev, _, err := st.Acquire(ctx, nightlycatchup.Flow, "other-replica", "R-other", time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := runFlow(ctx, js, nightlycatchup.Flow, day, "test", false, false, &out); err == nil || !strings.Contains(err.Error(), "run R-other of nightly-catchup holds the lease") {
		t.Fatalf("lease held: want a refusal, got %v\n%s", err, out.String())
	}
	if err := st.Release(ctx, nightlycatchup.Flow, rev); err != nil {
		t.Fatal(err)
	}

	// The first run re-posts the lost transaction, once.
	out.Reset()
	if _, err := runFlow(ctx, js, nightlycatchup.Flow, day, "test", false, false, &out); err != nil {
		t.Fatalf("first run: %v\n%s", err, out.String())
	}
	t.Logf("first run:\n%s", out.String())
	progress := strings.Split(strings.TrimSpace(out.String()), "\n")
	final := progress[len(progress)-1]
	if !strings.HasPrefix(progress[0], "waiting for the flow's scheduler") || !strings.Contains(final, "nightly-catchup run ") ||
		!strings.Contains(final, " succeeded") || !strings.Contains(final, "inventory willow-inventory "+day+": succeeded") {
		t.Fatalf("first run's progress:\n%s", out.String())
	}
	willow := stepCounts(t, final, "willow-inventory")
	if willow["missing"] != 1 || willow["resent"] != 1 || willow["posted"] != 1 || willow["still_missing"] != 0 {
		t.Fatalf("willow-inventory step %v, want missing=resent=posted=1\n%s", willow, final)
	}
	for _, f := range []string{"optime-materials", "beaker-inventory"} {
		if c := stepCounts(t, final, f); c["missing"] != 0 || c["resent"] != 0 {
			t.Fatalf("%s step %v: nothing of it was lost\n%s", f, c, final)
		}
	}
	oneRowEach(t, fsim, nlines, lost)
	if err := rc.ReconcileCheck(ctx, nightlycatchup.Flow, time.Now().UTC().Truncate(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	rep, stderr, err := runReport(t, js, nightlycatchup.Flow, "", false)
	if err != nil || !strings.Contains(rep, ": PASS") || !strings.Contains(rep, "1 missing, 1 re-posted once, 0 still missing") {
		t.Fatalf("recon report after the first run: %v\n%s%s", err, rep, stderr)
	}
	t.Logf("recon report:\n%s", rep)

	// The second run (--json) finds nothing missing and posts nothing.
	out.Reset()
	if _, err := runFlow(ctx, js, nightlycatchup.Flow, day, "test", false, true, &out); err != nil {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
	var last struct {
		Run      string         `json:"run"`
		Progress string         `json:"progress"`
		Record   *schedule.Run  `json:"record"`
		Extra    map[string]any `json:"-"`
	}
	jsonLines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for _, l := range jsonLines {
		if err := json.Unmarshal([]byte(l), &last); err != nil || last.Run == "" || last.Progress == "" {
			t.Fatalf("--json line %q: %v", l, err)
		}
	}
	r := last.Record
	if r == nil || r.ID != last.Run || r.Outcome != schedule.Succeeded || r.Params["day"] != day || len(r.Steps) != 3 {
		t.Fatalf("second run's record: %+v", r)
	}
	for _, s := range r.Steps {
		if s.State != schedule.Succeeded || s.Counts["missing"] != 0 || s.Counts["resent"] != 0 || s.Counts["source"] == 0 {
			t.Fatalf("second run, step %+v", s)
		}
	}
	oneRowEach(t, fsim, nlines, lost)
	if err := rc.ReconcileCheck(ctx, nightlycatchup.Flow, time.Now().UTC().Truncate(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	rep, stderr, err = runReport(t, js, nightlycatchup.Flow, "", false)
	if err != nil || !strings.Contains(rep, "run/"+r.ID) || !strings.Contains(rep, "0 missing, 0 re-posted once") {
		t.Fatalf("recon report after the second run: %v\n%s%s", err, rep, stderr)
	}
}

// catchUpDay starts NATS, transform (with the flow's scheduler), the
// loader (trusting done claims for trust) and the reconciler against
// fusionsim, sends a day of epicsim traffic, waits for every inventory
// command's result and removes one accepted Willow dispense from Fusion:
// the lost line and how many lines Fusion had.
func catchUpDay(ctx context.Context, t *testing.T, trust time.Duration) (jetstream.JetStream, *fusionsim.Server, *reconciler.Service, fusionsim.SourceLine, int) {
	t.Helper()
	inv, err := flows.Load("../../flows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	opts := inv.Topology(streams.DefaultOptions())
	opts.RetryBase, opts.LoadRetryBase = 20*time.Millisecond, 20*time.Millisecond
	_, nc, js := natstest.StartWithTopology(t, opts)
	fst, err := flowstate.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fst.Sync(ctx, inv); err != nil {
		t.Fatal(err)
	}
	newBus := func(name string) *bus.Bus {
		b, err := bus.New(nc, bus.Config{}, bus.Options{Service: name, Logger: zerolog.Nop(), AuditSecret: []byte("test-secret")})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sc := fusionsim.DefaultSimConfig()
	sc.Step = 2 * time.Millisecond
	fsim, err := fusionsim.NewServer(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fsim.Close)
	fusionSrv := httptest.NewServer(fsim.Handler())
	t.Cleanup(fusionSrv.Close)

	lc := loader.DefaultConfig()
	lc.Topology, lc.FlowsFile, lc.Fusion.BaseURL, lc.CallbackAddr, lc.HTTPAddr = opts, "../../flows.yaml", fusionSrv.URL, "", ""
	lc.PollInterval, lc.MaxPollInterval = 5*time.Millisecond, 50*time.Millisecond
	lc.CatchUpTrust = trust
	ld, err := loader.New(lc, newBus("loader"))
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, ld)
	tc := transform.DefaultConfig()
	tc.Topology, tc.FlowsFile, tc.Crosswalk, tc.Chart, tc.HTTPAddr = opts, "../../flows.yaml", "", "", ""
	tc.ItemCrosswalk, tc.DepartmentCrosswalk = "../../deploy/demo/items.csv", "../../deploy/demo/departments.csv"
	tc.Fusion = lc.Fusion // the flow's scheduler and its read of Fusion
	tr, err := transform.New(tc, newBus("transform"))
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, tr)
	rcfg := reconciler.DefaultConfig()
	rcfg.Topology, rcfg.FlowsFile, rcfg.Fusion.BaseURL, rcfg.HTTPAddr = opts, "../../flows.yaml", fusionSrv.URL, ""
	rcfg.InventoryEvery, rcfg.OnhandEvery, rcfg.InventoryGrace = 0, 0, 0
	rc, err := reconciler.New(rcfg, newBus("reconciler"))
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, rc)

	// A day of dispenses, case carts and reagents, every one answered.
	hl7In := newBus("ingest")
	gen := epicsim.NewGenerator(7, "STMARYS")
	for range 80 {
		raw, _ := gen.Next(time.Now())
		ev, m, err := hl7flow.Event(raw, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		flow := map[string]string{"WILLOW": "willow-inventory", "OPTIME": "optime-materials", "BEAKER": "beaker-inventory"}[m.SendingApplication()]
		subject := streams.HL7Subject(m.SendingFacility(), m.Type(), m.Event())
		if flow != "" {
			subject = streams.HL7FlowSubject(flow, m.SendingFacility(), m.Type(), m.Event())
		}
		if _, err := hl7In.Publish(ctx, subject, ev.Envelope.IdempotencyKey, ev); err != nil {
			t.Fatal(err)
		}
	}
	commanded := settleInventory(ctx, t, js)
	lines := fsim.InventoryLines()
	var lost *fusionsim.SourceLine
	for _, l := range lines {
		if l.SourceCode == "EPIC-WILLOW" && l.Processed == 1 {
			lost = &l.SourceLine
			break
		}
	}
	if lost == nil {
		t.Fatalf("no accepted Willow dispense among %d commands, %d Fusion lines", commanded, len(lines))
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, fmt.Sprintf("%s/sim/inventory/lines?SourceCode=%s&SourceHeaderId=%d&SourceLineId=%d",
		fusionSrv.URL, lost.SourceCode, lost.SourceHeaderID, lost.SourceLineID), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("remove a line from fusionsim: %v %v", resp, err)
	}
	resp.Body.Close()
	if n := len(fsim.InventoryLines()); n != len(lines)-1 {
		t.Fatalf("fusionsim has %d lines after removing one of %d", n, len(lines))
	}
	return js, fsim, rc, *lost, len(lines)
}

// settleInventory waits until every inventory command on FUSION_CMD has
// the loader's result and returns how many there are.
func settleInventory(ctx context.Context, t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	for {
		want := map[string]bool{}
		for _, f := range []string{"willow-inventory", "optime-materials", "beaker-inventory"} {
			if err := streams.Scan(ctx, js, streams.FusionCmd, streams.FusionCmdSubject(f, "inventory"), time.Time{}, func(m jetstream.Msg) error {
				var c sinewv1.InventoryTransaction
				if proto.Unmarshal(m.Data(), &c) == nil {
					want[c.GetEnvelope().GetIdempotencyKey()] = true
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		answered := 0
		if err := streams.Scan(ctx, js, streams.Results, "result.>", time.Time{}, func(m jetstream.Msg) error {
			var r sinewv1.LoadResult
			if proto.Unmarshal(m.Data(), &r) == nil && want[r.GetEnvelope().GetIdempotencyKey()] {
				answered++
				want[r.GetEnvelope().GetIdempotencyKey()] = false
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(want) > 0 && answered == len(want) {
			return len(want)
		}
		if ctx.Err() != nil {
			t.Fatalf("%d inventory commands, %d answered", len(want), answered)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stepCounts parses the counts of flow's step from a progress line.
func stepCounts(t *testing.T, line, flow string) map[string]int64 {
	t.Helper()
	for _, part := range strings.Split(line, " | ") {
		if !strings.HasPrefix(part, "inventory "+flow+" ") {
			continue
		}
		out := map[string]int64{}
		for _, f := range strings.Fields(part) {
			var k string
			var v int64
			if i := strings.IndexByte(f, '='); i > 0 {
				k = f[:i]
				if _, err := fmt.Sscan(f[i+1:], &v); err == nil {
					out[k] = v
				}
			}
		}
		return out
	}
	t.Fatalf("no step of %s in %q", flow, line)
	return nil
}

// oneRowEach checks Fusion has every line back, each exactly once.
func oneRowEach(t *testing.T, fsim *fusionsim.Server, want int, lost fusionsim.SourceLine) {
	t.Helper()
	lines := fsim.InventoryLines()
	if len(lines) != want {
		t.Fatalf("fusionsim has %d lines, want %d", len(lines), want)
	}
	if d := fsim.InventoryDuplicates(); len(d) > 0 {
		t.Fatalf("doubled in Fusion: %+v", d)
	}
	for _, l := range lines {
		if l.SourceLine == lost && l.Rows == 1 && l.Processed == 1 {
			return
		}
	}
	t.Fatalf("the lost line %+v is not back in Fusion once", lost)
}

// TestNightlyCatchUpTrustsAFreshClaim: a transaction posted minutes ago
// and not readable in Fusion is read lag, not loss: the loader trusts its
// claim and does not post it again, and the run fails at once (not after
// the result wait) with the transaction still missing, a variance in
// `sinew recon report`.
func TestNightlyCatchUpTrustsAFreshClaim(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end on real services")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	js, fsim, rc, lost, nlines := catchUpDay(ctx, t, 15*time.Minute)
	day := time.Now().UTC().Format(time.DateOnly)
	var out bytes.Buffer
	began := time.Now()
	_, err := runFlow(ctx, js, nightlycatchup.Flow, day, "test", false, false, &out)
	if err == nil || !strings.Contains(err.Error(), "willow-inventory: 1 of 1 missing transactions of "+day+" still not in Fusion") {
		t.Fatalf("want the run failed with one still missing, got %v\n%s", err, out.String())
	}
	if d := time.Since(began); d > time.Minute {
		t.Errorf("the run took %v: the loader's answer was not seen", d)
	}
	progress := strings.Split(strings.TrimSpace(out.String()), "\n")
	final := progress[len(progress)-1]
	if c := stepCounts(t, final, "willow-inventory"); c["resent"] != 1 || c["unsettled"] != 0 || c["posted"] != 0 || c["still_missing"] != 1 ||
		!strings.Contains(final, "inventory willow-inventory "+day+": failed") || !strings.Contains(final, "inventory beaker-inventory "+day+": succeeded") {
		t.Fatalf("progress:\n%s", out.String())
	}
	if n := len(fsim.InventoryLines()); n != nlines-1 {
		t.Fatalf("fusionsim has %d lines, want %d (nothing re-posted)", n, nlines-1)
	}
	if d := fsim.InventoryDuplicates(); len(d) > 0 {
		t.Fatalf("doubled in Fusion: %+v", d)
	}
	for _, l := range fsim.InventoryLines() {
		if l.SourceLine == lost {
			t.Fatalf("the lost line was posted again: %+v", l)
		}
	}
	if err := rc.ReconcileCheck(ctx, nightlycatchup.Flow, time.Now().UTC().Truncate(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	rep, stderr, err := runReport(t, js, nightlycatchup.Flow, "", false)
	if !errors.Is(err, exitError(1)) || !strings.Contains(rep, "1 missing, 0 re-posted once, 1 still missing") {
		t.Fatalf("recon report: %v\n%s%s", err, rep, stderr)
	}
	t.Logf("recon report:\n%s", rep)
}
