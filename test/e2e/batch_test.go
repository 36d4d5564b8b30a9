package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/fbdi"
	"github.com/sinewhq/sinew/pkg/resolute"
)

// drop writes a Resolute file into the drop folder the way a sender
// should: under a .part name, then renamed.
func drop(t *testing.T, dataDir, name string, write func(*os.File)) {
	t.Helper()
	dropInto(t, dataDir, "resolute", name, write)
}

// dropInto is drop into drop folder folder.
func dropInto(t *testing.T, dataDir, folder, name string, write func(*os.File)) {
	t.Helper()
	dir := filepath.Join(dataDir, "drop", folder)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, name+".part"))
	if err != nil {
		t.Fatal(err)
	}
	write(f)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute) // settled already
	_ = os.Chtimes(f.Name(), old, old)
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func waitStream(t *testing.T, js jetstream.JetStream, name string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := js.Stream(context.Background(), name)
		if err == nil {
			if info, err := st.Info(context.Background()); err == nil && info.State.Msgs >= n {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never held %d messages", name, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestResoluteFileToFBDICommand drops a day's Resolute file into a running
// `sinew up`: it is stored, validated, mapped, written as GlInterface.zip and
// commanded to Fusion once; a second copy is ignored; an unbalanced file is
// dead-lettered with its report and nothing of it is commanded.
func TestResoluteFileToFBDICommand(t *testing.T) {
	dir := t.TempDir()
	s, _ := up(t, dir, newAddrs(t))
	js := s.js(t)
	ctx := context.Background()
	day := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	var lines int64
	gen := func(f *os.File) {
		var err error
		lines, _, err = resolute.Generate(f, resolute.GenerateOptions{BatchID: "HB-20260115-E2E", Kind: "HB", PostingDate: day,
			Journals: 6, LinesPerJournal: 40, ServiceAreas: []string{"10", "20"}, CostCenters: []string{"6010", "6020"},
			RevenueAccounts: []string{"40100", "40200"}, ARAccount: "11010", Seed: 9})
		if err != nil {
			t.Fatal(err)
		}
	}
	drop(t, dir, "hb_20260115.txt", gen)
	waitStream(t, js, "FUSION_CMD", 1)

	st, _ := js.Stream(ctx, "FUSION_CMD")
	m, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var cmd sinewv1.JournalBatch
	if err := proto.Unmarshal(m.Data, &cmd); err != nil {
		t.Fatal(err)
	}
	if m.Subject != "fusion.cmd.resolute-gl.import" || cmd.BatchId != "HB-20260115-E2E" || len(cmd.Journals) == 0 ||
		cmd.Envelope.CrosswalkVersion == "" || cmd.JeSource != "Epic Resolute" {
		t.Fatalf("command %s %+v", m.Subject, &cmd)
	}
	store, err := js.ObjectStore(ctx, "fbdi_files")
	if err != nil {
		t.Fatal(err)
	}
	zipBytes, err := store.GetBytes(ctx, cmd.ObjectKey)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := fbdi.Check(ctx, strings.NewReader(string(zipBytes)), int64(len(zipBytes)), fbdi.Options{})
	if err != nil || !rep.OK() || rep.Totals.Lines != lines || rep.Totals.DR != rep.Totals.CR {
		t.Fatalf("GlInterface.zip: %v %+v", err, rep)
	}

	// The same bytes again: ingested once.
	drop(t, dir, "hb_20260115_resent.txt", gen)
	// An unbalanced file: rejected whole, dead-lettered with its report.
	drop(t, dir, "hb_bad.txt", func(f *os.File) {
		f.WriteString("H|HB-BAD|2026-01-16T02:00:00Z|HB|2026-01-15\n" +
			"D|B1|2026-01-15|10|6010|40100|COM|BCBS|CHG||10.00|1|x\n" +
			"D|B2|2026-01-15|10|6010|11010|COM|BCBS|CHG|9.00||1|y\n" +
			"T|2|9.00|10.00\n")
	})
	var letters []string
	deadline := time.Now().Add(20 * time.Second)
	for len(letters) == 0 {
		out, err := s.cli(t, "dlq", "list", "--json")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line != "" {
				letters = append(letters, line)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the unbalanced batch was not dead-lettered")
		}
		time.Sleep(200 * time.Millisecond)
	}
	var l struct{ Kind, Reason, Subject string }
	if err := json.Unmarshal([]byte(letters[0]), &l); err != nil {
		t.Fatal(err)
	}
	if l.Kind != "permanent" || !strings.Contains(l.Reason, "batch HB-BAD rejected") || !strings.Contains(l.Reason, "unbalanced") {
		t.Errorf("dead letter %+v", l)
	}
	if info, _ := st.Info(ctx); info.State.Msgs != 1 {
		t.Errorf("FUSION_CMD holds %d commands, want 1 (duplicate or bad batch commanded)", info.State.Msgs)
	}
	batches, _ := js.Stream(ctx, "BATCH_IN")
	if info, _ := batches.Info(ctx); info.State.Msgs != 2 {
		t.Errorf("BATCH_IN holds %d manifests, want 2 (the good file once, the bad one)", info.State.Msgs)
	}

	// An account the crosswalk does not know: dead-lettered; an analyst loads a
	// crosswalk that maps it and replays; the batch goes through once.
	drop(t, dir, "hb_unmapped.txt", func(f *os.File) {
		f.WriteString("H|HB-NEWACCT|2026-01-16T02:00:00Z|HB|2026-01-15\n" +
			"D|N1|2026-01-15|10|6010|40999|COM|BCBS|CHG||7.00|1|new service line\n" +
			"D|N2|2026-01-15|10|6010|11010|COM|BCBS|CHG|7.00||1|AR offset\n" +
			"T|2|7.00|7.00\n")
	})
	var seq string
	deadline = time.Now().Add(20 * time.Second)
	for seq == "" {
		out, _ := s.cli(t, "dlq", "list", "--json")
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var dl struct {
				Seq    uint64
				Reason string
			}
			if json.Unmarshal([]byte(line), &dl) == nil && strings.Contains(dl.Reason, "HB-NEWACCT") {
				if !strings.Contains(dl.Reason, "no crosswalk mapping") {
					t.Errorf("reason %q", dl.Reason)
				}
				seq = fmt.Sprint(dl.Seq)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the unmapped batch was not dead-lettered")
		}
		time.Sleep(200 * time.Millisecond)
	}
	demo, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "demo", "coa.csv"))
	if err != nil {
		t.Fatal(err)
	}
	fixed := filepath.Join(t.TempDir(), "coa-v2.csv")
	if err := os.WriteFile(fixed, append(demo, []byte("10,6010,40999,*,*,2026-01-01,,101,6010,40100,300,000\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := s.cli(t, "crosswalk", "load", fixed); err != nil || !strings.Contains(out, "is current") {
		t.Fatalf("crosswalk load: %v\n%s", err, out)
	}
	if out, err := s.cli(t, "dlq", "replay", seq, "--reason", "account 40999 mapped"); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	waitStream(t, js, "FUSION_CMD", 2)
	s.stop(t)
}
