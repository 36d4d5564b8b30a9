package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/audit"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// TestTrackUnderUp: under sinew up the console keeps the tracking index
// in <data dir>/track and answers `sinew track` over NATS (the embedded
// server's permission table: the console user reads AUDIT with an
// ordered consumer and replies to the admin's request); a wiped index is
// rebuilt from AUDIT at the next start.
func TestTrackUnderUp(t *testing.T) {
	dir := t.TempDir()
	a := newAddrs(t)
	s, _ := up(t, dir, a)
	ctx := context.Background()
	if err := audit.NewWriter(s.js(t), "cli:e2e-track").Write(ctx, &sinewv1.AuditEvent{Actor: "e2e", Flow: "willow-inventory", Hop: "ingest",
		Outcome: "ok", BusinessKeys: sinewv1.KeysOf("control_id", "E2E-TRACK-1")}); err != nil {
		t.Fatal(err)
	}
	track := func() string {
		t.Helper()
		var out string
		var err error
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if out, err = s.cli(t, "track", "E2E-TRACK-1", "--json"); err == nil {
				return out
			}
		}
		t.Fatalf("sinew track: %v\n%s", err, out)
		return ""
	}
	if out := track(); !strings.Contains(out, `"hop":"ingest"`) || strings.Count(out, "\n") != 1 {
		t.Fatalf("sinew track: %s", out)
	}
	if out, err := s.cli(t, "track", "E2E-NOBODY"); err == nil || !strings.Contains(out, "no message with that identifier") {
		t.Errorf("sinew track of an unknown id: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "track")); err != nil {
		t.Fatalf("the index is not in the data dir: %v", err)
	}
	s.stop(t)

	if err := os.RemoveAll(filepath.Join(dir, "track")); err != nil {
		t.Fatal(err)
	}
	s, _ = up(t, dir, a)
	if out := track(); strings.Count(out, "\n") != 1 {
		t.Fatalf("sinew track after the index was wiped: %s", out)
	}
	s.stop(t)
}
