package hl7_test

import (
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/hl7"
)

func segs(b []byte) []string { return strings.Split(strings.TrimSuffix(string(b), "\r"), "\r") }

func TestAckLayouts(t *testing.T) {
	v25 := mustParse(t, "MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126||RDS^O13^RDS_O13|CTRL-1|P|2.5.1\rPID|1\r")
	ack := v25.Ack(hl7.AckOptions{Code: hl7.AE, ControlID: "A1", Time: ackTime, Errors: []*hl7.ParseError{{
		Segment: "RXD", SegmentSeq: 1, Field: 2, Component: 1, Code: hl7.CodeTableValue, Msg: "NDC not in crosswalk"}}})
	want := []string{
		"MSH|^~\\&|SINEW|HQ|EPIC|STMARYS|20261126120000+0000||ACK^O13^ACK|A1|P|2.5.1",
		"MSA|AE|CTRL-1",
		"ERR||RXD^1^2^^1|103^Table value not found^HL70357|E||||NDC not in crosswalk",
	}
	if got := segs(ack); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("v2.5.1 ACK:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	v23 := mustParse(t, "MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126||ADT^A08|C-2|P|2.3\rPID|1\r")
	ack = v23.Ack(hl7.AckOptions{Code: hl7.AR, ControlID: "A2", Time: ackTime, Errors: []*hl7.ParseError{{
		Segment: "PID", SegmentSeq: 1, Field: 3, Code: hl7.CodeRequiredField, Msg: "PID-3 is empty"}}})
	want = []string{
		"MSH|^~\\&|SINEW|HQ|EPIC|STMARYS|20261126120000+0000||ACK^A08^ACK|A2|P|2.3",
		"MSA|AR|C-2|PID-3 is empty",
		"ERR|PID^1^3^101&Required field missing&HL70357",
	}
	if got := segs(ack); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("v2.3 NAK:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	seq := int64(965)
	ack = v25.Ack(hl7.AckOptions{Code: hl7.CA, ControlID: "A3", Time: ackTime, ExpectedSeq: &seq})
	if got := segs(ack)[1]; got != "MSA|CA|CTRL-1||965" {
		t.Errorf("MSA with expected sequence: %q", got)
	}
}

func TestAckControlIDsAreUnique(t *testing.T) {
	m := mustParse(t, "MSH|^~\\&|A|B|C|D|20261126||ADT^A01|X|P|2.5\r")
	seen := map[string]bool{}
	for range 1000 {
		id := hl7.NewControlID()
		if len(id) != 20 || seen[id] {
			t.Fatalf("control id %q (len %d) repeated or wrong length", id, len(id))
		}
		seen[id] = true
	}
	a, b := m.Ack(hl7.AckOptions{Code: hl7.AA, Time: ackTime}), m.Ack(hl7.AckOptions{Code: hl7.AA, Time: ackTime})
	if string(a) == string(b) {
		t.Error("two ACKs at the same instant share MSH-10")
	}
}

func TestNakForUnparseableInput(t *testing.T) {
	tests := map[string]struct {
		in          string
		wantMSH     string
		wantMSA     string
		wantVersion string
	}{
		"garbage": {"hello world", "MSH|^~\\&|SINEW|HQ||", "MSA|AR|", "2.5"},
		"bad MSH-2, fields readable": {"MSH|^^^^|EPIC|STMARYS|SINEW|HQ|20261126||ADT^A01|C9|P|2.4\rPID|1",
			"MSH|^~\\&|SINEW|HQ|EPIC|STMARYS|", "MSA|AR|C9", "2.4"},
		"empty MSH-10": {"MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126||ADT^A01||P|2.5\r", "MSH|^~\\&|SINEW|HQ|EPIC|STMARYS|", "MSA|AR|", "2.5"},
		"empty":        {"", "MSH|^~\\&|SINEW|HQ||", "MSA|AR|", "2.5"},
	}
	for name, tc := range tests {
		_, perr := hl7.Parse([]byte(tc.in))
		nak := hl7.Nak([]byte(tc.in), hl7.AckOptions{Code: hl7.AR, Time: ackTime, Application: "SINEW", Facility: "HQ",
			Errors: []*hl7.ParseError{hl7.ErrorOf(perr)}})
		s := segs(nak)
		if len(s) < 2 || !strings.HasPrefix(s[0], tc.wantMSH) || !strings.HasPrefix(s[1], tc.wantMSA) ||
			(perr != nil) != (len(s) > 2 && strings.HasPrefix(s[2], "ERR|")) {
			t.Errorf("%s: NAK\n%s", name, strings.Join(s, "\n"))
			continue
		}
		if back, err := hl7.Parse(nak); err != nil || back.Version() != tc.wantVersion || back.Get("MSA-1") != "AR" {
			t.Errorf("%s: NAK does not parse as an AR of version %s: %v", name, tc.wantVersion, err)
		}
	}
	// A message that parses but lacks MSH-10 still gets an ACK (MSA-2 empty).
	m := mustParseFile(t, "testdata/synthetic/ADT_A01__synthetic_empty_msh10.hl7")
	if s := segs(m.Ack(hl7.AckOptions{Code: hl7.AA, Time: ackTime})); s[1] != "MSA|AA|" {
		t.Errorf("empty MSH-10 ACK: %q", s[1])
	}
}

func TestEnhancedMode(t *testing.T) {
	orig, err := hl7.Parse(synth(t, "MFN_M03__synthetic_original_mode.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	enh, err := hl7.Parse(synth(t, "MFN_M03__synthetic_enhanced_mode.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if orig.EnhancedMode() || !enh.EnhancedMode() || enh.AcceptAckType() != "AL" || enh.AppAckType() != "AL" {
		t.Errorf("modes: original %v enhanced %v (%q/%q)", orig.EnhancedMode(), enh.EnhancedMode(), enh.AcceptAckType(), enh.AppAckType())
	}
}
