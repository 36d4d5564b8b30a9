package hl7_test

import (
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/hl7"
)

// The conformance corpus's own cases of what parse_test.go and
// ack_test.go check on synthetic messages. They skip without
// ../shared/corpus (SINEW_REQUIRE_CORPUS=1 makes that a failure).

func TestCorpusDelimiters(t *testing.T) {
	brace, err := hl7.Parse(corpusFile(t, "BAR_P01__hapi1993_msh2_subcomp_brace.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if d := brace.Delimiters(); d.Subcomponent != '}' || d.Escape != '\\' {
		t.Errorf("brace delimiters %+v", d)
	}
	doubled, err := hl7.Parse(corpusFile(t, "ADT_A01__lfh_lf_bad_msh2_msh13.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if d := doubled.Delimiters(); d != hl7.DefaultDelimiters {
		t.Errorf("doubled-escape delimiters %+v", d)
	}
	// The corpus notes call 764 MSH-13; counted, it is MSH-17 (country code).
	if n, ok := doubled.SequenceNumber(); ok || doubled.Get("MSH-17") != "764" || doubled.AcceptAckType() != "AL" {
		t.Errorf("MSH-13 = %d, %v; MSH-17 %q", n, ok, doubled.Get("MSH-17"))
	}
	seq, err := hl7.Parse(corpusFile(t, "ORU_R01__hapi1994_msh13_seq_msa_merged_seg.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := seq.SequenceNumber(); !ok || n != 964 {
		t.Errorf("MSH-13 = %d, %v; want 964", n, ok)
	}
}

func TestCorpusEscapes(t *testing.T) {
	eff, err := hl7.Parse(corpusFile(t, "ADT_A01__efferent_bom_lf_broken_chars.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < eff.SegmentCount(); i++ {
		if strings.Contains(string(eff.Segment(i)), `\E\`) {
			return
		}
	}
	t.Error(`expected an \E\ in the Efferent regression file`)
}

func TestCorpusCharsetMismatch(t *testing.T) {
	data := corpusFile(t, "OMI_O23__dcm4che_msh18_8859_but_utf8_bytes.hl7")
	mismatch, err := hl7.Parse(data)
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
	forced, err := hl7.Options{Charset: "8859/1"}.Parse(data)
	if err != nil || forced.Charset().Source != "override" || forced.Charset().Name != "ISO-8859-1" {
		t.Errorf("override: %+v %v", forced.Charset(), err)
	}
}

func TestCorpusSplit(t *testing.T) {
	msgs, b, err := hl7.Split(corpusFile(t, "BATCH_FHS_BHS__mirth_orm_o01_no_trailer_crlf.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || b == nil || b.FHS == nil || b.BHS == nil || len(b.Warnings) != 2 {
		t.Fatalf("%d messages, batch %+v", len(msgs), b)
	}
	two := append(append(corpusFile(t, "ADT_A01__hapi_cr.hl7"), '\n'), corpusFile(t, "ORU_R01__mirth_small_cr.hl7")...)
	msgs, b, err = hl7.Split(two)
	if err != nil || len(msgs) != 2 || b != nil {
		t.Fatalf("two messages: %d, %+v, %v", len(msgs), b, err)
	}
	if _, err := hl7.Parse(two); err == nil {
		t.Error("Parse accepted two messages")
	}
}

func TestCorpusEnhancedMode(t *testing.T) {
	orig, err := hl7.Parse(corpusFile(t, "MFN_M03__hl7spec_original_mode.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	enh, err := hl7.Parse(corpusFile(t, "MFN_M03__hl7spec_enhanced_mode_AL_AL.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if orig.EnhancedMode() || !enh.EnhancedMode() || enh.AcceptAckType() != "AL" || enh.AppAckType() != "AL" {
		t.Errorf("modes: original %v enhanced %v (%q/%q)", orig.EnhancedMode(), enh.EnhancedMode(), enh.AcceptAckType(), enh.AppAckType())
	}
}
