package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/fhir"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/smart"
	"github.com/sinewhq/sinew/pkg/streams"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
	"github.com/sinewhq/sinew/services/epicsim"
	"github.com/sinewhq/sinew/services/ingest"
)

// fhirEnv is epicsim's FHIR side on real HTTP, a real NATS with the
// topology, and the ingest FHIR intake's configuration pointing at them.
type fhirEnv struct {
	sim *epicsim.FHIRSim
	js  jetstream.JetStream
	b   *bus.Bus
	cfg ingest.FHIRConfig
}

func startFHIR(t *testing.T, simCfg epicsim.FHIRConfig) *fhirEnv {
	t.Helper()
	_, nc, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	b, err := bus.New(nc, bus.Config{}, bus.Options{Service: "ingest", Logger: zerolog.Nop(), AuditSecret: []byte("test-secret")})
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "fhir-key.pem")
	k, err := smart.GenerateKey(smart.RS384)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := k.MarshalPEM()
	if err := os.WriteFile(keyFile, p, 0o600); err != nil {
		t.Fatal(err)
	}
	k, _ = smart.ParseKeyPEM(p, "") // the kid ingest derives from the file
	jwks := httptest.NewServer(smart.JWKSHandler(k))
	t.Cleanup(jwks.Close)
	sim := epicsim.NewFHIRSim(simCfg, time.Now().Add(-time.Minute), nil)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	sim.SetURL(srv.URL)
	sim.Register(epicsim.FHIRClient{ID: "sinew", JWKSURL: jwks.URL})
	return &fhirEnv{sim: sim, js: js, b: b, cfg: ingest.FHIRConfig{
		BaseURL: sim.BaseURL(), TokenURL: sim.TokenURL(), ClientID: "sinew", KeyFile: keyFile,
		Export:   ingest.ExportSync{MaxWait: 2 * time.Second},
		Throttle: fhir.ThrottleConfig{Rate: 500, Concurrency: 2, PeakStart: 0, PeakEnd: 24},
	}}
}

func (e *fhirEnv) sync(t *testing.T) *ingest.FHIRSync {
	t.Helper()
	f, err := ingest.NewFHIRSync(context.Background(), e.cfg, e.b)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// stored reads FHIR_IN: resourceType/id → how many times stored.
func (e *fhirEnv) stored(t *testing.T) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := e.js.Stream(ctx, streams.FHIRIn)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(ctx)
	got := map[string]int{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var ev sinewv1.FhirResourceReceived
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if m.Subject != streams.FHIRSubject(ev.GetResourceType()) || len(ev.GetJson()) == 0 {
			t.Errorf("seq %d: subject %s, %d bytes", seq, m.Subject, len(ev.GetJson()))
		}
		got[ev.GetResourceType()+"/"+ev.GetResourceId()]++
	}
	return got
}

func exactlyOnce(t *testing.T, got map[string]int, want []string) {
	t.Helper()
	for _, k := range want {
		if got[k] != 1 {
			t.Errorf("%s stored %d times", k, got[k])
		}
	}
	n := 0
	for range got {
		n++
	}
	if n != len(want) {
		t.Errorf("%d distinct resources stored, want %d", n, len(want))
	}
}

// TestFHIRPagedSyncSurvivesExpiredSessionAndCap: a paged sync whose
// paging session expires mid-way restarts the query and whose capped
// search is split stores every resource exactly once (no gap, no
// duplicate); the next round starts from the watermark and stores nothing new.
func TestFHIRPagedSyncSurvivesExpiredSessionAndCap(t *testing.T) {
	simCfg := epicsim.DefaultFHIRConfig()
	simCfg.Volume = epicsim.FHIRVolume{Patients: 10, Encounters: 90, Observations: 240, Days: 7}
	simCfg.PageSize = 15
	simCfg.Faults.ExpireSessionAtPage = 3
	e := startFHIR(t, simCfg)
	e.cfg.Search = []ingest.SearchSync{
		{Type: "Encounter", Lookback: 8 * 24 * time.Hour, Overlap: time.Hour},
		{Type: "Observation", Params: "category=laboratory", Lookback: 8 * 24 * time.Hour, Overlap: time.Hour},
	}
	f := e.sync(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := f.Round(ctx); err != nil {
		t.Fatal(err)
	}
	st := f.Stats()
	if st.Restarts < 1 || st.Splits < 1 {
		t.Errorf("want a restart and a split: %+v", st)
	}
	exactlyOnce(t, e.stored(t), append(e.sim.Resources("Encounter"), e.sim.Resources("Observation")...))
	e.auditedWithHashedPatients(t)

	again := e.sync(t) // a new process: the watermark is in KV
	if err := again.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if st := again.Stats(); st.Published != 0 {
		t.Errorf("second round published %d (overlap must be dropped as duplicates): %+v", st.Published, st)
	}
	exactlyOnce(t, e.stored(t), append(e.sim.Resources("Encounter"), e.sim.Resources("Observation")...))
}

// TestFHIRBulkExportWith429sResumesAfterRestart: the export's polls meet
// 429s and Retry-After; ingest is stopped mid-export and a new one
// resumes the same job from its state in KV: every resource stored
// once, one kick-off, the job deleted at the end.
func TestFHIRBulkExportWith429sResumesAfterRestart(t *testing.T) {
	simCfg := epicsim.DefaultFHIRConfig()
	simCfg.Volume = epicsim.FHIRVolume{Practitioners: 30, Medications: 12, Patients: 20, Days: 1}
	simCfg.Export = epicsim.ExportConfig{Polls: 2, RetryAfter: time.Second, Every429: 2, LinesPerFile: 7}
	e := startFHIR(t, simCfg)
	e.cfg.Export.Group = "sinew-staff"
	e.cfg.Export.Types = []string{"Practitioner", "PractitionerRole", "Medication", "Patient"}
	var want []string
	for _, typ := range e.cfg.Export.Types {
		want = append(want, e.sim.Resources(typ)...)
	}

	first := e.sync(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Export(ctx) }()
	deadline := time.Now().Add(2 * time.Minute)
	for first.Stats().Published < 25 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel() // ingest stops mid-export
	if err := <-done; err == nil {
		t.Fatal("export finished before the restart; make the volume larger")
	}
	if n := len(e.stored(t)); n == 0 || n >= len(want) {
		t.Fatalf("%d of %d stored before the restart (stats %+v)", n, len(want), first.Stats())
	}

	second := e.sync(t)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel2()
	if err := second.Export(ctx2); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, e.stored(t), want)
	if e.sim.Kickoffs() != 1 || e.sim.Jobs() != 0 {
		t.Errorf("kick-offs %d (want 1: resumed), jobs left %d (want 0: deleted)", e.sim.Kickoffs(), e.sim.Jobs())
	}
}

// TestFHIRUnmappedClientErrorIsClear: a registered client not mapped to a
// background user fails the round with the error saying so.
func TestFHIRUnmappedClientErrorIsClear(t *testing.T) {
	e := startFHIR(t, epicsim.DefaultFHIRConfig())
	b, _ := os.ReadFile(e.cfg.KeyFile)
	k, _ := smart.ParseKeyPEM(b, "")
	e.sim.Register(epicsim.FHIRClient{ID: "sinew", JWKS: string(mustJSON(smart.Set(k))), Unmapped: true})
	e.cfg.Search = []ingest.SearchSync{{Type: "Encounter"}}
	err := e.sync(t).Round(context.Background())
	var te *smart.TokenError
	if !errors.As(err, &te) || !te.Unmapped() {
		t.Fatalf("%v", err)
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// auditedWithHashedPatients: every read is audited with the type and
// count, patients as keyed hashes; no patient id appears in the trail.
func (e *fhirEnv) auditedWithHashedPatients(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reads, refs := 0, 0
	var all []byte
	err := audit.Read(ctx, e.js, "audit.>", func(en audit.Entry) error {
		all = append(all, en.Record.GetEvents()...)
		for _, ev := range en.Events {
			if ev.GetAction() == "read" {
				reads++
				refs += len(ev.GetPatientRefs())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if reads == 0 || refs == 0 {
		t.Fatalf("%d read records, %d patient refs", reads, refs)
	}
	for _, k := range e.sim.Resources("Patient") {
		if bytes.Contains(all, []byte(strings.TrimPrefix(k, "Patient/"))) {
			t.Fatalf("a patient id in the audit trail")
		}
	}
}

// TestFHIRExportKeepsAnUnreadableLineWithItsBytes: a truncated line in
// an export file is kept on fhir.in.invalid with its original bytes and
// an error naming the problem, and every other resource is stored once.
func TestFHIRExportKeepsAnUnreadableLineWithItsBytes(t *testing.T) {
	simCfg := epicsim.DefaultFHIRConfig()
	simCfg.Volume = epicsim.FHIRVolume{Practitioners: 5, Days: 1}
	simCfg.Export = epicsim.ExportConfig{Polls: 0, LinesPerFile: 100}
	simCfg.Faults.BadExportLine = 2
	e := startFHIR(t, simCfg)
	e.cfg.Export.Group = "g"
	e.cfg.Export.Types = []string{"Practitioner"}
	f := e.sync(t)
	if err := f.Export(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := f.Stats(); st.Rejected != 1 || st.Published != 5 {
		t.Fatalf("stats %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, _ := e.js.Stream(ctx, streams.FHIRIn)
	m, err := s.GetLastMsgForSubject(ctx, streams.FHIRSubject("invalid"))
	if err != nil {
		t.Fatal(err)
	}
	var ev sinewv1.FhirResourceReceived
	if err := proto.Unmarshal(m.Data, &ev); err != nil {
		t.Fatal(err)
	}
	if string(ev.GetJson()) != epicsim.BadExportLine {
		t.Errorf("kept bytes %q", ev.GetJson())
	}
	if why := ev.GetEnvelope().BusinessKey("error"); !strings.Contains(why, "line 3: malformed JSON") || strings.Contains(why, "eTruncated") {
		t.Errorf("error %q", why)
	}
}
