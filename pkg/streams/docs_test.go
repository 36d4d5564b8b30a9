package streams

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// architectureDoc is the page whose topology tables must match New.
var architectureDoc = filepath.Join("..", "..", "docs", "architecture.md")

// docTable returns the rows of the first Markdown table after heading
// (header and separator rows dropped), each row its trimmed cells.
func docTable(t *testing.T, doc, heading string) [][]string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s: no heading %q", architectureDoc, heading)
	}
	var rows [][]string
	for _, line := range strings.Split(rest, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			break
		}
		if !strings.HasPrefix(line, "|") {
			if len(rows) > 0 {
				break // the table ended
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	if len(rows) < 2 {
		t.Fatalf("%s: no table under %q", architectureDoc, heading)
	}
	return rows[2:]
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// spans are the code spans of a cell: "`a`, `b`" → [a b].
func spans(cell string) []string {
	var out []string
	for _, m := range codeSpan.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// docDuration reads the tables' "2 s", "30 s", "30 d", "2 y".
func docDuration(s string) (time.Duration, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), " ")
	v, err := strconv.Atoi(n)
	if !ok || err != nil {
		return 0, fmt.Errorf("duration %q", s)
	}
	switch unit {
	case "s":
		return time.Duration(v) * time.Second, nil
	case "d":
		return time.Duration(v) * day, nil
	case "y":
		return time.Duration(v) * year, nil
	}
	return 0, fmt.Errorf("duration %q: unit %q", s, unit)
}

func readArchitecture(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(architectureDoc)
	if err != nil {
		t.Fatalf("the topology tables live in %s: %v", architectureDoc, err)
	}
	return string(b)
}

// TestDocsMatchTopology keeps docs/architecture.md's stream, consumer and
// bucket tables equal to the topology New builds (with DefaultOptions, the
// figures the page gives), so the page cannot drift from the code again.
func TestDocsMatchTopology(t *testing.T) {
	doc := readArchitecture(t)
	topo := New(DefaultOptions())

	t.Run("consumers", func(t *testing.T) {
		rows := docTable(t, doc, "### Consumers")
		seen := map[string]bool{}
		for _, r := range rows {
			if len(r) != 7 {
				t.Fatalf("row %q: want 7 cells (consumer, stream, filter, MaxDeliver, MaxAckPending, retry base, audit hop)", r)
			}
			name := strings.Trim(r[0], "`")
			seen[name] = true
			c, ok := topo.Consumer(name)
			if !ok {
				t.Errorf("docs list consumer %s, which the topology does not have", name)
				continue
			}
			if got := strings.Trim(r[1], "`"); got != c.Stream {
				t.Errorf("%s: docs say stream %s, code %s", name, got, c.Stream)
			}
			filter := spans(r[2])
			if r[2] == "—" {
				filter = nil
			}
			if !slices.Equal(filter, c.Filter) {
				t.Errorf("%s: docs say filter %q, code %q (write — for none)", name, r[2], c.Filter)
			}
			md := strconv.Itoa(c.MaxDeliver)
			if c.MaxDeliver < 0 {
				md = "unlimited (" + md + ")"
			}
			if r[3] != md {
				t.Errorf("%s: docs say MaxDeliver %q, code %q", name, r[3], md)
			}
			if r[4] != strconv.Itoa(c.MaxAckPending) {
				t.Errorf("%s: docs say MaxAckPending %q, code %d", name, r[4], c.MaxAckPending)
			}
			base, capped, _ := strings.Cut(r[5], ", capped at ")
			if d, err := docDuration(base); err != nil || d != c.RetryBase {
				t.Errorf("%s: docs say retry base %q, code %v (%v)", name, r[5], c.RetryBase, err)
			}
			if capped == "" && c.MaxRetryDelay != 0 {
				t.Errorf("%s: docs give no retry cap, code caps at %v", name, c.MaxRetryDelay)
			} else if capped != "" {
				if d, err := docDuration(capped); err != nil || d != c.MaxRetryDelay {
					t.Errorf("%s: docs cap retries at %q, code at %v (%v)", name, capped, c.MaxRetryDelay, err)
				}
			}
			if got := strings.Trim(r[6], "`"); got != c.Hop && (got != "—" || c.Hop != "") {
				t.Errorf("%s: docs say hop %s, code %s", name, got, c.Hop)
			}
		}
		for _, c := range topo.Consumers {
			if !seen[c.Name] {
				t.Errorf("consumer %s/%s is missing from the Consumers table of %s", c.Stream, c.Name, architectureDoc)
			}
		}
	})

	t.Run("streams", func(t *testing.T) {
		rows := docTable(t, doc, "### Streams")
		seen := map[string]bool{}
		for _, r := range rows {
			if len(r) != 4 {
				t.Fatalf("row %q: want 4 cells (stream, subjects, limits, notes)", r)
			}
			name := strings.Trim(r[0], "`")
			seen[name] = true
			s, ok := topo.Stream(name)
			if !ok {
				t.Errorf("docs list stream %s, which the topology does not have", name)
				continue
			}
			listed := spans(r[1])
			for _, subj := range s.Subjects {
				if !slices.Contains(listed, subj) {
					t.Errorf("%s: subject %s is not in the docs' %q", name, subj, r[1])
				}
			}
			limits := r[2]
			age, _, _ := strings.Cut(strings.TrimPrefix(limits, "MaxAge "), ",")
			if d, err := docDuration(age); err != nil || d != s.MaxAge {
				t.Errorf("%s: docs say %q, code MaxAge %v (%v)", name, limits, s.MaxAge, err)
			}
			for flag, on := range map[string]bool{"DenyDelete": s.DenyDelete, "DenyPurge": s.DenyPurge, "DiscardNew": s.Discard == jetstream.DiscardNew} {
				if strings.Contains(limits, flag) != on {
					t.Errorf("%s: %s is %v in code; docs say %q", name, flag, on, limits)
				}
			}
			if s.MaxBytes > 0 && !strings.Contains(limits, fmt.Sprintf("MaxBytes %d GiB", s.MaxBytes>>30)) {
				t.Errorf("%s: docs say %q, code MaxBytes %d GiB", name, limits, s.MaxBytes>>30)
			}
		}
		for _, s := range topo.Streams {
			if !seen[s.Name] {
				t.Errorf("stream %s is missing from the Streams table of %s", s.Name, architectureDoc)
			}
		}
	})

	t.Run("buckets", func(t *testing.T) {
		rows := docTable(t, doc, "### Key-value buckets and object stores")
		history := map[string]string{}
		kinds := map[string]string{}
		for _, r := range rows {
			if len(r) != 4 {
				t.Fatalf("row %q: want 4 cells (bucket, kind, history, holds)", r)
			}
			for _, b := range spans(r[0]) {
				history[b], kinds[b] = r[2], r[1]
			}
		}
		for _, kv := range topo.KV {
			h, ok := history[kv.Bucket]
			if !ok {
				t.Errorf("bucket %s is missing from the buckets table of %s", kv.Bucket, architectureDoc)
				continue
			}
			if kinds[kv.Bucket] != "KV" || h != strconv.Itoa(int(kv.History)) {
				t.Errorf("%s: docs say %s, history %s; code KV, history %d", kv.Bucket, kinds[kv.Bucket], h, kv.History)
			}
			delete(kinds, kv.Bucket)
		}
		for _, o := range topo.Objects {
			if k, ok := kinds[o.Bucket]; !ok || k != "object store" {
				t.Errorf("object store %s: docs say %q", o.Bucket, k)
			}
			delete(kinds, o.Bucket)
		}
		for b := range kinds {
			t.Errorf("docs list bucket %s, which the topology does not have", b)
		}
	})
}

// TestNoReferencesToTheDesignCard: the design card lives beside the
// repository, not in a clone, so docs and comments cite docs/architecture.md instead.
// designRef matches a citation of the card by name or section.
var designRef = regexp.MustCompile(`DESIGN( §|\.md)`)

func TestNoReferencesToTheDesignCard(t *testing.T) {
	root := filepath.Join("..", "..")
	skip := map[string]bool{".git": true, ".tools": true, "bin": true, "var": true, "node_modules": true}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skip[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".md", ".yaml", ".yml":
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if designRef.MatchString(line) {
				t.Errorf("%s:%d cites the design card, which a clone lacks: cite docs/architecture.md's section", path, i+1)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
