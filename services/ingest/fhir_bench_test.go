package ingest_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/natsembed"
	"github.com/sinewhq/sinew/pkg/smart"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/epicsim"
	"github.com/sinewhq/sinew/services/ingest"

	"github.com/nats-io/nats.go"
)

// BenchmarkFHIRBulkExportToJetStream: one Group $export of
// practitioners and roles from epicsim (real HTTP, gzip NDJSON) into
// FHIR_IN on an embedded nats-server, in atomic batches with a few in
// flight; durable (fsync every write, sinew up's default) beside
// --sync-always=false. The figure is resources committed per
// second over the whole export (kick-off to DELETE).
func BenchmarkFHIRBulkExportToJetStream(b *testing.B) {
	for _, mode := range []struct {
		name string
		sync bool
	}{{"durable", true}, {"sync-always=false", false}} {
		b.Run(mode.name, func(b *testing.B) {
			srv, err := natsembed.Start(natsembed.Options{Addr: "127.0.0.1:0", StoreDir: b.TempDir(), SyncAlways: mode.sync})
			if err != nil {
				b.Fatal(err)
			}
			defer natsembed.Stop(srv)
			nc, err := nats.Connect(srv.ClientURL())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			ctx := context.Background()
			bb, err := bus.New(nc, bus.Config{}, bus.Options{Service: "ingest", Logger: zerolog.Nop(), AuditSecret: []byte("k")})
			if err != nil {
				b.Fatal(err)
			}
			if err := streams.New(streams.DefaultOptions()).Ensure(ctx, bb.JetStream()); err != nil {
				b.Fatal(err)
			}
			const practitioners = 2500 // 5,000 resources with their roles
			simCfg := epicsim.DefaultFHIRConfig()
			simCfg.Volume = epicsim.FHIRVolume{Practitioners: practitioners, Days: 1}
			simCfg.Export = epicsim.ExportConfig{Polls: 0, LinesPerFile: 1000}
			key, _ := smart.GenerateKey(smart.ES384)
			p, _ := key.MarshalPEM()
			keyFile := filepath.Join(b.TempDir(), "k.pem")
			_ = os.WriteFile(keyFile, p, 0o600)
			total := 0
			var elapsed time.Duration
			for i := 0; b.Loop(); i++ {
				sim := epicsim.NewFHIRSim(simCfg, time.Now(), nil)
				hs := httptest.NewServer(sim)
				sim.SetURL(hs.URL)
				sim.Register(epicsim.FHIRClient{ID: "sinew", JWKS: string(mustJSON(smart.Set(key)))})
				f, err := ingest.NewFHIRSync(ctx, ingest.FHIRConfig{BaseURL: sim.BaseURL(), TokenURL: sim.TokenURL(), ClientID: "sinew", KeyFile: keyFile,
					Source: "epic-" + string(rune('a'+i%26)), Export: ingest.ExportSync{Group: "g", Types: []string{"Practitioner", "PractitionerRole"}}}, bb)
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if err := f.Export(ctx); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
				hs.Close()
				if st := f.Stats(); st.Published+st.Duplicates != 2*practitioners {
					b.Fatalf("stats %+v", st)
				}
				total += f.Stats().Published
				_ = bb.JetStream().DeleteStream(ctx, streams.FHIRIn) // a fresh stream: no duplicates of the last run
				if err := streams.New(streams.DefaultOptions()).Ensure(ctx, bb.JetStream()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(total)/elapsed.Seconds(), "resources/s")
		})
	}
}
