package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// phiDispense is a Willow RDS^O13 of a synthetic patient with ZRX-1,
// RXD-2 and RXD-4 as given.
func phiDispense(id, zrx1, rxd2, rxd4 string) string {
	ts := time.Now().UTC().Format("20060102150405")
	return "MSH|^~\\&|WILLOW|STMARYS|SINEW|STMARYS|" + ts + "||RDS^O13^RDS_O13|" + id + "|P|2.5.1\r" +
		"PID|1||E7654321^^^STMARYS^MR||TESTPATIENT^CHARLIE||19700101|F\r" +
		"ORC|RE|RX" + id + "|RX" + id + "||CM\r" +
		"RXD|1|" + rxd2 + "^Ceftriaxone 1 g vial^NDC|" + ts + "|" + rxd4 + "|EA^^UCUM||RX" + id + "\r" +
		"ZRX|" + zrx1 + "|EDPHARM\r"
}

// TestFieldValuesNotInErrorTexts repeats issue 9 item 7's probe on `sinew
// up`: a name in ZRX-1, a date in RXD-4 and an MRN in RXD-2 are answered
// AA, kept, dead-lettered by transform, and none of the values is in a
// DLQ reason, an audit record (`sinew audit list`) or the log.
func TestFieldValuesNotInErrorTexts(t *testing.T) {
	a := newAddrs(t)
	s, _ := upWith(t, t.TempDir(), a, nil, nil)
	const name, mrn = "QUINTESSA VANDERMEER", "MRN12345678"
	stamp := time.Now().UTC().Format("150405")
	sendAA(t, a.mllp, phiDispense("PN"+stamp, name, "0781-3207-95", "2"))
	sendAA(t, a.mllp, phiDispense("PD"+stamp, "Y", "0781-3207-95", "1970-01-01"))
	sendAA(t, a.mllp, phiDispense("PM"+stamp, "Y", mrn, "2"))
	sendAA(t, a.mllp, phiDispense("PQ"+stamp, "Y", "0781-3207-95", "19700101")) // a number: mapped and loaded

	values := []string{name, "VANDERMEER", "1970-01-01", "19700101", mrn, "12345678", "E7654321", "TESTPATIENT"}
	var reasons []string
	waitFor(t, "three dead letters", 30*time.Second, func() (bool, string) {
		out, err := s.cli(t, "dlq", "list", "--json")
		if err != nil {
			return false, out
		}
		reasons = reasons[:0]
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var dl struct{ Reason string }
			if json.Unmarshal([]byte(line), &dl) == nil && dl.Reason != "" {
				reasons = append(reasons, dl.Reason)
			}
		}
		return len(reasons) >= 3, out
	})
	want := map[string]string{"PN" + stamp: "(ZRX-1): HL7 error 103", "PD" + stamp: "(RXD-4): HL7 error 102", "PM" + stamp: "from RXD-2-1 (HL7 error 103"}
	for _, r := range reasons {
		for _, v := range values {
			if strings.Contains(r, v) {
				t.Errorf("DLQ reason shows %q: %s", v, r)
			}
		}
		for id, w := range want {
			if strings.Contains(r, id) && !strings.Contains(r, w) {
				t.Errorf("DLQ reason of %s lacks %q: %s", id, w, r)
			}
		}
	}
	// The mapped dispense reaches Fusion (its loader hop audited) before
	// the audit trail is read.
	waitFor(t, "the mapped dispense loaded", 30*time.Second, func() (bool, string) {
		out, _ := s.cli(t, "audit", "list")
		return strings.Count(out, "accepted in Fusion") >= 1, out
	})
	out, err := s.cli(t, "audit", "list")
	if err != nil {
		t.Fatalf("audit list: %v\n%s", err, out)
	}
	for _, v := range values {
		if strings.Contains(out, v) {
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, v) {
					t.Errorf("an audit record shows %q: %s", v, line)
					break
				}
			}
		}
	}
	s.stop(t)
	log := s.log.String()
	if !strings.Contains(log, "dead-lettered") {
		t.Errorf("no dead-letter line in the log")
	}
	for _, v := range values {
		if i := strings.Index(log, v); i >= 0 {
			t.Errorf("the log shows %q: …%s…", v, log[max(0, i-200):min(len(log), i+50)])
		}
	}
}
