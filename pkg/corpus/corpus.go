// Package corpus finds the external conformance corpus for tests: public
// HL7 v2 samples and Fusion payload shapes kept beside the workspace in
// ../shared/corpus, never copied into the repository.
//
// A clone has no ../shared, so a test that reads the corpus skips, saying
// so; with SINEW_REQUIRE_CORPUS=1 (CI) a missing corpus fails the test
// instead. Every behaviour the corpus checks is also covered by synthetic
// fixtures in the packages' testdata, so a skip loses breadth, not a rule.
package corpus

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

const (
	// EnvRequire, set to 1, turns a missing corpus into a test failure.
	EnvRequire = "SINEW_REQUIRE_CORPUS"
	// EnvDir names the corpus directory when it is not ../shared/corpus
	// beside the workspace root.
	EnvDir = "SINEW_CORPUS_DIR"
)

// Required reports whether the environment demands the corpus.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// Locate returns the corpus directory for a test running in dir: $EnvDir,
// else shared/corpus beside the workspace root (the nearest parent of dir
// holding go.work). It does not check that the directory exists.
func Locate(dir string) (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return filepath.Abs(d)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("corpus: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return filepath.Join(filepath.Dir(d), "shared", "corpus"), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("corpus: no go.work above %s", dir)
		}
	}
}

// Dir returns the corpus subdirectory sub (e.g. "hl7v2"). When it is
// absent the test is skipped, or fails if the corpus is required.
func Dir(tb testing.TB, sub string) string {
	tb.Helper()
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatalf("corpus: %v", err)
		return ""
	}
	return dirFrom(tb, wd, sub)
}

func dirFrom(tb testing.TB, wd, sub string) string {
	tb.Helper()
	root, err := Locate(wd)
	if err == nil {
		d := filepath.Join(root, sub)
		var st fs.FileInfo
		if st, err = os.Stat(d); err == nil && st.IsDir() {
			return d
		} else if err == nil {
			err = fmt.Errorf("%s is not a directory", d)
		}
	}
	absent(tb, "../shared/corpus/"+sub, err)
	return ""
}

// absent skips the test, or fails it when the corpus is required.
func absent(tb testing.TB, what string, err error) {
	tb.Helper()
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	detail := ""
	if err != nil {
		detail = " (" + err.Error() + ")"
	}
	if Required() {
		tb.Fatalf("conformance corpus %s: not present%s; %s=1 requires it", what, detail, EnvRequire)
		return
	}
	tb.Skipf("conformance corpus %s: not present%s (set %s=1 to require it)", what, detail, EnvRequire)
}

// Path returns the corpus file rel (e.g. "hl7v2/ADT_A01__hapi_cr.hl7"),
// skipping or failing as Dir does when it is absent.
func Path(tb testing.TB, rel string) string {
	tb.Helper()
	dir := Dir(tb, filepath.Dir(rel))
	if dir == "" {
		return ""
	}
	p := filepath.Join(dir, filepath.Base(rel))
	if _, err := os.Stat(p); err != nil {
		absent(tb, "../shared/corpus/"+rel, err)
		return ""
	}
	return p
}

// ReadFile returns the bytes of the corpus file rel, skipping or failing
// as Dir does when it is absent.
func ReadFile(tb testing.TB, rel string) []byte {
	tb.Helper()
	p := Path(tb, rel)
	if p == "" {
		return nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatalf("corpus: %v", err)
	}
	return b
}

// Glob returns the files of the corpus subdirectory sub matching pattern,
// skipping or failing as Dir does when there are none.
func Glob(tb testing.TB, sub, pattern string) []string {
	tb.Helper()
	dir := Dir(tb, sub)
	if dir == "" {
		return nil
	}
	files, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		tb.Fatalf("corpus: %v", err)
	}
	if len(files) == 0 {
		absent(tb, "../shared/corpus/"+sub+"/"+pattern, nil)
	}
	return files
}

// Seeds is Glob for inputs that only add breadth (fuzz seeds, extra
// cases): without the corpus it returns nil and the test goes on, unless
// the corpus is required.
func Seeds(tb testing.TB, sub, pattern string) []string {
	tb.Helper()
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatalf("corpus: %v", err)
	}
	root, err := Locate(wd)
	if err == nil {
		var files []string
		files, err = filepath.Glob(filepath.Join(root, sub, pattern))
		if err == nil && len(files) > 0 {
			return files
		}
	}
	if Required() {
		tb.Fatalf("conformance corpus ../shared/corpus/%s/%s: not present; %s=1 requires it", sub, pattern, EnvRequire)
	}
	return nil
}
