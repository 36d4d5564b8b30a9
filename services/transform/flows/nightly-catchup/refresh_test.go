package nightlycatchup_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/mfn"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/schedule"
	"github.com/sinewhq/sinew/pkg/streams"
	wsrules "github.com/sinewhq/sinew/pkg/workersync"
	"github.com/sinewhq/sinew/services/epicsim"
	"github.com/sinewhq/sinew/services/fusionsim"
	"github.com/sinewhq/sinew/services/loader"
	nightlycatchup "github.com/sinewhq/sinew/services/transform/flows/nightly-catchup"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// TestWorkerRefreshRepairsInjectedDrift runs the worker master refresh on
// real parts: embedded NATS, the real loader, fusionsim's HCM over HTTP and
// epicsim's provider master (MLLP in, /sim/providers out). A worker Epic
// lacks is hired; then a department changed in Epic (Fusion owns it) and an
// NPI changed in Fusion (Epic owns it) are both repaired by one run, and
// the next run finds no drift.
func TestWorkerRefreshRepairsInjectedDrift(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := streams.DefaultOptions()
	opts.LoadRetryBase = 50 * time.Millisecond
	_, nc, js := natstest.StartWithTopology(t, opts)
	newBus := func(name string) *bus.Bus {
		b, err := bus.New(nc, bus.Config{}, bus.Options{Service: name, Logger: zerolog.Nop(), AuditSecret: []byte("test")})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	sc := fusionsim.DefaultSimConfig()
	sc.Step = 2 * time.Millisecond
	sim, err := fusionsim.NewServer(sc)
	if err != nil {
		t.Fatal(err)
	}
	fs := httptest.NewServer(sim.Handler())
	t.Cleanup(fs.Close)
	t.Cleanup(sim.Close)

	pm := epicsim.NewProviderMaster("STMARYS", false)
	ms, err := mllp.NewServer(mllp.ServerConfig{Addr: "127.0.0.1:0"}, pm)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ms.Serve(ctx, ln) }()
	mux := http.NewServeMux()
	pm.SimHandler(mux)
	es := httptest.NewServer(mux)
	t.Cleanup(es.Close)

	cfg := loader.DefaultConfig()
	cfg.Topology = opts
	cfg.FlowsFile = "../../../../flows.yaml"
	cfg.Fusion.BaseURL = fs.URL
	cfg.Epic.Addr = ln.Addr().String()
	cfg.Epic.AckTimeout = 5 * time.Second
	cfg.CallbackAddr = ""
	cfg.PollInterval, cfg.MaxPollInterval = 5*time.Millisecond, 50*time.Millisecond
	ld, err := loader.New(cfg, newBus("loader"))
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, ld)

	inv, err := flows.Load("../../../../flows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wf, ok := inv.Get(nightlycatchup.WorkerFlow)
	if !ok {
		t.Fatal("worker-sync not in flows.yaml")
	}
	fc, err := fusion.New(fusion.Config{BaseURL: fs.URL, Username: "sinew", Password: "sinew"})
	if err != nil {
		t.Fatal(err)
	}
	rc := nightlycatchup.RefreshConfig{Flow: wf, Fusion: fc, Epic: nightlycatchup.HTTPProviders{URL: es.URL + "/sim/providers"}, Publish: newBus("transform")}
	st, err := schedule.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 2, 0, 30, 0, time.UTC)
	if err := st.SetWatermark(ctx, "nightly-catchup", now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	cr, err := schedule.Parse("* * * * *")
	if err != nil {
		t.Fatal(err)
	}
	job := nightlycatchup.WithRefresh(func(context.Context, *schedule.Progress) error { return nil },
		func(context.Context) *nightlycatchup.RefreshConfig { return &rc })
	runOnce := func(name string) map[string]int64 {
		t.Helper()
		at := now
		now = now.Add(time.Minute)
		s := schedule.New(st, schedule.Config{Flow: "nightly-catchup", Cron: &cr, Holder: "test", Now: func() time.Time { return at }}, job)
		r, err := s.Tick(ctx)
		if err != nil || r == nil {
			t.Fatalf("%s: run %v: %v", name, r, err)
		}
		if r.Outcome != schedule.Succeeded || len(r.Steps) != 1 {
			t.Fatalf("%s: run %s, steps %+v", name, r.Outcome, r.Steps)
		}
		t.Logf("%s: %v", name, r.Steps[0].Counts)
		return r.Steps[0].Counts
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	worker := func() fusion.Worker {
		ws, err := fc.Workers(ctx, fusion.WorkerQuery{PersonNumber: "P7001"})
		if err != nil || len(ws) != 1 {
			t.Fatalf("worker: %v %v", ws, err)
		}
		return ws[0]
	}

	// A Fusion hire Epic never got: the refresh sends it.
	post(t, fs.URL+"/hcmRestApi/resources/11.13.18.05/workers", `{"PersonNumber":"P7001","names":[{"LastName":"RIVERA","FirstName":"ANA","LegislationCode":"US"}],
	 "workRelationships":[{"LegalEmployerName":"St Marys","WorkerType":"E","StartDate":"2026-01-05",
	  "assignments":[{"DepartmentName":"CARDIOLOGY","JobCode":"PHYS","assignmentsDFF":[{"npi":"1234567893","specialty":"Cardiology","providerType":"MD"}]}]}]}`)
	base := len(pm.Providers())
	c := runOnce("hire")
	if c[nightlycatchup.CountMissingEpic] < 1 || c[nightlycatchup.CountToEpic] != c[nightlycatchup.CountMissingEpic] {
		t.Fatalf("hire: counts %v", c)
	}
	var ser string
	waitFor("the hire in Epic", func() bool {
		for _, p := range pm.Providers() {
			if p.PersonNumber == "P7001" && p.Department == "CARDIOLOGY" {
				ser = p.SER
				return true
			}
		}
		return false
	})
	// Let every seeded worker reach Epic, then link them in Fusion.
	waitFor("every hire in Epic", func() bool { return len(pm.Providers()) >= base+int(c[nightlycatchup.CountMissingEpic]) })
	c = runOnce("link")
	if c[nightlycatchup.CountDrifted] != 0 || c[nightlycatchup.CountLinked] < 1 {
		t.Fatalf("link: counts %v", c)
	}
	waitFor("the crosswalk link in Fusion", func() bool { return worker().EpicProviderID == ser })

	// The drift: an Epic user moves the provider's department (Fusion's
	// attribute); a Fusion user changes the NPI (Epic's attribute).
	post(t, es.URL+"/sim/providers/"+ser, `{"department":"ONCOLOGY"}`)
	if err := fc.UpdateProviderAttributes(ctx, worker(), time.Now().UTC(), map[string]string{"npi": "1245319599"}); err != nil {
		t.Fatal(err)
	}
	c = runOnce("repair")
	if c[nightlycatchup.CountDrifted] != 1 || c[nightlycatchup.CountToEpic] != 1 || c[nightlycatchup.CountToFusion] != 1 || c[nightlycatchup.CountAmbiguous] != 0 {
		t.Fatalf("repair: counts %v", c)
	}
	waitFor("Fusion's department back in Epic", func() bool {
		for _, p := range pm.Providers() {
			if p.SER == ser {
				return p.Department == "CARDIOLOGY"
			}
		}
		return false
	})
	waitFor("Epic's NPI back in Fusion", func() bool { return worker().NPI == "1234567893" })

	c = runOnce("after")
	if c[nightlycatchup.CountDrifted] != 0 || c[nightlycatchup.CountToEpic] != 0 || c[nightlycatchup.CountToFusion] != 0 || c[nightlycatchup.CountChecked] < 1 {
		t.Fatalf("second run: counts %v", c)
	}
	// The last run reconciles: one refresh row, passing.
	nf, _ := inv.Get(nightlycatchup.Flow)
	res, err := nightlycatchup.Check(ctx, nf, registry.CheckEnv{JS: js})
	if err != nil || res == nil || res.Summary.Verdict != recon.VerdictPass || len(res.Rows) != 1 || res.Rows[0].Hop != "refresh" {
		t.Fatalf("check: %+v %v", res, err)
	}
}

// post sends body to a simulator (fusionsim's HCM with Sinew's credentials).
func TestCompareByConflictRules(t *testing.T) {
	inv, err := flows.Load("../../../../flows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wf, _ := inv.Get(nightlycatchup.WorkerFlow)
	rules, err := wsrules.RulesOf(*wf)
	if err != nil {
		t.Fatal(err)
	}
	w := fusion.Worker{PersonNumber: "P1", AssignmentNumber: "A1", LastName: "RIVERA", FirstName: "ANA", Status: "ACTIVE",
		Department: "CARDIOLOGY", Job: "PHYS", NPI: "1234567893", Specialty: "Cardiology", ProviderType: "MD", EpicProviderID: "SER1"}
	p := mfn.Provider{SER: "SER1", PersonNumber: "P1", AssignmentNumber: "A1", Family: "RIVERA", Given: "ANA", Active: true,
		Department: "CARDIOLOGY", Job: "PHYS", NPI: "1234567893", Specialty: "Cardiology", ProviderType: "MD"}
	with := func(f func(*fusion.Worker, *mfn.Provider)) ([]fusion.Worker, []mfn.Provider) {
		w2, p2 := w, p
		f(&w2, &p2)
		return []fusion.Worker{w2}, []mfn.Provider{p2}
	}
	for _, tc := range []struct {
		name               string
		edit               func(*fusion.Worker, *mfn.Provider)
		toEpic, toFusion   string // attributes, sorted, comma-joined
		missing, ambiguous int
		link               bool
	}{
		{name: "aligned", edit: func(*fusion.Worker, *mfn.Provider) {}},
		{name: "Epic moved the department: Fusion's value to Epic", edit: func(_ *fusion.Worker, p *mfn.Provider) { p.Department = "ONCOLOGY" }, toEpic: "department"},
		{name: "Fusion changed the specialty: Epic's value to Fusion", edit: func(w *fusion.Worker, _ *mfn.Provider) { w.Specialty = "Oncology" }, toFusion: "specialty"},
		{name: "both sides, both repaired", edit: func(w *fusion.Worker, p *mfn.Provider) { w.NPI = "1245319599"; p.Job = "NURSE" }, toEpic: "job", toFusion: "npi"},
		{name: "Epic's empty value does not wipe Fusion's", edit: func(_ *fusion.Worker, p *mfn.Provider) { p.ProviderType = "" }},
		{name: "no link yet", edit: func(w *fusion.Worker, _ *mfn.Provider) { w.EpicProviderID = "" }, link: true},
		{name: "not in Epic", edit: func(w *fusion.Worker, p *mfn.Provider) {
			w.EpicProviderID = ""
			*p = mfn.Provider{SER: "SER9", NPI: "1245319599"}
		}, missing: 1},
		{name: "Epic id and NPI disagree: triage", edit: func(w *fusion.Worker, _ *mfn.Provider) { w.EpicProviderID = ""; w.NPI = "1245319599" }, ambiguous: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws, ps := with(tc.edit)
			c := nightlycatchup.Compare(rules, ws, ps)
			if c.Checked != 1 || len(c.Missing) != tc.missing || len(c.Ambiguous) != tc.ambiguous {
				t.Fatalf("comparison %+v", c)
			}
			var toEpic, toFusion string
			link := false
			for _, r := range c.Repairs {
				toEpic, toFusion, link = names(r.ToEpic), names(r.ToFusion), r.Link
			}
			if toEpic != tc.toEpic || toFusion != tc.toFusion || link != tc.link {
				t.Fatalf("to Epic %q, to Fusion %q, link %v; want %q, %q, %v", toEpic, toFusion, link, tc.toEpic, tc.toFusion, tc.link)
			}
			for _, a := range c.Ambiguous {
				if strings.Contains(a, "1245319599") {
					t.Fatalf("ambiguity names a value: %s", a)
				}
			}
		})
	}
}

func names(m map[wsrules.Attr]string) string {
	var out []string
	for a := range m {
		out = append(out, string(a))
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func post(t *testing.T, url, body string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("sinew", "sinew")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("POST %s: %d", url, resp.StatusCode)
	}
}
