package e2e

import (
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNewBatchFlowByFlowsYAMLAndFolderRunsEndToEnd: a new batch flow is
// a flows.yaml entry and a flows/<id>/ folder, nothing else. In a copy of
// the repository the test adds testdata/newflow's entry to flows.yaml and
// its package as services/transform/flows/resolute-west/, runs go generate
// (the registry's list of flow packages) and builds sinew; under that
// `sinew up` a Resolute file dropped into drop/resolute-west/ is imported
// into fusionsim once and its reconciliation passes, under the new flow.
func TestNewBatchFlowByFlowsYAMLAndFolderRunsEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go toolchain to build the copy with")
	}
	const flow = "resolute-west"
	root := copyRepo(t)
	entry, err := os.ReadFile(filepath.Join("testdata", "newflow", "flows.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	appendFile(t, filepath.Join(root, "flows.yaml"), entry)
	pkg := filepath.Join(root, "services", "transform", "flows", flow)
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join("testdata", "newflow", flow, "resolutewest.go"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "resolutewest.go"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, filepath.Join(root, "services", "transform", "registry", "all"), "go", "generate", ".")
	bin := filepath.Join(t.TempDir(), "sinew")
	run(t, root, "go", "build", "-o", bin, "./cmd/sinew")

	fusion := startFusion(t, "-step", "50ms", "-read-lag", "300ms")
	dir := t.TempDir()
	s, _ := upFrom(t, bin, root, dir, newAddrs(t), []string{"--fusion-url", fusion.url}, glEnv)
	const batch = "HB-20260115-WEST"
	dropInto(t, dir, flow, "west_20260115.txt", genDay(t, batch, 5))
	flowsFile := filepath.Join(root, "flows.yaml")
	deadline := time.Now().Add(120 * time.Second)
	for {
		out, err := s.cli(t, "recon", "report", "--flow", flow, "--batch", batch, "--flows", flowsFile)
		if err == nil && strings.Contains(out, "batch "+batch+": PASS ") {
			t.Logf("recon report:\n%s", out)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch %s of %s not reconciled PASS within 120 s (err %v):\n%s", batch, flow, err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	exactlyOnce(t, fusion, 2)
	if out, err := s.cli(t, "batches", "--flow", flow, "--flows", flowsFile); err != nil || !strings.Contains(out, batch) || !strings.Contains(out, "reconciled") {
		t.Errorf("sinew batches --flow %s: %v\n%s", flow, err, out)
	}
	s.stop(t)
}

// copyRepo copies the repository's files (not .git) into a temporary
// directory and returns it.
func copyRepo(t *testing.T) string {
	t.Helper()
	from, to := repoRoot(t), t.TempDir()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			// the repository's own files: not git's, build output, data or tools
			switch rel {
			case ".git", "bin", "var", ".tools", ".images", "deploy/compose/certs":
				return filepath.SkipDir
			}
			if d.Name() == "node_modules" || d.Name() == ".git" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		if !d.Type().IsRegular() || strings.HasSuffix(p, ".test") || rel == "cmd/sinew/sinew" || rel == "sinew" {
			return nil
		}
		return copyFile(p, filepath.Join(to, rel))
	})
	if err != nil {
		t.Fatal(err)
	}
	return to
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// run runs a command in dir and fails the test with its output if it fails.
func run(t *testing.T, dir string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
}
