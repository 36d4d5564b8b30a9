package epicsim_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/fhir"
	"github.com/sinewhq/sinew/services/epicsim"
)

func TestFHIRExportKickoffPollFilesDelete(t *testing.T) {
	cfg := epicsim.DefaultFHIRConfig()
	cfg.Export = epicsim.ExportConfig{Polls: 2, RetryAfter: time.Second, Every429: 2, LinesPerFile: 7}
	sim, key := fhirServer(t, cfg)
	c := client(t, sim, key)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	loc, err := c.Kickoff(ctx, sim.BaseURL()+"/Group/g1/$export?_type=Practitioner,Device")
	if err != nil {
		t.Fatal(err)
	}
	var m *fhir.Manifest
	var waits []time.Duration
	for m == nil {
		var wait time.Duration
		m, wait, err = c.Poll(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		if m == nil {
			waits = append(waits, wait)
		}
	}
	if len(waits) != 2 || waits[0] != time.Second || waits[1] != time.Second {
		t.Errorf("waits %v: want a 202 and a 429, each with Retry-After 1", waits)
	}
	lines := 0
	for _, f := range m.Output {
		body, err := c.Download(ctx, f.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(body)
		body.Close()
		n := fhir.NewNDJSONReader(strings.NewReader(string(b)), fhir.ParseOptions{})
		for {
			r, _, err := n.Next()
			if err != nil {
				break
			}
			if r.Type != "Practitioner" {
				t.Errorf("%s in a Practitioner file", r.Type)
			}
			lines++
		}
	}
	if lines != len(sim.Resources("Practitioner")) || len(m.Output) < 2 || len(m.Error) != 1 {
		t.Errorf("%d lines in %d files, %d error files", lines, len(m.Output), len(m.Error))
	}
	if err := c.DeleteJob(ctx, loc); err != nil || sim.Jobs() != 0 {
		t.Errorf("delete: %v, %d jobs", err, sim.Jobs())
	}
	if _, err := c.Download(ctx, m.Output[0].URL); err == nil {
		t.Error("a deleted job's file still served")
	}
}
