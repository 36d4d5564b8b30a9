package main

import (
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/config"
	"github.com/sinewhq/sinew/services/epicsim"
	"github.com/sinewhq/sinew/services/ingest"
)

// TestUpFHIRInterval: ingest's FHIR round interval under `sinew up` is
// five minutes unless set (SINEW_INGEST_FHIR_INTERVAL or the config
// file), in either order of upFHIR and ingest's settings.
func TestUpFHIRInterval(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want time.Duration
	}{
		{"default", nil, 5 * time.Minute},
		{"env", map[string]string{"SINEW_INGEST_FHIR_INTERVAL": "2s"}, 2 * time.Second},
	} {
		lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
		f := upFlags{dataDir: t.TempDir(), httpAddr: "127.0.0.1:1"}
		// Settings first, then upFHIR.
		ing, es := ingest.DefaultConfig(), epicsim.DefaultConfig()
		if err := config.LoadEnv("SINEW_INGEST", &ing, lookup); err != nil {
			t.Fatal(err)
		}
		upFHIR(f, &es, &ing)
		if ing.FHIR.Interval != tc.want || ing.FHIR.BaseURL == "" {
			t.Errorf("%s, settings first: interval %v (base %q), want %v", tc.name, ing.FHIR.Interval, ing.FHIR.BaseURL, tc.want)
		}
		// upFHIR first (as sinew up runs it), then the settings.
		ing, es = ingest.DefaultConfig(), epicsim.DefaultConfig()
		upFHIR(f, &es, &ing)
		if err := config.LoadEnv("SINEW_INGEST", &ing, lookup); err != nil {
			t.Fatal(err)
		}
		if ing.FHIR.Interval != tc.want || ing.FHIR.BaseURL == "" {
			t.Errorf("%s, upFHIR first: interval %v, want %v", tc.name, ing.FHIR.Interval, tc.want)
		}
	}
}

// TestUpGroupCommitFollowsSyncAlways: ingest's group commit is on in the
// durable default and off when JetStream writes are not fsynced, whatever
// the settings say (there is no fsync to share then).
func TestUpGroupCommitFollowsSyncAlways(t *testing.T) {
	for _, sync := range []bool{true, false} {
		ing := ingest.DefaultConfig()
		upIngest(upFlags{dataDir: t.TempDir(), mllpAddr: "127.0.0.1:1", syncAlways: sync}, &ing)
		if ing.HL7.GroupCommit.Off == sync {
			t.Errorf("sync_always %v: group commit off = %v", sync, ing.HL7.GroupCommit.Off)
		}
		if ing.MLLPAddr != "127.0.0.1:1" {
			t.Errorf("mllp addr %q", ing.MLLPAddr)
		}
	}
}
