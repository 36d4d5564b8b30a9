package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestDeadLetterReasonCodesUnderUp: under `sinew up` a data-type error
// (RXD-4) and an unmapped NDC (RXD-2) are dead-lettered with their table
// 0357 codes; `dlq list --reason-code` selects them and `dlq reasons`
// counts them with the catalogue's action.
func TestDeadLetterReasonCodesUnderUp(t *testing.T) {
	a := newAddrs(t)
	s, _ := upWith(t, t.TempDir(), a, nil, nil)
	stamp := time.Now().UTC().Format("150405")
	sendAA(t, a.mllp, phiDispense("CD"+stamp, "Y", "0781-3207-95", "1970-01-01"))
	sendAA(t, a.mllp, phiDispense("CM"+stamp, "Y", "0000-0000-00", "2"))
	codes := map[string]string{}
	waitFor(t, "two dead letters", 30*time.Second, func() (bool, string) {
		out, err := s.cli(t, "dlq", "list", "--json")
		if err != nil {
			return false, out
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var dl struct {
				EventID    string `json:"event_id"`
				Reason     string `json:"reason"`
				ReasonCode string `json:"reason_code"`
			}
			if json.Unmarshal([]byte(line), &dl) == nil && dl.Reason != "" {
				for _, id := range []string{"CD" + stamp, "CM" + stamp} {
					if strings.Contains(dl.Reason, id) {
						codes[id] = dl.ReasonCode
					}
				}
			}
		}
		return len(codes) == 2, out
	})
	if codes["CD"+stamp] != "SINEW-HL7-102" || codes["CM"+stamp] != "SINEW-HL7-103" {
		t.Errorf("codes %v, want SINEW-HL7-102 and SINEW-HL7-103", codes)
	}
	out, err := s.cli(t, "dlq", "list", "--reason-code", "SINEW-HL7-102")
	if err != nil || !strings.Contains(out, "CD"+stamp) || strings.Contains(out, "CM"+stamp) {
		t.Errorf("dlq list --reason-code SINEW-HL7-102 (%v):\n%s", err, out)
	}
	out, err = s.cli(t, "dlq", "reasons")
	if err != nil || !strings.Contains(out, "SINEW-HL7-103") || !strings.Contains(out, "crosswalk") {
		t.Errorf("dlq reasons (%v):\n%s", err, out)
	}
}
