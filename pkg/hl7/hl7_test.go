package hl7_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/corpus"
	"github.com/sinewhq/sinew/pkg/hl7"
)

var update = flag.Bool("update", false, "rewrite golden files")

// corpusSub is the shared public HL7 v2 corpus (read in place, never
// copied; absent from a clone, where its tests skip). testdata/synthetic
// holds the in-repo messages that cover the same behaviours.
const corpusSub = "hl7v2"

// goldenPaths are read from every message; only values present are recorded.
var goldenPaths = []string{
	"MSH-1", "MSH-2", "MSH-3", "MSH-4", "MSH-5", "MSH-6", "MSH-7", "MSH-9", "MSH-10", "MSH-11", "MSH-12",
	"MSH-13", "MSH-15", "MSH-16", "MSH-18",
	"EVN-1", "PID-3", "PID-3-1", "PID-3-4", "PID-3(1)-1", "PID-3-4-2", "PID-5", "PID-5-1", "PID-5-2", "PID-7", "PID-8",
	"PV1-2", "PV1-3", "PV1-19",
	"FT1-2", "FT1-4", "FT1-6", "FT1-7", "FT1-10", "FT1-11", "FT1-11-1", "FT1-11-2", "FT1-12-1", "FT1-13", "FT1(1)-7", "FT1(1)-10",
	"RXD-1", "RXD-2", "RXD-2-1", "RXD-3", "RXD-4", "RXD-5", "RXD-7",
	"RXE-2-1", "RXE-10", "OBR-4", "OBX-2", "OBX-3", "OBX-5", "OBX(1)-5", "OBX(2)-5", "NTE-3", "NTE(1)-3",
	"MSA-1", "MSA-2", "MSA-4", "MFI-1", "MFE-1", "MFE-4", "IIM-1", "IIM-2", "IIM-3", "ITM-1", "IVT-2", "Z34-1",
	"ZNT-1", "ZNT-2", "GT1-3", "IN1-4", "IN1(1)-4", "IN1(2)-4", "DG1-3",
}

type golden struct {
	File      string            `json:"file"`
	Index     int               `json:"index"`
	Type      string            `json:"type"`
	Event     string            `json:"event"`
	Structure string            `json:"structure,omitempty"`
	ControlID string            `json:"control_id"`
	Version   string            `json:"version"`
	Charset   string            `json:"charset"`
	Source    string            `json:"charset_source"`
	Segments  int               `json:"segment_count"`
	Warnings  []string          `json:"warnings,omitempty"`
	Values    map[string]string `json:"values"`
	Ack       string            `json:"ack"`
	Batch     []string          `json:"batch_warnings,omitempty"`
}

func synthetic(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "synthetic", "*.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("found %d synthetic fixtures in testdata/synthetic", len(files))
	}
	return files
}

var ackTime = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// TestSyntheticGolden: the in-repo messages against their golden files.
func TestSyntheticGolden(t *testing.T) { goldenFiles(t, synthetic(t)) }

// TestCorpusGolden: the conformance corpus against its golden files.
func TestCorpusGolden(t *testing.T) {
	files := corpus.Glob(t, corpusSub, "*.hl7")
	if len(files) < 35 {
		t.Fatalf("found %d corpus files", len(files))
	}
	goldenFiles(t, files)
}

func goldenFiles(t *testing.T, files []string) {
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			msgs, batch, err := hl7.Split(data)
			if err != nil {
				t.Fatal(err)
			}
			var got []golden
			for i, raw := range msgs {
				m, err := hl7.Parse(raw)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				g := golden{
					File: name, Index: i, Type: m.Type(), Event: m.Event(), Structure: m.Structure(),
					ControlID: m.ControlID(), Version: m.Version(), Charset: m.Charset().Name,
					Source: m.Charset().Source, Segments: m.SegmentCount(), Values: map[string]string{},
				}
				for _, w := range m.Warnings() {
					g.Warnings = append(g.Warnings, w.String())
				}
				for _, p := range goldenPaths {
					if v := m.Get(p); v != "" {
						g.Values[p] = v
					}
				}
				code := hl7.AA
				if m.EnhancedMode() {
					code = hl7.CA
				}
				g.Ack = strings.ReplaceAll(string(m.Ack(hl7.AckOptions{Code: code, ControlID: "ACK00001", Time: ackTime})), "\r", "\n")
				if batch != nil {
					for _, w := range batch.Warnings {
						g.Batch = append(g.Batch, w.String())
					}
				}
				// Unchanged messages encode back to their bytes (CR terminators).
				if enc := m.Encode(); !bytes.Equal(normalize(raw), enc) {
					t.Errorf("message %d: Encode differs from the input with CR terminators", i)
				}
				got = append(got, g)
			}
			compareGolden(t, filepath.Join("testdata", "golden", strings.TrimSuffix(name, ".hl7")+".json"), got)
		})
	}
}

// normalize is what Encode should give for raw: BOM and blank lines
// dropped, every segment ended by CR.
func normalize(raw []byte) []byte {
	raw = bytes.TrimPrefix(raw, []byte{0xEF, 0xBB, 0xBF})
	var out []byte
	for _, line := range bytes.FieldsFunc(raw, func(r rune) bool { return r == '\r' || r == '\n' }) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		out = append(out, line...)
		out = append(out, '\r')
	}
	return out
}

func compareGolden(t *testing.T, path string, got any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(got); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(want, b) {
		t.Errorf("%s differs from the golden file; got:\n%s", path, b)
	}
}
