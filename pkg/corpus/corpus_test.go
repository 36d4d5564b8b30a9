package corpus

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Skipf and Fatalf instead of
// stopping the goroutine, so both outcomes can be asserted.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

// workspace makes root/ws/go.work and root/ws/pkg/x, with the corpus
// beside ws when withCorpus.
func workspace(t *testing.T, withCorpus bool) (pkgDir, corpus string) {
	t.Helper()
	root := t.TempDir()
	pkgDir = filepath.Join(root, "ws", "pkg", "x")
	corpus = filepath.Join(root, "shared", "corpus")
	if err := os.MkdirAll(pkgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "ws", "go.work"), []byte("go 1.26.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if withCorpus {
		if err := os.MkdirAll(filepath.Join(corpus, "hl7v2"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return pkgDir, corpus
}

func TestLocateWalksUpToTheWorkspace(t *testing.T) {
	t.Setenv(EnvDir, "")
	pkgDir, corpus := workspace(t, true)
	got, err := Locate(pkgDir)
	if err != nil || got != corpus {
		t.Fatalf("Locate = %q, %v; want %q", got, err, corpus)
	}
	if _, err := Locate(t.TempDir()); err == nil {
		t.Error("Locate outside a workspace succeeded")
	}
	t.Setenv(EnvDir, "/elsewhere/corpus")
	if got, _ := Locate(pkgDir); got != "/elsewhere/corpus" {
		t.Errorf("with %s: %q", EnvDir, got)
	}
}

func TestAbsentCorpusSkipsOrFails(t *testing.T) {
	t.Setenv(EnvDir, "")
	pkgDir, corpus := workspace(t, true)
	for _, tc := range []struct {
		name, sub, require string
		wantDir            string
		wantSkip, wantFail bool
	}{
		{name: "present", sub: "hl7v2", wantDir: filepath.Join(corpus, "hl7v2")},
		{name: "present, required", sub: "hl7v2", require: "1", wantDir: filepath.Join(corpus, "hl7v2")},
		{name: "absent", sub: "fusion", wantSkip: true},
		{name: "absent, required", sub: "fusion", require: "1", wantFail: true},
		{name: "absent, required other than 1", sub: "fusion", require: "yes", wantSkip: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvRequire, tc.require)
			r := &recorder{TB: t}
			got := dirFrom(r, pkgDir, tc.sub)
			if got != tc.wantDir || (r.skipped != "") != tc.wantSkip || (r.failed != "") != tc.wantFail {
				t.Fatalf("dir %q, skipped %q, failed %q", got, r.skipped, r.failed)
			}
			msg := r.skipped + r.failed
			if msg != "" && (!strings.Contains(msg, "../shared/corpus/"+tc.sub) || !strings.Contains(msg, EnvRequire+"=1")) {
				t.Errorf("message %q names neither the corpus nor %s", msg, EnvRequire)
			}
		})
	}
}

// TestThisWorkspace: in this repository the corpus is found beside it, or
// the test says why not.
func TestThisWorkspace(t *testing.T) {
	dir := Dir(t, "hl7v2")
	if files := Glob(t, "hl7v2", "*.hl7"); len(files) == 0 || filepath.Dir(files[0]) != dir {
		t.Fatalf("no HL7 files in %s", dir)
	}
	if b := ReadFile(t, "fusion/GlInterface.synthetic.csv"); len(b) == 0 {
		t.Fatal("empty GlInterface sample")
	}
}
