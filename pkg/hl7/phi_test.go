package hl7_test

import (
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/hl7"
)

// TestSplitErrorQuotesNoValue: a stray line before the first MSH is named
// by its segment name or its length, never by its content.
func TestSplitErrorQuotesNoValue(t *testing.T) {
	for in, want := range map[string]string{
		"Smith^John 1970-01-01\rMSH|^~\\&|A\r": "a line of 21 bytes",
		"PID|||MRN-1\rMSH|^~\\&|A\r":           "segment PID",
	} {
		_, _, err := hl7.Split([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Split(%q) = %v, want %q", in, err, want)
		}
		for _, v := range []string{"Smi", "MRN", "1970"} {
			if err != nil && strings.Contains(err.Error(), v) {
				t.Errorf("Split error quotes the message: %v", err)
			}
		}
	}
}

// TestUnknownCharsetWarningQuotesNoValue: an MSH-18 that is not a table
// 0211 code is named by its length in the warning.
func TestUnknownCharsetWarningQuotesNoValue(t *testing.T) {
	m := mustParse(t, "MSH|^~\\&|A|F|||20261126||ADT^A01|C1|P|2.5||||||SMITH JOHN\rPID|1\r")
	_ = m.Charset()
	found := false
	for _, w := range m.Warnings() {
		if strings.Contains(w.String(), "SMITH") {
			t.Errorf("warning quotes MSH-18: %s", w)
		}
		found = found || w.Code == hl7.WarnCharsetUnknown
	}
	if !found {
		t.Errorf("no %s warning: %v", hl7.WarnCharsetUnknown, m.Warnings())
	}
}
