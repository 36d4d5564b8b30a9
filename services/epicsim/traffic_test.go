package epicsim_test

import (
	"os"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/services/epicsim"
)

// TestTrafficMatchesDemoCrosswalks checks that every code epicsim sends to
// the Willow, OpTime and Beaker flows is in the demo crosswalks, and that
// the day starts with the three master-file messages.
func TestTrafficMatchesDemoCrosswalks(t *testing.T) {
	load := func(kind, file string) *crosswalk.Codes {
		f, err := os.Open("../../deploy/demo/" + file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		c, err := crosswalk.ParseCodes(kind, f, "")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	items, depts := load(crosswalk.Item, "items.csv"), load(crosswalk.Department, "departments.csv")
	g := epicsim.NewGenerator(3, "STMARYS")
	now := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	seen := map[string]int{}
	for i := range 1000 {
		raw, typ := g.Next(now)
		m, err := hl7.Parse(raw)
		if err != nil || len(m.Warnings()) != 0 {
			t.Fatalf("message %d: %v %v", i, err, m.Warnings())
		}
		app := m.SendingApplication()
		seen[app+" "+typ]++
		check := func(source, path string) {
			for r := range m.Count(path[:3]) {
				p := hl7.MustPath(path)
				p.SegRep = r
				if code := m.Value(p); (source == "dept" && depts.LookupString(code) == nil) || (source != "dept" && items.LookupString(source, code) == nil) {
					t.Errorf("%s %s: %s %q is not in the demo crosswalk", app, typ, path, code)
				}
			}
		}
		switch app + " " + typ {
		case "WILLOW RDS^O13":
			check("ndc", "RXD-2-1")
			check("dept", "ZRX-2")
		case "WILLOW DFT^P03":
			check("charge", "FT1-7-1")
			check("dept", "FT1-13")
		case "OPTIME DFT^P03":
			check("supply", "FT1-7-1")
			check("dept", "ZCS-3")
		case "BEAKER ORU^R01":
			check("reagent", "ZRG-1")
			check("dept", "ZRG-5")
		case "WILLOW MFN^M15":
			check("ndc", "MFE-4-1")
		case "OPTIME MFN^M01":
			check("supply", "MFE-4-1")
		}
		if i < 3 && m.Type() != "MFN" {
			t.Errorf("message %d is %s, want the day's MFNs first", i, typ)
		}
	}
	for _, k := range []string{"WILLOW RDS^O13", "WILLOW DFT^P03", "WILLOW BAR^P01", "OPTIME DFT^P03", "BEAKER ORU^R01", "RESOLUTE DFT^P03"} {
		if seen[k] < 20 {
			t.Errorf("only %d %s in 1000 messages", seen[k], k)
		}
	}
	if seen["WILLOW MFN^M15"] != 1 || seen["OPTIME MFN^M01"] != 1 || seen["BEAKER MFN^M01"] != 1 {
		t.Errorf("MFNs: %v", seen)
	}
}

func TestUnmappedRate(t *testing.T) {
	g := epicsim.NewGenerator(5, "STMARYS")
	g.UnmappedRate = 1
	for range 50 {
		raw, typ := g.Next(time.Now())
		if typ != "RDS^O13" {
			continue
		}
		m, _ := hl7.Parse(raw)
		if m.Get("RXD-2-1") != "0000-0000-00" {
			t.Fatalf("dispense with %s at UnmappedRate 1", m.Get("RXD-2-1"))
		}
	}
}
