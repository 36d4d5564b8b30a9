package dlq

import (
	"testing"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

func TestSelectorMatchesReasonCode(t *testing.T) {
	coded := &Entry{Letter: &sinewv1.DeadLetter{ReasonCode: "SINEW-HL7-103", Reason: "unmapped"}}
	uncoded := &Entry{Letter: &sinewv1.DeadLetter{Reason: "from before the codes"}}
	for _, tc := range []struct {
		code           string
		coded, uncoded bool
	}{
		{"", true, true},
		{"SINEW-HL7-103", true, false},
		{"sinew-hl7-103", true, false},
		{"SINEW-HL7-102", false, false},
		{"-", false, true},
	} {
		s := Selector{Code: tc.code}
		if s.Match(coded) != tc.coded || s.Match(uncoded) != tc.uncoded {
			t.Errorf("Code %q: coded %v uncoded %v, want %v %v", tc.code, s.Match(coded), s.Match(uncoded), tc.coded, tc.uncoded)
		}
		if s.Empty() != (tc.code == "") {
			t.Errorf("Code %q: Empty %v", tc.code, s.Empty())
		}
	}
}
