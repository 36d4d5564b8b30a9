package loader

import (
	"errors"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/supplierfile"
)

// TestEpicResultFileAnswersAsAnACK: Epic's result file is read as its ACK
// is: AA nil, AE and AR SINEW-EPIC-001 with the refused place and Epic's
// text, an unreadable result SINEW-EPIC-002.
func TestEpicResultFileAnswersAsAnACK(t *testing.T) {
	cases := []struct {
		name, result string
		code         reason.Code // "" for nil
		text         string
	}{
		{"accepted", string(supplierfile.BuildResult(supplierfile.Result{ControlID: "C1", Code: "AA"}, '|')), "", ""},
		{"refused", string(supplierfile.BuildResult(supplierfile.Result{ControlID: "C1", Code: "AR", Line: 3, Field: 1, Text: "site code required"}, ';')),
			reason.EpicRejected, "epic answered AR at line 3 field 1: site code required"},
		{"error", "A|C1|AE|0|0|supplier table locked\n", reason.EpicRejected, "epic answered AE: supplier table locked"},
		{"garbage", "OK\n", reason.EpicNoAck, "unreadable result"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := answer("SUPC1.txt", []byte(c.result))
			if c.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var re *reason.Error
			if !errors.As(err, &re) || re.Code != c.code || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("answer: %v, want %s with %q", err, c.code, c.text)
			}
		})
	}
}
