package hl7_test

import (
	"testing"

	"github.com/sinewhq/sinew/pkg/hl7"
)

// TestSyntheticBatchWithTrailers: a complete batch (FHS, BHS, two
// messages, BTS 2, FTS 1) splits into its messages without a warning.
func TestSyntheticBatchWithTrailers(t *testing.T) {
	msgs, b, err := hl7.Split(synth(t, "BATCH_FHS_BHS__synthetic_two_messages_trailers.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || b == nil || b.FHS == nil || b.BHS == nil || b.DeclaredCount != 2 || len(b.Warnings) != 0 {
		t.Fatalf("%d messages, batch %+v", len(msgs), b)
	}
	for i, want := range []string{"SYN-BAT-0010", "SYN-BAT-0011"} {
		m, err := hl7.Parse(msgs[i])
		if err != nil || m.ControlID() != want {
			t.Errorf("message %d: %v, control id %q", i, err, m.ControlID())
		}
	}
}
