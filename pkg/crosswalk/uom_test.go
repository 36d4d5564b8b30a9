package crosswalk_test

import (
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/crosswalk"
)

func TestUnitFactor(t *testing.T) {
	items, err := crosswalk.ParseCodes(crosswalk.Item, strings.NewReader("source,code,fusion_item,organization,epic_uom,fusion_uom,factor\n"+
		"reagent,GLU-R1,LAB-4002,MAIN,L,ML,1000\nreagent,CBC-PK,LAB-4001,MAIN,PK,EA,\nndc,1,RX-1,MAIN,,EA,\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	uom, err := crosswalk.ParseCodes(crosswalk.UOM, strings.NewReader("epic_uom,fusion_uom,factor\nTAB,EA,1\nBOX,EA,12\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		source, code, unit string
		uom                *crosswalk.Codes
		want               string
		ok                 bool
	}{
		{"reagent", "GLU-R1", "L", nil, "1000", true},
		{"reagent", "GLU-R1", "l", nil, "1000", true},
		{"reagent", "GLU-R1", "", nil, "1000", true},
		{"reagent", "GLU-R1", "ML", nil, "1", true},
		{"reagent", "CBC-PK", "PK", nil, "1", true},
		{"ndc", "1", "", nil, "1", true},
		{"ndc", "1", "BOX", uom, "12", true},
		{"ndc", "1", "BOX", nil, "", false},
		{"reagent", "GLU-R1", "GAL", uom, "", false},
	} {
		row := items.LookupString(c.source, c.code)
		got, ok := crosswalk.UnitFactor(nil, row, c.uom, c.unit)
		if got != c.want || ok != c.ok {
			t.Errorf("%s %s in %q: %q, %v; want %q, %v", c.source, c.code, c.unit, got, ok, c.want, c.ok)
		}
	}
}
