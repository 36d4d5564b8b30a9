package nightlycatchup_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/schedule"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/epicsim"
	"github.com/sinewhq/sinew/services/fusionsim"
	"github.com/sinewhq/sinew/services/loader"
	nightlycatchup "github.com/sinewhq/sinew/services/transform/flows/nightly-catchup"
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
	postWorker(t, fs.URL, `{"PersonNumber":"P7001","names":[{"LastName":"RIVERA","FirstName":"ANA","LegislationCode":"US"}],
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
	if _, err := pm.EditProvider(ser, epicsim.Edit{Department: "ONCOLOGY"}); err != nil {
		t.Fatal(err)
	}
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
}

func postWorker(t *testing.T, base, body string) {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/hcmRestApi/resources/11.13.18.05/workers", strings.NewReader(body))
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
		t.Fatalf("POST workers: %d", resp.StatusCode)
	}
}
