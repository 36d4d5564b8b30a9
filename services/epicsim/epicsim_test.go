package epicsim_test

import (
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/services/epicsim"
)

func TestGeneratorMessagesParseAndRepeat(t *testing.T) {
	now := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	a, b := epicsim.NewGenerator(7, "STMARYS"), epicsim.NewGenerator(7, "STMARYS")
	types := map[string]int{}
	for i := range 500 {
		m1, typ := a.Next(now)
		m2, _ := b.Next(now)
		if string(m1) != string(m2) {
			t.Fatalf("message %d differs for the same seed", i)
		}
		m, err := hl7.Parse(m1)
		if err != nil {
			t.Fatalf("message %d: %v\n%q", i, err, m1)
		}
		if len(m.Warnings()) != 0 || m.Type()+"^"+m.Event() != typ || m.SendingFacility() != "STMARYS" {
			t.Fatalf("message %d: %s warnings %v", i, typ, m.Warnings())
		}
		if typ == "RDS^O13" && (m.Get("RXD-2-3") != "NDC" || m.Get("ZRX-1") == "") {
			t.Fatalf("dispense without NDC or 340B flag: %q", m1)
		}
		types[typ]++
	}
	for _, typ := range []string{"ADT^A04", "ADT^A08", "RDS^O13", "DFT^P03"} {
		if types[typ] < 20 {
			t.Errorf("only %d %s in 500 messages", types[typ], typ)
		}
	}
}
