package main

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/decimal"
	"github.com/sinewhq/sinew/pkg/fhir"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/smart"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/epicsim"
	"github.com/sinewhq/sinew/services/fusionsim"
)

func TestParseFaultsNamesFusionsimFaultsAndTheKill(t *testing.T) {
	for _, tc := range []struct {
		spec   string
		fusion []map[string]any
		kill   time.Duration
		err    string
	}{
		{spec: ""},
		{spec: "fusion.5xx=0.1", fusion: []map[string]any{{"status": 503, "rate": 0.1}}},
		{spec: "fusion.429=burst, kill=sinew:30s", fusion: []map[string]any{{"status": 429, "count": 5}}, kill: 30 * time.Second},
		{spec: "fusion.5xx=2", err: "between 0 and 1"},
		{spec: "kill=loader:30s", err: "one process"},
		{spec: "kill=sinew:0s", err: "SERVICE:DURATION"},
		{spec: "drill.lose=0", err: "at least 1"},
		{spec: "drill.duplicate=x", err: "at least 1"},
		{spec: "kill=sinew", err: "SERVICE:DURATION"},
		{spec: "fusion.teapot=1", err: "unknown"},
		{spec: "fusion.5xx", err: "NAME=VALUE"},
		{spec: "epic.missing_encounters=2,epic.uncarted_implants=1,epic.over_consume=BEAKER-CHEM-01:20"},
		{spec: "epic.missing_encounters=0", err: "at least 1"},
		{spec: "epic.over_consume=BEAKER-CHEM-01", err: "DEVICE:PERCENT"},
		{spec: "epic.over_consume=:20", err: "DEVICE:PERCENT"},
	} {
		f, err := parseFaults(tc.spec)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one containing %q", tc.spec, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.spec, err)
		case !reflect.DeepEqual(f.fusion, tc.fusion) || f.killAt != tc.kill || f.killing != (tc.kill > 0):
			t.Errorf("%q: %+v", tc.spec, f)
		}
	}
}

func TestSynthDayRepeatsForASeed(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	a, b := synthDay(7, day, 24*time.Hour, 50, nil), synthDay(7, day, 24*time.Hour, 50, nil)
	for i := range a {
		if string(a[i].raw) != string(b[i].raw) {
			t.Fatalf("message %d differs between two runs of seed 7", i)
		}
	}
	if string(synthDay(8, day, 24*time.Hour, 50, nil)[10].raw) == string(a[10].raw) {
		t.Fatal("seeds 7 and 8 gave the same message")
	}
}

// TestTallyFindsLossDuplicationAndVariance compares three dispenses with
// what Fusion holds: whole, one missing, one doubled, one quantity off.
func TestTallyFindsLossDuplicationAndVariance(t *testing.T) {
	inv := &flows.Inventory{Flows: []flows.Flow{{ID: "willow-inventory", Pattern: "realtime-hl7", Source: "epic.willow", FusionSource: "EPIC-WILLOW"}}}
	msgs := []drillMessage{{app: "WILLOW", rx: "RX1", qty: "2"}, {app: "WILLOW", rx: "RX2", qty: "1"}, {app: "WILLOW", rx: "RX3", qty: "3"}}
	row := func(ref, qty string, line int64) fusionsim.SimStagedRow {
		return fusionsim.SimStagedRow{SourceCode: "EPIC-WILLOW", TransactionReference: ref, TransactionQuantity: decimal.Decimal(qty), SourceHeaderID: line, SourceLineID: line}
	}
	for _, tc := range []struct {
		name    string
		rows    []fusionsim.SimStagedRow
		dlq     int
		verdict string
		lost    int
		dup     int
		varies  bool
	}{
		{"whole", []fusionsim.SimStagedRow{row("RX1", "-2", 1), row("RX2", "-1", 2), row("RX3", "-3", 3)}, 0, "pass", 0, 0, false},
		{"one lost", []fusionsim.SimStagedRow{row("RX1", "-2", 1), row("RX2", "-1", 2)}, 0, "fail", 1, 0, false},
		{"one in the DLQ", []fusionsim.SimStagedRow{row("RX1", "-2", 1), row("RX2", "-1", 2)}, 1, "pass", 0, 0, false},
		{"one doubled", []fusionsim.SimStagedRow{row("RX1", "-2", 1), row("RX2", "-1", 2), row("RX3", "-3", 3), row("RX3", "-3", 3)}, 0, "fail", 0, 1, false},
		{"quantity off", []fusionsim.SimStagedRow{row("RX1", "-2", 1), row("RX2", "-1", 2), row("RX3", "-4", 3)}, 0, "fail", 0, 0, true},
	} {
		d := tallyHL7(inv, &inv.Flows[0], msgs, nil, tc.rows, flowRow{DeadLetters: tc.dlq})
		if d.Verdict != tc.verdict || d.Lost != tc.lost || d.Duplicated != tc.dup || d.Variance != tc.varies || !d.Checked || d.Sent != 3 {
			t.Errorf("%s: %+v", tc.name, d)
		}
	}
}

// TestTallyComparesCasesByRowCount: an OpTime case of three supply lines
// is three rows in Fusion; two is a loss, four distinct an unexplained
// variance.
func TestTallyComparesCasesByRowCount(t *testing.T) {
	inv := &flows.Inventory{Flows: []flows.Flow{{ID: "optime-materials", Pattern: "realtime-hl7", Source: "epic.optime", FusionSource: "EPIC-OPTIME"}}}
	msgs := []drillMessage{{app: "OPTIME", lines: 3}}
	rows := func(n int) []fusionsim.SimStagedRow {
		var out []fusionsim.SimStagedRow
		for i := range n {
			out = append(out, fusionsim.SimStagedRow{SourceCode: "EPIC-OPTIME", SourceHeaderID: 1, SourceLineID: int64(i), TransactionQuantity: decimal.Decimal("-1")})
		}
		return out
	}
	for _, tc := range []struct {
		n       int
		verdict string
		lost    int
		varies  bool
	}{{3, "pass", 0, false}, {2, "fail", 1, false}, {4, "fail", 0, true}} {
		d := tallyHL7(inv, &inv.Flows[0], msgs, nil, rows(tc.n), flowRow{})
		if d.Verdict != tc.verdict || d.Lost != tc.lost || d.Variance != tc.varies || !d.Checked || d.Sent != 3 {
			t.Errorf("%d rows: %+v", tc.n, d)
		}
	}
}

// TestDrillKindsFitTheDemoFlowsBySettings: every flow of the demo
// inventory with a synthetic day finds its kind by pattern and settings,
// and a new flow of a known kind (a copy under another id) does too.
func TestDrillKindsFitTheDemoFlowsBySettings(t *testing.T) {
	inv, err := flows.Load("../../flows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"resolute-gl": "a Resolute journal file", "willow-inventory": "HL7 v2 over MLLP", "optime-materials": "HL7 v2 over MLLP",
		"beaker-inventory": "HL7 v2 over MLLP", "worker-sync": "Fusion-side changes", "supplier-sync": "Fusion-side changes",
		"ap-payment-status": "Fusion-side changes", "formulary-check": "Epic FHIR $export",
		"nightly-catchup": "a manual run of the drill day", "optime-encounters": "Epic's chart of the day (FHIR search)",
		"beaker-expected-use": "Epic's chart of the day (FHIR search)",
	}
	kindOf := func(f *flows.Flow) string {
		for _, k := range drillKinds(nil) {
			if k.fits(f) {
				return k.name()
			}
		}
		return ""
	}
	for _, f := range inv.Flows {
		if got := kindOf(&f); got != want[f.ID] {
			t.Errorf("%s: kind %q, want %q", f.ID, got, want[f.ID])
		}
		renamed := f
		renamed.ID = "new-" + f.ID
		if got := kindOf(&renamed); got != want[f.ID] {
			t.Errorf("%s renamed: kind %q, want %q", f.ID, got, want[f.ID])
		}
	}
}

// TestResoluteTallyFindsLossDuplicationAndVariance compares a seeded
// Resolute file with Fusion's posted journals (served as /sim/batches).
func TestResoluteTallyFindsLossDuplicationAndVariance(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rf, _, err := resoluteDay(1, day, 200, 0)
	if err != nil {
		t.Fatal(err)
	}
	refs := slices.Sorted(maps.Keys(rf.lines))
	f := &flows.Flow{ID: "resolute-gl", Pattern: "batch", GL: &flows.GL{Source: "Epic Resolute"}}
	// Each line's debit: the whole total on the first, 0 on the others.
	batch := func(lines []string, total money.Amount) []fusionsim.SimBatch {
		var jl []fusionsim.SimJeLine
		for i, ref := range lines {
			amt := money.Amount(0)
			if i == 0 {
				amt = total
			}
			jl = append(jl, fusionsim.SimJeLine{Reference21: ref, EnteredDebit: &amt})
		}
		return []fusionsim.SimBatch{{UserJeSourceName: "Epic Resolute", JournalHeaders: []fusionsim.SimJournal{{JournalLines: jl}}}}
	}
	for _, tc := range []struct {
		name      string
		batches   []fusionsim.SimBatch
		dlq       int
		verdict   string
		lost, dup int
		varies    bool
	}{
		{"whole", batch(refs, rf.debits), 0, "pass", 0, 0, false},
		{"one line lost", batch(refs[1:], rf.debits), 0, "fail", 1, 0, false},
		{"the batch in the DLQ", nil, 1, "pass", 0, 0, false},
		{"one line twice", batch(append([]string{refs[0]}, refs...), rf.debits), 0, "fail", 0, 1, false},
		{"amount off", batch(refs, rf.debits+1), 0, "fail", 0, 0, true},
	} {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /sim/batches", func(w http.ResponseWriter, r *http.Request) { _ = json.NewEncoder(w).Encode(tc.batches) })
		mux.HandleFunc("GET /sim/interface", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("[]")) })
		srv := httptest.NewServer(mux)
		k := &resoluteKind{files: map[string]*resoluteFile{"resolute-gl": rf}}
		d, err := k.tally(context.Background(), &drillRun{fusionAddr: strings.TrimPrefix(srv.URL, "http://")}, f, flowRow{DeadLetters: tc.dlq})
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		if d.Verdict != tc.verdict || d.Lost != tc.lost || d.Duplicated != tc.dup || d.Variance != tc.varies || d.Sent != len(refs) {
			t.Errorf("%s: %+v", tc.name, d)
		}
	}
}

// TestFusionSideTallyFindsLossDuplicationAndVariance compares Fusion-side
// changes with what Epic holds, by business key and amount.
func TestFusionSideTallyFindsLossDuplicationAndVariance(t *testing.T) {
	held := map[string]int{}
	amts := map[string]money.Amount{}
	fusionChanges["test.fusion"] = fusionChange{what: "test records", epic: func(*epicsim.ProviderMaster) (map[string]int, map[string]money.Amount) {
		return held, amts
	}}
	defer delete(fusionChanges, "test.fusion")
	f := &flows.Flow{ID: "test-flow", Pattern: "fusion-to-epic", Source: "test.fusion", Target: "epic.test"}
	k := &fusionSideKind{sent: map[string][]string{"test-flow": {"A", "B"}}, amts: map[string]map[string]money.Amount{"test-flow": {"A": 100, "B": 250}}}
	if !k.fits(f) {
		t.Fatal("a fusion-to-epic flow of a known source does not fit")
	}
	for _, tc := range []struct {
		name      string
		held      map[string]int
		amts      map[string]money.Amount
		verdict   string
		lost, dup int
		varies    bool
	}{
		{"whole", map[string]int{"A": 1, "B": 1, "OTHER": 1}, map[string]money.Amount{"A": 100, "B": 250}, "pass", 0, 0, false},
		{"one lost", map[string]int{"A": 1}, map[string]money.Amount{"A": 100}, "fail", 1, 0, false},
		{"one twice", map[string]int{"A": 2, "B": 1}, map[string]money.Amount{"A": 100, "B": 250}, "fail", 0, 1, false},
		{"amount off", map[string]int{"A": 1, "B": 1}, map[string]money.Amount{"A": 100, "B": 251}, "fail", 0, 0, true},
	} {
		clear(held)
		clear(amts)
		maps.Copy(held, tc.held)
		maps.Copy(amts, tc.amts)
		d, err := k.tally(context.Background(), &drillRun{}, f, flowRow{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Verdict != tc.verdict || d.Lost != tc.lost || d.Duplicated != tc.dup || d.Variance != tc.varies || d.Sent != 2 {
			t.Errorf("%s: %+v", tc.name, d)
		}
	}
}

// TestFusionSideTallyCountsEpicChangesFusionLacks: a two-way flow's
// Epic-side change Fusion does not hold is lost.
func TestFusionSideTallyCountsEpicChangesFusionLacks(t *testing.T) {
	fusionNow := map[string]string{"A": "Oncology", "B": "Cardiology"}
	fusionChanges["test.fusion"] = fusionChange{what: "test records",
		epic: func(*epicsim.ProviderMaster) (map[string]int, map[string]money.Amount) {
			return map[string]int{"A": 1, "B": 1}, nil
		},
		answered: func(*drillRun) (map[string]string, error) { return fusionNow, nil }}
	defer delete(fusionChanges, "test.fusion")
	f := &flows.Flow{ID: "test-flow", Pattern: "two-way", Source: "test.fusion", Target: "epic.test"}
	k := &fusionSideKind{sent: map[string][]string{"test-flow": {"A", "B"}}, answers: map[string]map[string]string{"test-flow": {"A": "Oncology", "B": "Pediatrics"}}}
	d, err := k.tally(context.Background(), &drillRun{}, f, flowRow{})
	if err != nil {
		t.Fatal(err)
	}
	if d.EpicChanges != 2 || d.EpicChangesLoaded != 1 || d.Lost != 1 || d.Verdict != "fail" {
		t.Fatalf("%+v", d)
	}
	fusionNow["B"] = "Pediatrics"
	if d, _ = k.tally(context.Background(), &drillRun{}, f, flowRow{}); d.Lost != 0 || d.Verdict != "pass" {
		t.Fatalf("all changes in Fusion: %+v", d)
	}
}

// TestDrillChartIsWhatEpicServes: the chart the drill writes for today is
// what epicsim's FHIR server charts from it (ChartFile) and serves
// to a date search, under the keys the drill expects (case id; accession
// and LOINC), the first epic.missing_encounters cases without one; a
// drill day other than today writes none.
func TestDrillChartIsWhatEpicServes(t *testing.T) {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	msgs := synthDay(1, today, daySpan(today, time.Now()), 200, nil)
	faults, err := parseFaults("epic.missing_encounters=2")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if path, err := writeDrillChart(dir, today.Add(-24*time.Hour), msgs, faults); err != nil || path != "" {
		t.Fatalf("yesterday: %q %v, want no chart", path, err)
	}
	path, err := writeDrillChart(dir, today, msgs, faults)
	if err != nil || path == "" {
		t.Fatalf("today: %q %v", path, err)
	}
	cfg := epicsim.DefaultFHIRConfig()
	cfg.Live, cfg.Volume = true, epicsim.FHIRVolume{Patients: 3, Days: 1}
	key, err := smart.GenerateKey(smart.ES384)
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(smart.JWKSHandler(key))
	defer jwks.Close()
	sim := epicsim.NewFHIRSim(cfg, time.Time{}, nil)
	if _, err := sim.ChartFile(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	sim.SetURL(srv.URL)
	sim.Register(epicsim.FHIRClient{ID: "drill", JWKSURL: jwks.URL})
	ts, err := smart.NewTokenSource(smart.ClientConfig{TokenURL: sim.TokenURL(), ClientID: "drill", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	c := &fhir.Client{Tokens: ts}
	k := &fhirChartKind{records: chartedDay(msgs)}
	for _, typ := range []string{"Encounter", "Observation"} {
		served := map[string]bool{}
		q := url.Values{"date": {"ge" + today.Format(time.RFC3339), "lt" + today.Add(24*time.Hour).Format(time.RFC3339)}, "_count": {"50"}}
		for next := sim.BaseURL() + "/" + typ + "?" + q.Encode(); next != ""; {
			b, err := c.Search(context.Background(), next)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range b.Matches() {
				if key := chartKey(typ, r.Raw); key != "" {
					served[key] = true
				}
			}
			next = b.Next()
		}
		want := k.expected(typ, faults.clinical.MissingEncounters)
		if len(want) == 0 || len(served) != len(want) {
			t.Fatalf("%s: %d served, %d expected", typ, len(served), len(want))
		}
		for _, w := range want {
			if !served[w.key] {
				t.Errorf("%s %s (%s) expected, not served", typ, w.key, w.at)
			}
		}
	}
	if all := len(k.expected("Encounter", 0)); all != len(k.expected("Encounter", 2))+2 {
		t.Errorf("%d cases; missing_encounters=2 should leave two out", all)
	}
}

// TestClarityExtractIsASecondBatchOfTheFlow: a flow reading Clarity
// extracts is sent a second balanced batch as a CSV extract in its
// clarity drop folder, counted with the Resolute file's lines and debits.
func TestClarityExtractIsASecondBatchOfTheFlow(t *testing.T) {
	inv, err := flows.Load("../../flows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f *flows.Flow
	for i := range inv.Flows {
		if inv.Flows[i].Clarity != nil && inv.Flows[i].Resolute != nil {
			f = &inv.Flows[i]
		}
	}
	if f == nil {
		t.Skip("no flow reads Clarity extracts")
	}
	r := &drillRun{seed: 1, day: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), n: 200, dir: t.TempDir()}
	k := &resoluteKind{}
	if err := k.send(context.Background(), r, []*flows.Flow{f}); err != nil {
		t.Fatal(err)
	}
	rf := k.files[f.ID]
	first, _, _ := resoluteDay(1, r.day, 200, 0)
	second, _, _ := resoluteDay(1, r.day, 200, 50)
	if rf.clarity != second.batchID || len(rf.lines) != len(first.lines)+len(second.lines) || rf.debits != first.debits+second.debits {
		t.Fatalf("files %+v", rf)
	}
	b, err := os.ReadFile(filepath.Join(r.dir, "drop", "clarity", second.batchID+".csv"))
	if err != nil || !strings.HasPrefix(string(b), strings.Join(f.Clarity.Names(), ",")) {
		t.Fatalf("clarity extract: %v %.80q", err, b)
	}
}

// TestDrillReplaysOnlyWhatFaultsDeadLettered: once quiet under Fusion
// faults the drill ends them and replays the letters whose retries were
// exhausted, never a permanent refusal; a replayed letter no longer
// counts as waiting in the flow's row.
func TestDrillReplaysOnlyWhatFaultsDeadLettered(t *testing.T) {
	f := newDLQFixture(t) // two permanent HL7 letters, one exhausted GL import
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fusionAddr, err := startDrillFusion(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	s := &drillUp{fusionAddr: fusionAddr}
	if err := s.fusionPost("/sim/faults", map[string]any{"http": []map[string]any{{"status": 503, "rate": 0.5}}}); err != nil {
		t.Fatal(err)
	}
	c := &client{js: f.js}
	co := changeOptions{actor: "sinew-drill", reason: "cutover drill seed 1", key: []byte("k")}
	n, err := replayFaulted(ctx, c, s, co)
	if err != nil || n != 1 {
		t.Fatalf("replayed %d (%v), want the one exhausted letter", n, err)
	}
	if got := f.msgs(t, streams.FusionCmd); got != 1 {
		t.Errorf("FUSION_CMD holds %d, want the replayed import", got)
	}
	if got := f.msgs(t, streams.HL7In); got != 0 {
		t.Errorf("HL7_IN holds %d: a permanent letter was replayed", got)
	}
	var faults struct {
		HTTP []any `json:"http"`
	}
	if err := s.fusionGet("/sim/faults", &faults); err != nil || len(faults.HTTP) != 0 {
		t.Errorf("fusionsim's faults after the replay: %v (%v), want none", faults.HTTP, err)
	}
	if n, err := replayFaulted(ctx, c, s, co); err != nil || n != 0 {
		t.Errorf("a second call replayed %d (%v), want 0", n, err)
	}
	if got := waitingLetters(ctx, f.js); !maps.Equal(got, map[string]int{"willow-inventory": 2}) {
		t.Errorf("dead letters waiting by flow %v, want willow-inventory's two", got)
	}
}

// TestDaySpanKeepsTodaysMessagesInThePast: a past day is sent whole; of
// today only what is already past, so early in the UTC day Epic's chart of
// the drill is due to ingest's search (nothing dated after now).
func TestDaySpanKeepsTodaysMessagesInThePast(t *testing.T) {
	day := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		now  time.Time
		want time.Duration
	}{
		{day.Add(48 * time.Hour), 24 * time.Hour},                 // a past day
		{day.Add(-time.Hour), 24 * time.Hour},                     // a day ahead
		{day.Add(10 * time.Minute), 10*time.Minute - time.Second}, // early today
		{day.Add(20 * time.Second), time.Minute},                  // at least a minute
	} {
		if got := daySpan(day, tc.now); got != tc.want {
			t.Errorf("now %v: span %v, want %v", tc.now, got, tc.want)
		}
	}
	now := day.Add(10 * time.Minute)
	msgs := synthDay(1, day, daySpan(day, now), 200, nil)
	charted := chartedDay(msgs)
	if len(charted) == 0 {
		t.Fatal("the synthetic day charted nothing")
	}
	for _, c := range charted {
		if c.Case != nil && !c.Case.At.Before(now) {
			t.Errorf("case %s charted at %v, after now %v", c.Case.ID, c.Case.At, now)
		}
		for _, r := range c.Tests {
			if !r.At.Before(now) {
				t.Errorf("test %s at %v, after now %v", r.Accession, r.At, now)
			}
		}
	}
}
