package ingest_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/streams"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
	"github.com/sinewhq/sinew/services/epicsim"
)

// bySubject reads FHIR_IN: subject → the resourceType/id of its events, in order.
func (e *fhirEnv) bySubject(t *testing.T) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := e.js.Stream(ctx, streams.FHIRIn)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(ctx)
	got := map[string][]string{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var ev sinewv1.FhirResourceReceived
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		got[m.Subject] = append(got[m.Subject], ev.GetResourceType()+"/"+ev.GetResourceId())
		if m.Subject == streams.FHIRSubject("deleted") && (ev.GetEnvelope().BusinessKey("deleted") != "true" || !strings.Contains(string(ev.GetJson()), `"DELETE"`)) {
			t.Errorf("tombstone %s: keys %v, bytes %s", ev.GetResourceId(), ev.GetEnvelope().GetBusinessKeys(), ev.GetJson())
		}
	}
	return got
}

// TestFHIRBulkExportDeletedFileBecomesTombstonesAfterExpiredManifest: a
// second export with _since meets expired files (404) and fetches the
// manifest again; the resources the server deleted since the first
// export come as tombstones on fhir.in.deleted (type, id, the deleted
// file's line), once each; nothing else is stored twice.
func TestFHIRBulkExportDeletedFileBecomesTombstonesAfterExpiredManifest(t *testing.T) {
	simCfg := epicsim.DefaultFHIRConfig()
	simCfg.Volume = epicsim.FHIRVolume{Practitioners: 10, Days: 1}
	simCfg.Export = epicsim.ExportConfig{Polls: 0, LinesPerFile: 4}
	e := startFHIR(t, simCfg)
	e.cfg.Export.Group = "g"
	e.cfg.Export.Types = []string{"Practitioner"}
	e.cfg.Export.Since = true
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.sync(t).Export(ctx); err != nil {
		t.Fatal(err)
	}
	pracs := e.sim.Resources("Practitioner")
	gone := []string{pracs[3], pracs[7]}
	for _, k := range gone {
		if err := e.sim.Delete("Practitioner", strings.TrimPrefix(k, "Practitioner/")); err != nil {
			t.Fatal(err)
		}
	}
	e.sim.ExpireExportFiles()
	f := e.sync(t) // a new process: _since from KV
	if err := f.Export(ctx); err != nil {
		t.Fatal(err)
	}
	got := e.bySubject(t)
	tomb := got[streams.FHIRSubject("deleted")]
	sort.Strings(tomb)
	sort.Strings(gone)
	if strings.Join(tomb, " ") != strings.Join(gone, " ") {
		t.Errorf("tombstones %v, want %v", tomb, gone)
	}
	exactlyOnce(t, countOf(got[streams.FHIRSubject("Practitioner")]), pracs)
	if st := f.Stats(); st.Deleted != 2 || st.ExpiredManifests != 1 || st.Published != 0 {
		t.Errorf("stats %+v", st)
	}
	if e.sim.ExpiredManifests() != 1 || e.sim.Jobs() != 0 || e.sim.Kickoffs() != 2 {
		t.Errorf("expired %d, jobs left %d, kick-offs %d", e.sim.ExpiredManifests(), e.sim.Jobs(), e.sim.Kickoffs())
	}

	audited := 0
	if err := audit.Read(ctx, e.js, "audit.>", func(en audit.Entry) error {
		for _, ev := range en.Events {
			if strings.HasPrefix(ev.GetDetail(), "bulk export deleted: 2 Practitioner") {
				audited++
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if audited != 1 {
		t.Errorf("%d audit records of the tombstones, want 1", audited)
	}

	// A third export (its _since window may overlap the deletions): the
	// tombstones are not committed again.
	if err := e.sync(t).Export(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(e.bySubject(t)[streams.FHIRSubject("deleted")]); n != 2 {
		t.Errorf("%d tombstones after a third export, want 2", n)
	}
}

func countOf(keys []string) map[string]int {
	m := map[string]int{}
	for _, k := range keys {
		m[k]++
	}
	return m
}
