package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/config"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/flowstate"
	"github.com/sinewhq/sinew/pkg/natsembed"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/telemetry"
	"github.com/sinewhq/sinew/services/console"
	"github.com/sinewhq/sinew/services/deadletter"
	"github.com/sinewhq/sinew/services/epicsim"
	"github.com/sinewhq/sinew/services/fusionsim"
	"github.com/sinewhq/sinew/services/ingest"
	"github.com/sinewhq/sinew/services/loader"
	"github.com/sinewhq/sinew/services/reconciler"
	"github.com/sinewhq/sinew/services/transform"
)

// upFlags are sinew up's settings.
type upFlags struct {
	dataDir    string
	natsAddr   string
	httpAddr   string
	mllpAddr   string
	configPath string
	noTraffic  bool
	fusionAddr string
	pprofAddr  string
	fusionURL  string
	syncAlways bool
	logLevel   string
	logFormat  string
	// otlpEndpoint is the OTLP/HTTP collector of every service's spans
	// (telemetry.Config.OTLPEndpoint); empty leaves each service's own.
	otlpEndpoint string
	// flowsFile is the integration inventory every service reads; empty
	// leaves each service's own setting (flows.yaml in the working dir).
	flowsFile string
}

// unit is one service run by sinew up.
type unit struct {
	name string
	bus  *bus.Bus
	svc  bus.Service
	tp   telemetry.TracerProvider // flushed at exit
}

func cmdUp(ctx context.Context, args []string, stderr io.Writer) error {
	var f upFlags
	fs := flag.NewFlagSet("sinew up", flag.ContinueOnError)
	fs.StringVar(&f.dataDir, "data-dir", "./var", "where JetStream, drop folders and the audit secret live")
	fs.StringVar(&f.natsAddr, "nats-addr", "127.0.0.1:4222", "NATS client listener (the nats CLI can inspect streams here)")
	fs.StringVar(&f.httpAddr, "http-addr", "127.0.0.1:8080", "HTTP listener: /readyz, /healthz, /metrics")
	fs.StringVar(&f.mllpAddr, "mllp-addr", "127.0.0.1:2575", "MLLP listener for HL7 v2")
	fs.StringVar(&f.configPath, "config", os.Getenv("SINEW_CONFIG"), "YAML file with one section per service (optional)")
	fs.BoolVar(&f.noTraffic, "no-traffic", false, "do not start synthetic traffic")
	fs.StringVar(&f.fusionAddr, "fusion-addr", "127.0.0.1:8090", "listener of the embedded Fusion simulator")
	fs.StringVar(&f.fusionURL, "fusion-url", "", "base URL of an external Fusion (or fusionsim); the embedded simulator is not started")
	fs.BoolVar(&f.syncAlways, "sync-always", true, "fsync every JetStream write (single-node durability)")
	fs.StringVar(&f.pprofAddr, "pprof-addr", "", "serve Go's /debug/pprof on this address (profiling; off when empty)")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (default: each service's config, else info)")
	fs.StringVar(&f.logFormat, "log-format", "", "json or console (default: each service's config, else json)")
	fs.StringVar(&f.flowsFile, "flows", "", "the integration inventory every service reads (default ./flows.yaml)")
	fs.StringVar(&f.otlpEndpoint, "otlp-endpoint", os.Getenv(telemetry.EnvOTLPEndpoint),
		"OTLP/HTTP collector for every service's traces, host:port or URL (default $"+telemetry.EnvOTLPEndpoint+"; none: traces not exported)")
	if _, err := parse(fs, args, stderr); err != nil {
		return err
	}
	return up(ctx, f, stderr, nil)
}

// lockedWriter serialises log lines from every service onto one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Stat is the underlying file's, so console logs are coloured on a terminal.
func (l *lockedWriter) Stat() (os.FileInfo, error) {
	if f, ok := l.w.(*os.File); ok {
		return f.Stat()
	}
	return nil, os.ErrInvalid
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// up runs everything until ctx ends. started, if set, receives the bound
// HTTP address once listening (tests).
func up(ctx context.Context, f upFlags, stderr io.Writer, started func(httpAddr string)) error {
	logw := &lockedWriter{w: stderr}
	tcfg := telemetry.DefaultConfig()
	if f.logLevel != "" {
		tcfg.LogLevel = f.logLevel
	}
	if f.logFormat != "" {
		tcfg.LogFormat = f.logFormat
	}
	if err := tcfg.Validate(); err != nil {
		return err
	}
	log := telemetry.NewLogger(logw, tcfg, "sinew")

	if err := os.MkdirAll(f.dataDir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	secret, err := auditSecret(f.dataDir)
	if err != nil {
		return err
	}
	topo := streams.DefaultOptions()
	if f.configPath != "" {
		if err := config.LoadSection(f.configPath, "topology", "SINEW_TOPOLOGY", &topo); err != nil {
			return err
		}
	} else if err := config.LoadEnv("SINEW_TOPOLOGY", &topo, nil); err != nil {
		return err
	}
	// The server's warnings and errors go to the log: a permission
	// violation names the user and subject, never a payload.
	nlog := telemetry.NewLogger(logw, tcfg, "nats")
	natsLog := func(level, msg string) {
		switch {
		case strings.HasPrefix(msg, "Plaintext passwords"):
			// the clients' passwords are in the data dir (0600) anyway
		case level == "error":
			nlog.Error().Msg(msg)
		case level == "warn":
			nlog.Warn().Msg(msg)
		default:
			nlog.Debug().Msg(msg)
		}
	}
	// Each HL7 flow has its own subjects and consumer (flow state pauses it).
	flowsFile := f.flowsFile
	if flowsFile == "" {
		flowsFile = "flows.yaml"
	}
	inv, err := flows.Load(flowsFile)
	switch {
	case err == nil:
		f.flowsFile = flowsFile
	case f.flowsFile == "" && errors.Is(err, os.ErrNotExist):
		// No inventory here: the services run without flows (and say so).
		inv = &flows.Inventory{}
	default:
		return err
	}
	topo = inv.Topology(topo)
	// The same least-privilege users as production (streams.Grants), with
	// passwords kept 0600 in the data dir.
	topology := streams.New(topo)
	passwords, err := natsPasswords(f.dataDir, topology.Grants())
	if err != nil {
		return err
	}
	users, err := embeddedUsers(topology, passwords)
	if err != nil {
		return err
	}
	srv, err := natsembed.Start(natsembed.Options{
		Addr: f.natsAddr, StoreDir: filepath.Join(f.dataDir, "jetstream"), SyncAlways: f.syncAlways, Users: users,
		Log: natsLog,
	})
	if err != nil {
		return err
	}
	defer natsembed.Stop(srv)
	natsURL := srv.ClientURL()
	if err := writeContexts(f.dataDir, natsURL, passwords); err != nil {
		return err
	}
	log.Info().Str("nats", natsURL).Str("data_dir", f.dataDir).
		Str("operator_context", filepath.Join(natsDir(f.dataDir), streams.UserAdmin+".json")).
		Msg("embedded NATS with JetStream started, per-service users")

	boot, err := bus.Connect(ctx, bus.Config{URL: natsURL, User: streams.UserAdmin, Password: passwords[streams.UserAdmin]},
		bus.Options{Service: "sinew", Logger: log})
	if err != nil {
		return err
	}
	ensureCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = topology.Ensure(ensureCtx, boot.JetStream())
	if err == nil {
		// Before any service consumes: held flows stay held across restarts.
		var st *flowstate.Store
		if st, err = flowstate.Open(ensureCtx, boot.JetStream()); err == nil {
			var seeded []string
			seeded, err = st.Sync(ensureCtx, inv)
			if len(seeded) > 0 {
				log.Info().Strs("flows", seeded).Msg("flow states seeded from flows.yaml")
			}
		}
	}
	cancel()
	boot.Close()
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	units, err := buildUnits(ctx, f, topo, natsURL, passwords, secret, logw, reg)
	defer func() {
		for _, u := range units {
			u.bus.Close()
			if u.tp != nil { // flush the spans not yet exported, briefly: the collector may be gone
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
				_ = u.tp.Shutdown(sctx)
				cancel()
			}
		}
	}()
	if err != nil {
		return err
	}

	ready := func() error {
		var waiting []string
		for _, u := range units {
			if u.bus.Ready() != nil || u.svc.Ready() != nil {
				waiting = append(waiting, u.name)
			}
		}
		if len(waiting) > 0 {
			return fmt.Errorf("not ready: %s", strings.Join(waiting, ", "))
		}
		return nil
	}
	ln, err := net.Listen("tcp", f.httpAddr)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	if f.pprofAddr != "" {
		pl, err := net.Listen("tcp", f.pprofAddr)
		if err != nil {
			return fmt.Errorf("pprof: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		ps := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = ps.Serve(pl) }()
		defer ps.Close()
	}
	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	errs := make(chan error, len(units)+1)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := telemetry.ServeListener(runCtx, ln, httpHandler(units, telemetry.Handler(reg, ready))); err != nil {
			errs <- fmt.Errorf("http: %w", err)
		}
	})
	for _, u := range units {
		wg.Go(func() {
			if err := u.svc.Run(runCtx); err != nil {
				errs <- fmt.Errorf("%s: %w", u.name, err)
			}
		})
	}
	log.Info().Str("http", ln.Addr().String()).Str("mllp", f.mllpAddr).Bool("traffic", !f.noTraffic).Msg("services starting")
	if started != nil {
		started(ln.Addr().String())
	}

	var failed error
	select {
	case <-ctx.Done():
		log.Info().Msg("stopping: draining services")
	case failed = <-errs:
		log.Error().Err(failed).Msg("a service failed; stopping")
	}
	stopAll()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		log.Warn().Msg("services did not stop within 30 s")
	}
	log.Info().Msg("stopped")
	return failed
}

// buildUnits connects and builds every service from its config section.
func buildUnits(ctx context.Context, f upFlags, topo streams.Options, natsURL string, passwords map[string]string, secret []byte, logw io.Writer, reg *prometheus.Registry) ([]unit, error) {
	var units []unit
	add := func(name string, base *bus.ServiceConfig, build func(*bus.Bus) (bus.Service, error)) error {
		// One process, one server, one topology and one audit secret: these
		// are sinew up's, whatever a service section says.
		base.NATS.URL = natsURL
		// Each unit is its own NATS user (streams.Grants), as in production.
		base.NATS.User, base.NATS.Password, base.NATS.CredsFile = name, passwords[name], ""
		if base.NATS.Password == "" {
			return fmt.Errorf("%s: no NATS user in the permission table", name)
		}
		base.Topology = topo
		base.Audit.Secret = string(secret)
		if f.logLevel != "" {
			base.Telemetry.LogLevel = f.logLevel
		}
		if f.logFormat != "" {
			base.Telemetry.LogFormat = f.logFormat
		}
		if f.otlpEndpoint != "" {
			base.Telemetry.OTLPEndpoint = f.otlpEndpoint
		}
		if err := base.Check(name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		tp, err := telemetry.NewTracerProvider(ctx, base.Telemetry, name)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		b, err := bus.Connect(ctx, base.NATS, bus.Options{
			Service: name, Logger: telemetry.NewLogger(logw, base.Telemetry, name), Tracer: tp,
			Metrics: prometheus.WrapRegistererWith(prometheus.Labels{"service": name}, reg), AuditSecret: []byte(base.Audit.Secret),
		})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		svc, err := build(b)
		if err != nil {
			b.Close()
			return fmt.Errorf("%s: %w", name, err)
		}
		units = append(units, unit{name: name, bus: b, svc: svc, tp: tp})
		return nil
	}
	load := func(name string, dst any) error {
		return config.LoadSection(f.configPath, name, bus.EnvPrefix(name), dst)
	}
	if f.configPath == "" {
		load = func(name string, dst any) error { return config.Load("", bus.EnvPrefix(name), dst) }
	}

	ing := ingest.DefaultConfig()
	tr, ld, rc, dl, co, es, fsim := transform.DefaultConfig(), loader.DefaultConfig(), reconciler.DefaultConfig(),
		deadletter.DefaultConfig(), console.DefaultConfig(), epicsim.DefaultConfig(), fusionsim.DefaultConfig()
	steps := []struct {
		name  string
		cfg   any
		base  *bus.ServiceConfig
		build func(*bus.Bus) (bus.Service, error)
	}{
		{"fusionsim", &fsim, fsim.Base(), func(b *bus.Bus) (bus.Service, error) { return fusionsim.New(fsim, b) }},
		{"deadletter", &dl, dl.Base(), func(b *bus.Bus) (bus.Service, error) { return deadletter.New(dl, b) }},
		{"reconciler", &rc, rc.Base(), func(b *bus.Bus) (bus.Service, error) { return reconciler.New(rc, b) }},
		{"loader", &ld, ld.Base(), func(b *bus.Bus) (bus.Service, error) { return loader.New(ld, b) }},
		{"transform", &tr, tr.Base(), func(b *bus.Bus) (bus.Service, error) { return transform.New(tr, b) }},
		{"ingest", &ing, ing.Base(), func(b *bus.Bus) (bus.Service, error) { return ingest.New(ing, b) }},
		{"console", &co, co.Base(), func(b *bus.Bus) (bus.Service, error) { return console.New(co, b) }},
		{"epicsim", &es, es.Base(), func(b *bus.Bus) (bus.Service, error) { return epicsim.New(es, b) }},
	}
	// epicsim's settings first: whether its FHIR server is on (fhir.enabled,
	// as the drill sets it without traffic) decides ingest's FHIR intake,
	// and ingest is built before epicsim (upFHIR).
	if err := load("epicsim", &es); err != nil {
		return nil, err
	}
	for _, s := range steps {
		if err := load(s.name, s.cfg); err != nil {
			return units, err
		}
		// Flags win over the config file: addresses and paths are sinew up's.
		upIngest(f, &ing)
		es.MLLPTarget = f.mllpAddr
		es.Traffic.Enabled = !f.noTraffic
		es.ResoluteDrop = filepath.Join(f.dataDir, "drop", "resolute")
		es.ClarityDrop = filepath.Join(f.dataDir, "drop", "clarity")
		// With traffic, epicsim serves its SFTP share (127.0.0.1:2222 unless
		// set) and ingest pulls from it, trusting the host key epicsim writes.
		es.SFTP.Root, es.SFTP.HostKeyFile = filepath.Join(f.dataDir, "epicsim", "sftp"), filepath.Join(f.dataDir, "epicsim", "sftp_host_key")
		if es.Traffic.Enabled && es.SFTP.Addr == "" {
			es.SFTP.Addr = "127.0.0.1:2222"
		}
		if es.Traffic.Enabled && ing.SFTP.Addr == "" {
			ing.SFTP.Addr, ing.SFTP.User, ing.SFTP.Password, ing.SFTP.HostKeyFile = es.SFTP.Addr, es.SFTP.User, es.SFTP.Password, es.SFTP.HostKeyFile+".pub"
		}
		// Fusion: the embedded simulator unless an external one is named;
		// ESS callbacks arrive on sinew up's own HTTP listener.
		fsim.Addr = f.fusionAddr
		ld.Fusion.BaseURL, rc.Fusion.BaseURL = "http://"+f.fusionAddr, "http://"+f.fusionAddr
		if f.fusionURL != "" {
			ld.Fusion.BaseURL, rc.Fusion.BaseURL = f.fusionURL, f.fusionURL
		}
		ld.CallbackAddr, ld.CallbackURL = "", "http://"+f.httpAddr+loader.CallbackPath
		if co.UsersFile == "" {
			co.UsersFile = filepath.Join(f.dataDir, "console", "users.yaml")
		}
		co.Addr = "" // the web console is on --http-addr (console.Routes)
		if co.TrackDir == "" {
			co.TrackDir = filepath.Join(f.dataDir, "track") // the tracking index, rebuilt from AUDIT when wiped
		}
		// Back to Epic: with traffic, epicsim's inbound interface
		// (127.0.0.1:2576, /sim/ on 127.0.0.1:9117) takes EPIC_CMD from the
		// loader; transform's Fusion pollers (worker-sync) read the
		// loader's Fusion.
		if !f.noTraffic && es.Inbound.Addr == "" {
			es.Inbound.Addr, es.Inbound.SimAddr, es.Inbound.Echo = "127.0.0.1:2576", "127.0.0.1:9117", true
		}
		if !f.noTraffic && es.Inbound.Refunds == 0 {
			es.Inbound.Refunds = 500 // Resolute's refunds, paid by fusionsim's day (ap-payment-status)
		}
		if ld.Epic.Addr == "" {
			ld.Epic.Addr = es.Inbound.Addr
		}
		// A flow delivered by file (flows.yaml delivery: sftp) puts it on
		// epicsim's SFTP share, trusting the host key epicsim writes.
		if ld.Epic.SFTP.Addr == "" {
			ld.Epic.SFTP.Addr = es.SFTP.Addr
		}
		if ld.Epic.SFTP.User == "" {
			ld.Epic.SFTP.User, ld.Epic.SFTP.Password = es.SFTP.User, es.SFTP.Password
		}
		if ld.Epic.SFTP.HostKeyFile == "" {
			ld.Epic.SFTP.HostKeyFile = es.SFTP.HostKeyFile + ".pub"
		}
		if tr.Fusion.BaseURL == "" {
			tr.Fusion = ld.Fusion
		}
		// nightly-catchup's worker master refresh reads Epic's provider
		// master from epicsim's /sim/ listener.
		if tr.EpicProviders == "" && es.Inbound.SimAddr != "" {
			tr.EpicProviders = "http://" + es.Inbound.SimAddr + "/sim/providers"
		}
		if !f.noTraffic && fsim.Sim.DayInterval == 0 {
			fsim.Sim.DayInterval = 30 * time.Second // fusionsim's side of the day: hires, transfers, suppliers
		}
		if f.flowsFile != "" {
			ing.FlowsFile, tr.FlowsFile, ld.FlowsFile, rc.FlowsFile, co.FlowsFile = f.flowsFile, f.flowsFile, f.flowsFile, f.flowsFile, f.flowsFile
		}
		upFHIR(f, &es, &ing)
		if s.name == "fusionsim" && f.fusionURL != "" {
			continue
		}
		if err := add(s.name, s.base, s.build); err != nil {
			return units, err
		}
	}
	return units, nil
}

// httpHandler is sinew up's HTTP listener: the operational endpoints, and
// the routes services expose (the loader's ESS callbacks).
func httpHandler(units []unit, ops http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", ops)
	for _, u := range units {
		if r, ok := u.svc.(interface{ Routes(*http.ServeMux) }); ok {
			r.Routes(mux)
		}
	}
	return mux
}

// auditSecret is $SINEW_AUDIT_SECRET, or a random key kept in the data dir
// so patient references stay comparable across restarts.
func auditSecret(dataDir string) ([]byte, error) {
	if s := os.Getenv("SINEW_AUDIT_SECRET"); s != "" {
		return []byte(s), nil
	}
	path := filepath.Join(dataDir, "audit.secret")
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		return []byte(strings.TrimSpace(string(b))), nil
	} else if !errors.Is(err, os.ErrNotExist) && err != nil {
		return nil, fmt.Errorf("audit secret: %w", err)
	}
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return nil, err
	}
	s := hex.EncodeToString(k[:])
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("audit secret: %w", err)
	}
	return []byte(s), nil
}

// upIngest applies sinew up's flags to ingest's settings (flags win over
// the config file). Without an fsync per write (--sync-always=false) group
// commit is off: an atomic batch would save no fsync and only add
// nats-server's staging store (36% fewer receipts a second over 32
// connections with it, docs/benchmarks.md).
func upIngest(f upFlags, ing *ingest.Config) {
	ing.MLLPAddr, ing.DropDir = f.mllpAddr, filepath.Join(f.dataDir, "drop")
	if !f.syncAlways {
		ing.HL7.GroupCommit.Off = true
	}
}

// upFHIR points ingest's FHIR intake at epicsim's FHIR server, both on
// sinew up's HTTP listener: epicsim fetches the client's JWKS from
// ingest's route, as an Epic instance fetches a registered JWKS URL.
// With traffic only; a config file's own fhir settings are kept.
// What is read comes from flows.yaml (intake.fhir).
func upFHIR(f upFlags, es *epicsim.Config, ing *ingest.Config) {
	if f.noTraffic && !es.FHIR.Enabled {
		return
	}
	es.FHIR.Enabled = true
	// The traffic's OpTime cases and Beaker results are charted as
	// Encounters and Observations (the FHIR reconciliations' Epic side).
	es.FHIR.Live = es.FHIR.Live || !f.noTraffic
	if es.FHIR.Addr == "" {
		es.FHIR.URL = "http://" + f.httpAddr
	}
	if len(es.FHIR.Clients) == 0 {
		es.FHIR.Clients = []epicsim.FHIRClient{{ID: "sinew", JWKSURL: "http://" + f.httpAddr + ingest.JWKSPath}}
	}
	if ing.FHIR.BaseURL != "" {
		return
	}
	// The round interval is configurable (ingest.fhir.interval, env
	// SINEW_INGEST_FHIR_INTERVAL): tests and demos want changes in seconds.
	interval := ing.FHIR.Interval
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	base := es.FHIR.URL
	if es.FHIR.Addr != "" {
		base = "http://" + es.FHIR.Addr
	}
	ing.FHIR = ingest.FHIRConfig{
		BaseURL: base + epicsim.FHIRBase, TokenURL: base + "/oauth2/token", ClientID: es.FHIR.Clients[0].ID,
		KeyFile: filepath.Join(f.dataDir, "fhir", "client-key.pem"), GenerateKey: true,
		// The types read are the flows' intake.fhir declarations (flows.yaml).
		Interval: interval,
	}
}
