package ingest_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/ingest"
)

const resoluteFile = "H|HB-1|2026-01-16T02:00:00Z|HB|2026-01-15\nD|L1|2026-01-15|10|6010|40100|COM|BCBS|CHG||5.00|1|x\nD|L2|2026-01-15|10|1000|11010|COM|BCBS|CHG|5.00||1|y\nT|2|5.00|5.00\n"

func TestDroppedFileIsStoredAnnouncedOnceAndMoved(t *testing.T) {
	drop := t.TempDir()
	e := start(t, streams.DefaultOptions(), func(c *ingest.Config) {
		c.FlowsFile = "../../flows.yaml" // the drop folders are the flows'
		c.DropDir = drop
		c.DropPoll = 50 * time.Millisecond
		c.DropSettle = 0
	})
	dir := filepath.Join(drop, "resolute")
	if err := os.WriteFile(filepath.Join(dir, "hb_20260115.txt"), []byte(resoluteFile), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stream, err := e.js.Stream(ctx, streams.BatchIn)
	if err != nil {
		t.Fatal(err)
	}
	waitMsgs := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			info, err := stream.Info(ctx)
			if err == nil && info.State.Msgs == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("BATCH_IN holds %d manifests, want %d", info.State.Msgs, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitMsgs(1)
	m, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var man sinewv1.BatchManifest
	if err := proto.Unmarshal(m.Data, &man); err != nil {
		t.Fatal(err)
	}
	if m.Subject != "batch.in.resolute-gl" || man.LineCount != 4 || man.FileName != "hb_20260115.txt" || len(man.Sha256) != 64 || man.SizeBytes != int64(len(resoluteFile)) {
		t.Errorf("manifest %s %+v", m.Subject, &man)
	}
	obj, err := e.js.ObjectStore(ctx, streams.ObjBatchFiles)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := obj.GetBytes(ctx, man.ObjectKey)
	if err != nil || string(stored) != resoluteFile {
		t.Errorf("object store copy differs: %v", err)
	}
	// The same bytes under another name: moved aside, not announced again.
	if err := os.WriteFile(filepath.Join(dir, "hb_again.txt"), []byte(resoluteFile), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "hb_again.txt")); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("duplicate file never taken")
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitMsgs(1)
	done, _ := filepath.Glob(filepath.Join(dir, "done", "*"))
	if len(done) != 2 {
		t.Errorf("done/ holds %v", done)
	}
}
