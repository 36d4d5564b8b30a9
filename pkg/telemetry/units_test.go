package telemetry

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDurationsNameTheirUnit: a duration goes to the log as <name>_ms, an
// integer, so a reader needs no zerolog setting to know what 8000 means.
func TestDurationsNameTheirUnit(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := NewLogger(&buf, DefaultConfig(), "loader")
	wait := 8 * time.Second
	log.Warn().Int64("wait_ms", wait.Milliseconds()).Msg("Fusion step failed; resuming from the recorded state")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not JSON: %v: %s", err, buf.String())
	}
	if line["wait_ms"] != float64(8000) {
		t.Errorf("wait_ms = %v, want 8000: %s", line["wait_ms"], buf.String())
	}
}

// zerologDur matches zerolog's Dur and Durs (a chained .Dur( or a line
// continuing with Dur(), whose unit the line does not show.
var zerologDur = regexp.MustCompile(`(^|[.\s])Durs?\(`)

// TestNoUnitlessDurationsInLogs reads every non-test Go file of the
// workspace: no log call may use zerolog's Dur.
func TestNoUnitlessDurationsInLogs(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Skipf("not in the workspace (%v)", err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == ".tools" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, ".pb.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		for i, l := range strings.Split(string(data), "\n") {
			if zerologDur.MatchString(l) && !strings.HasPrefix(strings.TrimSpace(l), "//") {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d: zerolog Dur logs a number without its unit; use Int64(\"<name>_ms\", d.Milliseconds()): %s", rel, i+1, strings.TrimSpace(l))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d Go files checked under %s", checked, root)
	}
}

func TestIsTerminal(t *testing.T) {
	t.Parallel()
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is a terminal")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("a regular file is a terminal")
	}
	var buf bytes.Buffer
	log := NewLogger(&buf, Config{LogFormat: "console"}, "x")
	log.Info().Msg("plain")
	if strings.Contains(buf.String(), "\x1b[") {
		t.Errorf("colour escapes written to a non-terminal: %q", buf.String())
	}
}
