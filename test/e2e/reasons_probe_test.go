package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
)

// TestDeadLetterReasonCodesUnderUp: under `sinew up` a data-type error
// (RXD-4), an unmapped NDC (RXD-2) and a message ingest rejected (MSH-9
// missing) are dead-lettered with their table 0357 codes; `dlq list --reason-code` selects them and `dlq reasons`
// counts them with the catalogue's action.
func TestDeadLetterReasonCodesUnderUp(t *testing.T) {
	a := newAddrs(t)
	s, _ := upWith(t, t.TempDir(), a, nil, nil)
	stamp := time.Now().UTC().Format("150405")
	sendAA(t, a.mllp, phiDispense("CD"+stamp, "Y", "0781-3207-95", "1970-01-01"))
	sendAA(t, a.mllp, phiDispense("CM"+stamp, "Y", "0000-0000-00", "2"))
	sendAR(t, a.mllp, "MSH|^~\\&|WILLOW|STMARYS|SINEW|STMARYS|20261126|||RJ"+stamp+"|P|2.5.1\rPID|1\r") // MSH-9 missing
	codes := map[string]string{}
	waitFor(t, "three dead letters", 30*time.Second, func() (bool, string) {
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
				for _, id := range []string{"CD" + stamp, "CM" + stamp, "RJ" + stamp} {
					if strings.Contains(dl.Reason, id) {
						codes[id] = dl.ReasonCode
					}
				}
			}
		}
		return len(codes) == 3, out
	})
	if codes["CD"+stamp] != "SINEW-HL7-102" || codes["CM"+stamp] != "SINEW-HL7-103" || codes["RJ"+stamp] != "SINEW-HL7-101" {
		t.Errorf("codes %v, want SINEW-HL7-102, SINEW-HL7-103 and (rejected at ingest) SINEW-HL7-101", codes)
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

// sendAR sends msg and wants it rejected (AR).
func sendAR(t *testing.T, addr, msg string) {
	t.Helper()
	ctx := context.Background()
	c, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: addr, Match: hl7.AckMatches, AckTimeout: 5 * time.Second, Retries: 10, RetryDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ack, err := c.Send(ctx, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	if a, err := hl7.Parse(ack); err != nil || a.Get("MSA-1") != hl7.AR {
		t.Fatalf("answered %q", ack)
	}
}
