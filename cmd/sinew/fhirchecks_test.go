package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/fhir"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/flowstate"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/smart"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/epicsim"
	"github.com/sinewhq/sinew/services/fusionsim"
	"github.com/sinewhq/sinew/services/ingest"
	"github.com/sinewhq/sinew/services/loader"
	"github.com/sinewhq/sinew/services/reconciler"
	"github.com/sinewhq/sinew/services/transform"
	"github.com/sinewhq/sinew/services/transform/flows/fhircheck"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
)

// TestFHIRChecksCleanDayThenSeededVariances is the FHIR reconciliations
// end to end on real parts: epicsim's traffic generator sends OpTime
// case carts and Beaker results through transform and the loader to
// fusionsim (HTTP), epicsim's FHIR server charts the same cases and tests
// as Encounters and Observations, ingest syncs them over HTTP with a
// SMART token into FHIR_IN, and the reconciler runs both checks at the
// sync's watermark. The clean day passes in `sinew recon report`; then
// epicsim's clinical faults (a case without its Encounter, an implant
// case without a cart, an analyzer using 20 % more glucose reagent) are
// found as variances and the report exits 1.
func TestFHIRChecksCleanDayThenSeededVariances(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end on real services")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	inv, err := flows.Load("../../flows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	opts := inv.Topology(streams.DefaultOptions())
	opts.RetryBase, opts.LoadRetryBase = 20*time.Millisecond, 20*time.Millisecond
	_, nc, js := natstest.StartWithTopology(t, opts)
	fs, err := flowstate.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Sync(ctx, inv); err != nil {
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
	ld, err := loader.New(lc, newBus("loader"))
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, ld)
	tc := transform.DefaultConfig()
	tc.Topology, tc.FlowsFile, tc.Crosswalk, tc.Chart, tc.HTTPAddr = opts, "../../flows.yaml", "", "", ""
	tc.ItemCrosswalk, tc.DepartmentCrosswalk = "../../deploy/demo/items.csv", "../../deploy/demo/departments.csv"
	tr, err := transform.New(tc, newBus("transform"))
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, tr)
	rcfg := reconciler.DefaultConfig()
	rcfg.Topology, rcfg.FlowsFile, rcfg.Fusion.BaseURL, rcfg.HTTPAddr = opts, "../../flows.yaml", fusionSrv.URL, ""
	rcfg.InventoryEvery, rcfg.OnhandEvery, rcfg.InventoryGrace = 0, 0, 0 // the test runs the checks, after the loader answered
	rc, err := reconciler.New(rcfg, newBus("reconciler"))
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, rc)

	// Epic: the FHIR server charting the traffic, and ingest's intake.
	keyFile := filepath.Join(t.TempDir(), "fhir-key.pem")
	k, err := smart.GenerateKey(smart.ES384)
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := k.MarshalPEM()
	if err := os.WriteFile(keyFile, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	k, _ = smart.ParseKeyPEM(pem, "")
	jwks := httptest.NewServer(smart.JWKSHandler(k))
	t.Cleanup(jwks.Close)
	simCfg := epicsim.DefaultFHIRConfig()
	simCfg.Live, simCfg.Volume = true, epicsim.FHIRVolume{Patients: 5, Days: 1}
	sim := epicsim.NewFHIRSim(simCfg, time.Time{}, nil)
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)
	sim.SetURL(simSrv.URL)
	sim.Register(epicsim.FHIRClient{ID: "sinew", JWKSURL: jwks.URL})
	sync, err := ingest.NewFHIRSync(ctx, ingest.FHIRConfig{BaseURL: sim.BaseURL(), TokenURL: sim.TokenURL(), ClientID: "sinew", KeyFile: keyFile,
		Search: []ingest.SearchSync{
			{Type: "Encounter", Lookback: 24 * time.Hour, Overlap: time.Minute},
			{Type: "Observation", Params: "category=laboratory", Lookback: 24 * time.Hour, Overlap: time.Minute},
		},
		Throttle: fhir.ThrottleConfig{Rate: 500, Concurrency: 2, PeakStart: 0, PeakEnd: 24}}, newBus("ingest"))
	if err != nil {
		t.Fatal(err)
	}

	hl7In := newBus("ingest")
	gen := epicsim.NewGenerator(11, "STMARYS")
	lines := 0 // case-cart and reagent commands transform will publish
	cases := 0
	send := func(n int) {
		t.Helper()
		for range n {
			gen.Overuse = sim.Overuse()
			raw, _ := gen.Next(time.Now())
			sim.Chart(gen.Clinical())
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
			switch {
			case m.SendingApplication() == "OPTIME" && m.Type() == "DFT":
				lines += m.Count("FT1")
				cases++
			case m.SendingApplication() == "BEAKER" && m.Type() == "ORU" && m.Get("OBR-25") == "F":
				lines += m.Count("ZRG")
			}
		}
	}
	// settle waits until every case-cart and reagent line has Fusion's
	// answer, then syncs Epic's FHIR side past the last message's second.
	settle := func() {
		t.Helper()
		for {
			n, answered := 0, 0
			for _, flow := range []string{"optime-materials", "beaker-inventory"} {
				ps, err := fhircheck.Postings(ctx, js, flow, time.Now().Add(-time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range ps {
					n++
					if p.Outcome != "" {
						answered++
					}
				}
			}
			if n == lines && answered == n {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%d of %d lines mapped, %d answered", n, lines, answered)
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second))) // the watermark passes the last second
		if err := sync.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check := func() {
		t.Helper()
		today := time.Now().UTC().Truncate(24 * time.Hour)
		for _, flow := range []string{"optime-encounters", "beaker-expected-use"} {
			if err := rc.ReconcileCheck(ctx, flow, today); err != nil {
				t.Fatalf("%s: %v", flow, err)
			}
		}
	}
	report := func(flow string) (string, error) {
		out, stderr, err := runReport(t, js, flow, "", false)
		return out + stderr, err
	}

	send(120)
	if cases == 0 || lines == 0 {
		t.Fatalf("the traffic had %d cases, %d lines", cases, lines)
	}
	settle()
	check()
	for _, flow := range []string{"optime-encounters", "beaker-expected-use"} {
		if out, err := report(flow); err != nil || !strings.Contains(out, ": PASS") {
			t.Fatalf("clean day, %s: %v\n%s", flow, err, out)
		} else {
			t.Logf("clean day:\n%s", out)
		}
	}

	// Epic's side of a bad day, through epicsim's fault API.
	mux := http.NewServeMux()
	sim.FaultRoutes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Post(srv.URL+"/sim/faults/fhir", "application/json",
		strings.NewReader(`{"missing_encounters":1,"uncarted_implants":1,"over_consume":{"device":"BEAKER-CHEM-01","percent":"20"}}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("faults: %v %v", resp, err)
	}
	resp.Body.Close()
	before := cases
	send(200)
	if cases == before {
		t.Fatal("no OpTime case after the fault")
	}
	settle()
	check()
	out, err := report("optime-encounters")
	if !errors.Is(err, exitError(1)) || !strings.Contains(out, "/no-encounter") || !strings.Contains(out, "CASE-NOCART-") || !strings.Contains(out, "/no-cart") {
		t.Fatalf("seeded case variances not found: %v\n%s", err, out)
	}
	t.Logf("seeded faults:\n%s", out)
	out, err = report("beaker-expected-use")
	if !errors.Is(err, exitError(1)) || !strings.Contains(out, "reagent|GLU-R1") || !strings.Contains(out, "beyond tolerance") {
		t.Fatalf("over-consumption not found: %v\n%s", err, out)
	}
	if strings.Contains(out, "Patient/") {
		t.Errorf("the report shows a patient reference:\n%s", out)
	}
	t.Logf("seeded faults:\n%s", out)
	// The triage events.
	for _, flow := range []string{"optime-encounters", "beaker-expected-use"} {
		n := 0
		if err := streams.Scan(ctx, js, streams.Recon, reconciler.TriageSubject(flow), time.Time{}, func(jetstream.Msg) error { n++; return nil }); err != nil || n == 0 {
			t.Errorf("%s: %d triage events, %v", flow, n, err)
		}
	}
}
