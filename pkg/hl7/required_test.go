package hl7_test

import (
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/hl7"
)

func TestCheckRequired(t *testing.T) {
	tests := []struct {
		name, msg string
		loc       string // "" = no error
	}{
		{"complete", "MSH|^~\\&|A|F|||20261126||ADT^A01|C1|P|2.5\r", ""},
		{"type without event", "MSH|^~\\&|A|F|||20261126||ACK|C1|P|2.5\r", ""},
		{"MSH-9 empty", "MSH|^~\\&|A|F|||20261126|||C1|P|2.5\r", "MSH-9"},
		{"MSH-9 absent", "MSH|^~\\&|A|F\r", "MSH-9"},
		{"MSH-9-1 empty", "MSH|^~\\&|A|F|||20261126||^A01|C1|P|2.5\r", "MSH-9-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mustParse(t, tc.msg)
			perr := m.CheckRequired()
			if tc.loc == "" {
				if perr != nil {
					t.Fatalf("CheckRequired = %v, want nil", perr)
				}
				return
			}
			if perr == nil || perr.Location() != tc.loc || perr.Code != hl7.CodeRequiredField {
				t.Fatalf("CheckRequired = %+v, want %s code 101", perr, tc.loc)
			}
			ack := segs(m.Ack(hl7.AckOptions{Code: hl7.AR, Errors: []*hl7.ParseError{perr}}))
			if got := ack[len(ack)-1]; !strings.Contains(got, "MSH^1^9") || !strings.Contains(got, "101^Required field missing^HL70357") {
				t.Errorf("ERR = %q", got)
			}
		})
	}
}
