package hl7flow_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow/flowtest"
)

// rds is a Willow RDS^O13 (synthetic patient) with ZRX-1, RXD-2 and RXD-4
// as given.
func rds(zrx1, rxd2, rxd4 string) []byte {
	return []byte("MSH|^~\\&|WILLOW|STMARYS|SINEW|STMARYS|20261126075500||RDS^O13^RDS_O13|W0901|P|2.5.1\r" +
		"PID|1||E1234567^^^STMARYS^MR||TESTPATIENT^ALPHA||19700101|F\r" +
		"ORC|RE|RX0000901|RX0000901||CM\r" +
		"RXD|1|" + rxd2 + "^Ceftriaxone 1 g vial^NDC|20261126074500|" + rxd4 + "|EA^^UCUM||RX0000901\r" +
		"ZRX|" + zrx1 + "|EDPHARM\r")
}

// The values of issue 9 item 7's probe (all synthetic).
const (
	phiName = "QUINTESSA VANDERMEER"
	phiDate = "19700101"
	phiMRN  = "MRN12345678"
)

// TestErrorsNameThePathNotTheValue: issue 9 item 7. A name in ZRX-1, a
// date-like RXD-4 and an MRN-like RXD-2 are named in the error by path,
// table 0357 code, length and keyed hash, never by their value.
func TestErrorsNameThePathNotTheValue(t *testing.T) {
	mp := flowtest.Mapper(t, "willow-inventory")
	tabs := flowtest.Tables(t)
	for _, tc := range []struct {
		name, value string
		raw         []byte
		want        []string // in the error text
		unmapped    bool
	}{
		{"name in ZRX-1", phiName, rds(phiName, "0781-3207-95", "2"),
			[]string{"program_340b (ZRX-1)", "HL7 error 103 Table value not found", "20 bytes", "hmac-sha256:"}, false},
		{"date in RXD-4", "1970-01-01", rds("Y", "0781-3207-95", "1970-01-01"),
			[]string{"quantity (RXD-4)", "HL7 error 102 Data type error", "10 bytes", "hmac-sha256:"}, false},
		{"MRN in RXD-2", phiMRN, rds("Y", phiMRN, "2"),
			[]string{"RXD-2-1", "HL7 error 103", "11 bytes", "hmac-sha256:"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, m, err := hl7flow.Event(tc.raw, flowtest.ReceivedAt)
			if err != nil {
				t.Fatal(err)
			}
			var res hl7flow.Result
			err = mp.Map(m, ev, tabs, &res)
			if err == nil || !bus.IsPermanent(err) {
				t.Fatalf("want a permanent error, got %v", err)
			}
			text := err.Error()
			for _, v := range []string{tc.value, "TESTPATIENT", "E1234567", phiDate} {
				if strings.Contains(text, v) {
					t.Errorf("error shows %q: %s", v, text)
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("error lacks %q: %s", w, text)
				}
			}
			var ue *hl7flow.UnmappedError
			var fe *hl7flow.FieldError
			if tc.unmapped != errors.As(err, &ue) || !tc.unmapped && !errors.As(err, &fe) {
				t.Errorf("error type %T", errors.Unwrap(err))
			}
		})
	}

	// A date-like RXD-4 that is a number maps: its digits are not in the
	// audit detail (the quantity travels in the command only).
	ev, m, err := hl7flow.Event(rds("Y", "0781-3207-95", phiDate), flowtest.ReceivedAt)
	if err != nil {
		t.Fatal(err)
	}
	var res hl7flow.Result
	if err := mp.Map(m, ev, tabs, &res); err != nil || len(res.Commands) != 1 {
		t.Fatalf("%v %d", err, len(res.Commands))
	}
	if strings.Contains(res.Detail, phiDate) {
		t.Errorf("detail shows RXD-4: %s", res.Detail)
	}

	// The same value under the same secret has the same reference, so an
	// operator can match dead letters; another secret gives another one.
	ref := func(secret string) string {
		mp := flowtest.Mapper(t, "willow-inventory")
		mp.Secret = []byte(secret)
		ev, m, _ := hl7flow.Event(rds("Y", phiMRN, "2"), flowtest.ReceivedAt)
		var ue *hl7flow.UnmappedError
		if err := mp.Map(m, ev, tabs, &res); !errors.As(err, &ue) {
			t.Fatalf("%v", err)
		}
		return ue.Value.Ref
	}
	if a, b, c := ref("k1"), ref("k1"), ref("k2"); a == "" || a != b || a == c {
		t.Errorf("refs %q %q %q", a, b, c)
	}
	mp.Secret = nil
	ev, m, _ = hl7flow.Event(rds(phiName, "0781-3207-95", "2"), flowtest.ReceivedAt)
	if err := mp.Map(m, ev, tabs, &res); err == nil || strings.Contains(err.Error(), "hmac") || !strings.Contains(err.Error(), "20 bytes") {
		t.Errorf("without a secret, the length only: %v", err)
	}
}
