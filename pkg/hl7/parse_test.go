package hl7_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/corpus"
	"github.com/sinewhq/sinew/pkg/hl7"
)

func mustParse(t *testing.T, s string) *hl7.Message {
	t.Helper()
	m, err := hl7.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// corpusFile reads a file of the conformance corpus (the test skips
// without it); synth one of testdata/synthetic.
func corpusFile(t *testing.T, name string) []byte {
	t.Helper()
	return corpus.ReadFile(t, corpusSub+"/"+name)
}

func synth(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "synthetic", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPaths(t *testing.T) {
	m := mustParse(t, "MSH|^~\\&|APP|FAC|||20261126||ADT^A01^ADT_A01|C1|P|2.5\r"+
		"PID|||111^^^H&1.2.3&ISO~222^^^S&4.5&ISO||Doe^Jane^Q\\S\\R||19800101\r"+
		"OBX|1|ST|A||first\rOBX|2|ST|B||second\rOBX|3|ST|C||third\\F\\x\\T\\y\\R\\z\\E\\\r")
	tests := []struct{ path, want string }{
		{"MSH-1", "|"},
		{"MSH-2", "^~\\&"},
		{"MSH-9", "ADT"},
		{"MSH-9-2", "A01"},
		{"MSH-9-3", "ADT_A01"},
		{"PID-3", "111"},
		{"PID-3(1)", "222"},
		{"PID-3(1)-1", "222"},
		{"PID-3-4-2", "1.2.3"},
		{"PID-3(1)-4-2", "4.5"},
		{"PID-3(2)", ""},
		{"PID-5-3", "Q^R"},
		{"PID.5.2", "Jane"},
		{"OBX-5", "first"},
		{"OBX(1)-5", "second"},
		{"OBX(2)-5", "third|x&y~z\\"},
		{"OBX(3)-5", ""},
		{"ZZZ-1", ""},
		{"PID-99", ""},
	}
	for _, tc := range tests {
		if got := m.Get(tc.path); got != tc.want {
			t.Errorf("Get(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
	if raw, ok := m.Raw(hl7.MustPath("PID-3")); !ok || string(raw) != "111^^^H&1.2.3&ISO" {
		t.Errorf("Raw(PID-3) = %q, %v", raw, ok)
	}
	if n := m.Repetitions(hl7.MustPath("PID-3")); n != 2 {
		t.Errorf("PID-3 repetitions = %d", n)
	}
	if n := m.Count("OBX"); n != 3 {
		t.Errorf("OBX count = %d", n)
	}
}

func TestParsePath(t *testing.T) {
	good := map[string]hl7.Path{
		"PID":          {Segment: "PID"},
		"PID-5":        {Segment: "PID", Field: 5},
		"PID-3(1)-4-2": {Segment: "PID", Field: 3, Rep: 1, Component: 4, Subcomponent: 2},
		"OBX(2)-5":     {Segment: "OBX", SegRep: 2, Field: 5},
		"ZPI-1-2":      {Segment: "ZPI", Field: 1, Component: 2},
	}
	for s, want := range good {
		p, err := hl7.ParsePath(s)
		if err != nil || p != want {
			t.Errorf("ParsePath(%q) = %+v, %v; want %+v", s, p, err, want)
		}
		if p.String() != strings.ReplaceAll(s, ".", "-") {
			t.Errorf("%+v.String() = %q", p, p.String())
		}
	}
	for _, s := range []string{"", "PI", "pid-5", "PID-0", "PID-5-", "PID-5(x)", "PID-5-1-2-3", "PID(1", "PID-1234567"} {
		if _, err := hl7.ParsePath(s); err == nil {
			t.Errorf("ParsePath(%q) accepted", s)
		}
	}
}

func TestDelimitersFromEachMessage(t *testing.T) {
	brace, err := hl7.Parse(synth(t, "BAR_P01__synthetic_msh2_brace.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if d := brace.Delimiters(); d.Subcomponent != '}' || d.Escape != '\\' {
		t.Errorf("brace delimiters %+v", d)
	}
	doubled, err := hl7.Parse(synth(t, "ADT_A01__synthetic_doubled_escape_msh2.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if d := doubled.Delimiters(); d != hl7.DefaultDelimiters {
		t.Errorf("doubled-escape delimiters %+v", d)
	}
	// A value after MSH-15/16 is MSH-17 (country code), not a sequence number.
	if n, ok := doubled.SequenceNumber(); ok || doubled.Get("MSH-17") != "840" || doubled.AcceptAckType() != "AL" {
		t.Errorf("MSH-13 = %d, %v; MSH-17 %q", n, ok, doubled.Get("MSH-17"))
	}
	seq, err := hl7.Parse(synth(t, "ORU_R01__synthetic_msh13_seq_merged_seg.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := seq.SequenceNumber(); !ok || n != 512 {
		t.Errorf("MSH-13 = %d, %v; want 512", n, ok)
	}
	custom := mustParse(t, "MSH#$*!@#APP#FAC###20261126##ADT$A01#X1#P#2.5\rPID###1$$$A@B*2#\r")
	if custom.Get("PID-3-4-2") != "B" || custom.Get("PID-3(1)") != "2" || custom.Type() != "ADT" {
		t.Errorf("custom delimiters: %q %q %q", custom.Get("PID-3-4-2"), custom.Get("PID-3(1)"), custom.Type())
	}
	three := mustParse(t, "MSH|^~\\|APP|FAC|||||ADT^A01|X|P|2.3\rPID|||A&B\r")
	if three.Get("PID-3") != "A&B" {
		t.Errorf("no subcomponent delimiter: %q", three.Get("PID-3"))
	}
	five := mustParse(t, "MSH|^~\\&#|APP|FAC|||||ADT^A01|X|P|2.7\rPID|||A\\P\\B\r")
	if five.Delimiters().Truncation != '#' || five.Get("PID-3") != "A#B" {
		t.Errorf("truncation character: %+v %q", five.Delimiters(), five.Get("PID-3"))
	}
}

func TestEscapes(t *testing.T) {
	d := hl7.DefaultDelimiters
	tests := []struct{ in, want string }{
		{`plain`, "plain"},
		{`a\F\b\S\c\T\d\R\e\E\f`, `a|b^c&d~e\f`},
		{`\X0D0A\`, "\r\n"},
		{`\XC3A9\`, "é"},
		{`line\.br\next`, `line\.br\next`},
		{`\H\bold\N\`, `\H\bold\N\`},
		{`\Zsite\`, `\Zsite\`},
		{`\X0\`, `\X0\`},
		{`\XZZ\`, `\XZZ\`},
		{`lone \ here`, `lone \ here`},
		{`end\`, `end\`},
		{`\Q\`, `\Q\`},
	}
	for _, tc := range tests {
		if got := string(hl7.Unescape(nil, []byte(tc.in), d)); got != tc.want {
			t.Errorf("Unescape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, s := range []string{"a|b^c&d~e\\f", "x\r\ny", "", "é|"} {
		esc := hl7.Escape(nil, []byte(s), d)
		if strings.ContainsAny(string(esc), "|^&~\r\n") {
			t.Errorf("Escape(%q) = %q still holds structure", s, esc)
		}
		if back := string(hl7.Unescape(nil, esc, d)); back != s {
			t.Errorf("round trip %q -> %q -> %q", s, esc, back)
		}
	}
	eff, err := hl7.Parse(synth(t, "ORU_R01__synthetic_lf_escapes.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < eff.SegmentCount(); i++ {
		if strings.Contains(string(eff.Segment(i)), `\E\`) {
			return // an \E\ is present; decoding is covered above
		}
	}
	t.Error(`expected an \E\ in the escapes fixture`)
}

func TestCharsets(t *testing.T) {
	latin := mustParseFile(t, "testdata/synthetic/ADT_A08__synthetic_latin1_bytes.hl7")
	if cs := latin.Charset(); cs.Name != "ISO-8859-1" || cs.Source != "msh-18" {
		t.Errorf("declared Latin-1: %+v", cs)
	}
	if got := latin.Get("PID-5"); got != "Müller" {
		t.Errorf("PID-5 = %q", got)
	}
	if got := latin.Get("PID-11-3"); got != "Köln" {
		t.Errorf("PID-11-3 = %q", got)
	}
	undeclared := mustParseFile(t, "testdata/synthetic/ADT_A08__synthetic_latin1_undeclared.hl7")
	if cs := undeclared.Charset(); cs.Name != "windows-1252" || cs.Source != "fallback" || !hasWarning(undeclared, hl7.WarnCharsetFallback) {
		t.Errorf("undeclared Latin-1: %+v %v", cs, undeclared.Warnings())
	}
	if got := undeclared.Get("PID-5-2"); got != "Renée" {
		t.Errorf("PID-5-2 = %q", got)
	}
	mismatch, err := hl7.Parse(synth(t, "OMI_O23__synthetic_8859_declared_utf8_bytes.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if cs := mismatch.Charset(); cs.Name != "UTF-8" || cs.Declared != "8859/1" || !hasWarning(mismatch, hl7.WarnCharsetMismatch) {
		t.Errorf("mismatch: %+v %v", cs, mismatch.Warnings())
	}
	var dash bool
	for i := 0; i < mismatch.SegmentCount(); i++ {
		dash = dash || strings.Contains(string(mismatch.Segment(i)), "–")
	}
	if !dash {
		t.Error("en dash not kept as UTF-8")
	}
	forced, err := hl7.Options{Charset: "8859/1"}.Parse(synth(t, "OMI_O23__synthetic_8859_declared_utf8_bytes.hl7"))
	if err != nil || forced.Charset().Source != "override" || forced.Charset().Name != "ISO-8859-1" {
		t.Errorf("override: %+v %v", forced.Charset(), err)
	}
}

func mustParseFile(t *testing.T, path string) *hl7.Message {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := hl7.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func hasWarning(m *hl7.Message, code string) bool {
	for _, w := range m.Warnings() {
		if w.Code == code {
			return true
		}
	}
	return false
}

func TestSplit(t *testing.T) {
	msgs, b, err := hl7.Split(synth(t, "BATCH_FHS_BHS__synthetic_no_trailers_crlf.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || b == nil || b.FHS == nil || b.BHS == nil || len(b.Warnings) != 2 {
		t.Fatalf("%d messages, batch %+v", len(msgs), b)
	}
	two := append(append(synth(t, "ADT_A01__synthetic_cr.hl7"), '\n'), synth(t, "MFN_M03__synthetic_original_mode.hl7")...)
	msgs, b, err = hl7.Split(two)
	if err != nil || len(msgs) != 2 || b != nil {
		t.Fatalf("two messages: %d, %+v, %v", len(msgs), b, err)
	}
	if _, err := hl7.Parse(two); err == nil {
		t.Error("Parse accepted two messages")
	}
	batch := "BHS|^~\\&|A\rMSH|^~\\&|A|B|||||ADT^A01|1|P|2.5\rPID|1\rMSH|^~\\&|A|B|||||ADT^A01|2|P|2.5\rBTS|3\r"
	msgs, b, err = hl7.Split([]byte(batch))
	if err != nil || len(msgs) != 2 || b.DeclaredCount != 3 || len(b.Warnings) != 1 || b.Warnings[0].Code != "batch-count" {
		t.Errorf("batch: %d %+v %v", len(msgs), b, err)
	}
	if _, _, err := hl7.Split([]byte("PID|1\rMSH|^~\\&|A\r")); err == nil {
		t.Error("segment before MSH accepted")
	}
}

func TestParseErrors(t *testing.T) {
	tests := map[string]struct {
		in    string
		code  int
		field int
	}{
		"not MSH":          {"PID|1|2\r", hl7.CodeSegmentSequence, 0},
		"short":            {"MSH|^", hl7.CodeRequiredField, 2},
		"MSH-2 too long":   {"MSH|^~\\&#$%|A\r", hl7.CodeDataType, 2},
		"dup delimiter":    {"MSH|^^\\&|A\r", hl7.CodeDataType, 2},
		"alnum delimiter":  {"MSH|^~A&|A\r", hl7.CodeDataType, 2},
		"MSH inside":       {"MSH|^~\\&|A\rPID|1\rMSH|^~\\&|B\r", hl7.CodeSegmentSequence, 0},
		"empty":            {"", hl7.CodeSegmentSequence, 0},
		"field sep letter": {"MSHA^~\\&A\r", hl7.CodeDataType, 2},
	}
	for name, tc := range tests {
		_, err := hl7.Parse([]byte(tc.in))
		var pe *hl7.ParseError
		if !errors.As(err, &pe) || pe.Code != tc.code || pe.Field != tc.field {
			t.Errorf("%s: %v (%+v)", name, err, pe)
		}
	}
}
