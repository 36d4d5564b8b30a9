// Command fusionsim runs the Fusion simulator on its own, without NATS:
// end-to-end tests start it as a separate process. With -bus it runs as a
// Sinew service on the bus instead (bus.Main's -config and environment).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/config"
	"github.com/sinewhq/sinew/services/fusionsim"
)

func main() {
	if i := slices.Index(os.Args, "-bus"); i > 0 {
		os.Args = slices.Delete(os.Args, i, i+1)
		cfg := fusionsim.DefaultConfig()
		bus.Main("fusionsim", &cfg, func(c *fusionsim.Config, b *bus.Bus) (bus.Service, error) {
			return fusionsim.New(*c, b)
		})
		return
	}
	if err := standalone(); err != nil {
		fmt.Fprintln(os.Stderr, "fusionsim:", err)
		os.Exit(1)
	}
}

func standalone() error {
	if os.Getenv("GOGC") == "" {
		// The simulator shares a test machine with what it measures: a
		// lazier collector keeps its share of the CPU small (its heap is
		// small either way).
		debug.SetGCPercent(400)
	}
	cfg := fusionsim.DefaultConfig()
	// Environment first (SINEW_FUSIONSIM_ADDR, SINEW_FUSIONSIM_SIM_STEP...), flags win.
	if err := config.Load("", bus.EnvPrefix("fusionsim"), &cfg); err != nil {
		return err
	}
	sc := &cfg.Sim
	fs := flag.NewFlagSet("fusionsim", flag.ContinueOnError)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address")
	fs.StringVar(&sc.ChartPath, "chart", sc.ChartPath, "chart-of-accounts CSV (default: built-in copy of deploy/demo/chart.csv)")
	fs.DurationVar(&sc.Step, "step", sc.Step, "duration of each ESS job state")
	fs.DurationVar(&sc.ReadLag, "read-lag", sc.ReadLag, "delay before posted journals show on journalBatches and ledgerBalances")
	fs.StringVar(&sc.Username, "user", sc.Username, "Basic auth user")
	fs.StringVar(&sc.Password, "password", sc.Password, "Basic auth password")
	tokens := fs.String("tokens", strings.Join(sc.BearerTokens, ","), "accepted bearer tokens, comma-separated")
	fs.Uint64Var(&sc.Seed, "seed", sc.Seed, "seed of fault rates")
	fs.Int64Var(&sc.FirstRequestID, "first-request-id", sc.FirstRequestID, "first ESS request id")
	fs.IntVar(&sc.ExpandLimit, "expand-limit", sc.ExpandLimit, "cap on expanded child collections (0: none)")
	fs.StringVar(&sc.SCMPath, "scm", sc.SCMPath, "SCM master data YAML (default: built-in copy of deploy/demo/fusion_scm.yaml)")
	fs.StringVar(&sc.StartingOnhand, "starting-onhand", sc.StartingOnhand, "on-hand quantity of every item in every subinventory at start (overrides the master data)")
	oauthKeys := fs.String("oauth-keys", strings.Join(sc.OAuth.PublicKeyFiles, ","), "PEM public keys (or certificates) that may sign OAuth JWT assertions, comma-separated")
	fs.DurationVar(&sc.OAuth.TokenTTL, "oauth-token-ttl", sc.OAuth.TokenTTL, "lifetime of issued OAuth tokens (default 1h)")
	fs.StringVar(&sc.OAuth.Audience, "oauth-audience", sc.OAuth.Audience, "required aud of OAuth assertions (default: not checked)")
	quiet := fs.Bool("quiet", false, "no request log on stderr")
	pprofAddr := fs.String("pprof-addr", "", "serve Go's /debug/pprof on this address (profiling; off when empty)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	sc.BearerTokens = nil
	for _, t := range strings.Split(*tokens, ",") {
		if t = strings.TrimSpace(t); t != "" {
			sc.BearerTokens = append(sc.BearerTokens, t)
		}
	}
	sc.OAuth.PublicKeyFiles = nil
	for _, f := range strings.Split(*oauthKeys, ",") {
		if f = strings.TrimSpace(f); f != "" {
			sc.OAuth.PublicKeyFiles = append(sc.OAuth.PublicKeyFiles, f)
		}
	}
	if !*quiet {
		sc.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	srv, err := fusionsim.NewServer(*sc)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *pprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		ln, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			return fmt.Errorf("pprof: %w", err)
		}
		go func() { _ = http.Serve(ln, mux) }()
	}
	return fusionsim.Serve(ctx, cfg.Addr, srv, func(a net.Addr) {
		// Tests wait for this line to learn the port (-addr 127.0.0.1:0).
		fmt.Fprintf(os.Stderr, "fusionsim listening on %s\n", a)
	})
}
