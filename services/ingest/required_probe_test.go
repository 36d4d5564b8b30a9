package ingest_test

import (
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/ingest"
)

// TestMissingMessageTypeIsRejectedAndKept: MSH-9 is required. Without it a
// message was answered AA and stored on hl7.in.<facility>.none.none, where
// no flow reads it; now it is answered AR with an ERR naming MSH-9 (table
// 0357 code 101) and kept, marked rejected, for review.
func TestMissingMessageTypeIsRejectedAndKept(t *testing.T) {
	e := start(t, streams.DefaultOptions(), nil)
	tests := []struct{ name, msg, loc string }{
		{"MSH-9 empty", "MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126|||NOTYPE1|P|2.5\rPID|||MRN-SECRET-1\r", "MSH^1^9"},
		{"MSH-9-1 empty", "MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126||^A01|NOTYPE2|P|2.5\rPID|||MRN-SECRET-2\r", "MSH^1^9^^1"},
		{"enhanced mode", "MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126|||NOTYPE3|P|2.5|||AL|NE\rPID|1\r", "MSH^1^9"},
	}
	for _, tc := range tests {
		ack := e.send(t, []byte(tc.msg))
		want := hl7.AR
		if strings.Contains(tc.name, "enhanced") {
			want = hl7.CR
		}
		if ack.Get("MSA-1") != want || ack.Count("ERR") != 1 {
			t.Errorf("%s: answered %q", tc.name, strings.ReplaceAll(string(ack.Bytes()), "\r", "\n"))
			continue
		}
		if raw, _ := ack.Raw(hl7.MustPath("ERR-2")); string(raw) != tc.loc {
			t.Errorf("%s: ERR-2 %q, want %q", tc.name, raw, tc.loc)
		}
		if got := ack.Get("ERR-3"); got != "101" {
			t.Errorf("%s: ERR-3 %q, want 101", tc.name, got)
		}
	}
	stored := e.stored(t)
	if len(stored) != len(tests) {
		t.Fatalf("%d kept, want %d", len(stored), len(tests))
	}
	for i, s := range stored {
		ev := decode(t, s.Data)
		reason := s.Header.Get(ingest.RejectedHeader)
		if s.Subject != "hl7.in.STMARYS.REJECTED.101" || string(ev.Raw) != tests[i].msg || !strings.Contains(reason, "MSH-9") {
			t.Errorf("kept on %s, header %q", s.Subject, reason)
		}
		if strings.Contains(reason, "SECRET") {
			t.Errorf("rejection reason quotes a value: %q", reason)
		}
	}
}
