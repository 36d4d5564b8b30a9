package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/track"
	"github.com/sinewhq/sinew/pkg/triage"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// TestTrackTriageAndAuditQueryVerbs runs the operator's verbs against a
// real server: a message found by its control id and by its patient, a
// variance that fails recon report until it is resolved, and the privacy
// officer's query, which is itself on the trail.
func TestTrackTriageAndAuditQueryVerbs(t *testing.T) {
	srv, nc, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	url := srv.ClientURL()
	dir := t.TempDir()
	secret := "test-secret"
	if err := os.WriteFile(filepath.Join(dir, "audit.secret"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The console's part: its index, and the lookups the CLI sends it.
	idx, err := track.OpenIndex(filepath.Join(dir, "track"), track.IndexConfig{})
	if err != nil {
		t.Fatal(err)
	}
	indexed := make(chan struct{})
	go func() { _ = track.NewIndexer(js, idx, track.IndexerConfig{}).Run(ctx, nil); close(indexed) }()
	defer func() { cancel(); <-indexed; _ = idx.Close() }()
	if err := track.Serve(ctx, nc, js, idx); err != nil {
		t.Fatal(err)
	}
	ref := audit.PatientRef([]byte(secret), "PID-3:WILLOW", "MRN-777")
	w := audit.NewWriter(js, "ingest@test").Keyed([]byte(secret))
	for _, hop := range []string{"ingest", "transform", "load"} {
		if err := w.Write(ctx, &sinewv1.AuditEvent{Actor: "ingest@test", Flow: "willow-inventory", Hop: hop, Outcome: "ok",
			PatientRefs: []string{ref}, BusinessKeys: sinewv1.KeysOf("control_id", "CTL-1")}); err != nil {
			t.Fatal(err)
		}
	}
	conn := []string{"--nats", url, "--data-dir", dir}
	var out string
	for deadline := time.Now().Add(30 * time.Second); ; {
		o, _, code := cli(t, "", append([]string{"track", "CTL-1", "--json"}, conn...)...)
		if code == 0 && strings.Count(o, "\n") == 3 {
			out = o
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("track CTL-1: %q", o)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var first track.Hop
	if err := json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &first); err != nil || first.Hop != "ingest" {
		t.Fatalf("first hop %+v (%v)", first, err)
	}
	if o, e, code := cli(t, "", append([]string{"track", "--patient", "--authority", "WILLOW", "MRN-777"}, conn...)...); code != 0 || !strings.Contains(o, "willow-inventory  load") {
		t.Fatalf("track --patient: %d %s %s", code, o, e)
	}
	// (the lookup's own audit record joins the patient's timeline: who looked is part of it)
	if _, _, code := cli(t, "", append([]string{"track", "NOPE"}, conn...)...); code == 0 {
		t.Error("track of an unknown id succeeded")
	}

	// Triage: a variance opened through the API blocks recon report.
	st, _ := triage.Open(ctx, js, triage.Config{Audit: w})
	it, _, err := st.Raise(ctx, "reconciler", triage.Item{Kind: triage.KindVariance, Flow: "willow-inventory", Source: "recon:tier1:2026-11-26:",
		Reason: "SINEW-RECON-002", Summary: "quantity 10 EA short"})
	if err != nil {
		t.Fatal(err)
	}
	if o, e, code := cli(t, "", append([]string{"triage", "list"}, conn...)...); code != 0 || !strings.Contains(o, it.ID) {
		t.Fatalf("triage list: %d %s %s", code, o, e)
	}
	if _, e, code := cli(t, "", append([]string{"recon", "report", "--flow", "willow-inventory"}, conn...)...); code == 0 || !strings.Contains(e, it.ID) {
		t.Fatalf("recon report with an open variance: exit %d, %s", code, e)
	}
	if _, e, code := cli(t, "", append([]string{"triage", "assign", it.ID, "--owner", "ana", "--actor", "lead"}, conn...)...); code != 0 {
		t.Fatalf("assign: %s", e)
	}
	if _, _, code := cli(t, "", append([]string{"triage", "resolve", it.ID}, conn...)...); code != 2 {
		t.Errorf("resolve without --note: exit %d, want 2", code)
	}
	if _, e, code := cli(t, "", append([]string{"triage", "resolve", it.ID, "--note", "count corrected in Willow", "--actor", "ana"}, conn...)...); code != 0 {
		t.Fatalf("resolve: %s", e)
	}
	if o, _, _ := cli(t, "", append([]string{"triage", "show", it.ID}, conn...)...); !strings.Contains(o, "resolved") || !strings.Contains(o, "count corrected") {
		t.Errorf("show: %s", o)
	}

	// The privacy officer's query finds the patient's three hops (and the
	// accesses: the track above, this query), and is itself audited, with
	// the patient as a keyed hash only.
	o, e, code := cli(t, "", append([]string{"audit", "query", "--patient", "MRN-777", "--authority", "WILLOW", "--actor", "privacy@test"}, conn...)...)
	if code != 0 || strings.Count(o, `"flow":"willow-inventory"`) != 3 || !strings.Contains(o, `"action":"track"`) {
		t.Fatalf("audit query --patient: %d %q %s", code, o, e)
	}
	o, _, _ = cli(t, "", append([]string{"audit", "query", "--user", "privacy@test"}, conn...)...)
	if !strings.Contains(o, `"audit-query"`) || !strings.Contains(o, ref) || strings.Contains(o, "MRN-777") {
		t.Errorf("the query's own record: %s", o)
	}
	if _, _, code := cli(t, "", append([]string{"audit", "query"}, conn...)...); code != 2 {
		t.Errorf("audit query without criteria: exit %d, want 2", code)
	}
}

// TestTrackWithoutAConsoleSaysSo: the index is the console's; with none
// running, sinew track says that, not "not found".
func TestTrackWithoutAConsoleSaysSo(t *testing.T) {
	srv, _, _ := natstest.StartWithTopology(t, streams.DefaultOptions())
	_, e, code := cli(t, "", "track", "CTL-1", "--nats", srv.ClientURL(), "--data-dir", t.TempDir())
	if code == 0 || !strings.Contains(e, "no console answers") {
		t.Fatalf("track without a console: exit %d, %q", code, e)
	}
}
