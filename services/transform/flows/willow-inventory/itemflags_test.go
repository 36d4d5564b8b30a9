package willowinventory_test

import (
	"os"
	"strings"
	"testing"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/services/transform/flows/hl7flow/flowtest"
	willowinventory "github.com/sinewhq/sinew/services/transform/flows/willow-inventory"
)

// TestFormularyUpdateCarriesNoFlags: issue 9 item 1. A formulary MUP that
// changes RX-1002's description carries no 340B flag: the command leaves
// program_340b unset (not false), so the loader does not switch Fusion's
// flag off. The golden file mfn_m15_mup_description_only holds the same.
func TestFormularyUpdateCarriesNoFlags(t *testing.T) {
	for _, file := range []string{"mfn_m15_mup_description_only", "mfn_m15_formulary"} {
		raw, err := os.ReadFile("testdata/" + file + ".hl7")
		if err != nil {
			t.Fatal(err)
		}
		out, cmds := flowtest.Map(t, flowtest.Mapper(t, willowinventory.Flow), flowtest.Tables(t), raw)
		if len(cmds) == 0 {
			t.Fatalf("%s: no command: %+v", file, out)
		}
		for i, c := range cmds {
			it := c.Msg.(*sinewv1.ItemUpsert)
			if it.Program_340B != nil || it.LotControlled != nil || it.SerialControlled != nil {
				t.Errorf("%s: %s: flags set although the message carries none: 340B %v lot %v serial %v",
					file, it.ItemNumber, it.Program_340B, it.LotControlled, it.SerialControlled)
			}
			for _, k := range []string{"program340b", "lotControlled", "serialControlled"} {
				if strings.Contains(string(out.Commands[i].Command), k) {
					t.Errorf("%s: golden command has %s", file, k)
				}
			}
		}
	}
	raw, _ := os.ReadFile("testdata/mfn_m15_mup_description_only.hl7")
	_, cmds := flowtest.Map(t, flowtest.Mapper(t, willowinventory.Flow), flowtest.Tables(t), raw)
	if it := cmds[0].Msg.(*sinewv1.ItemUpsert); it.ItemNumber != "RX-1002" || it.Description != "New text" || it.Action != "update" {
		t.Errorf("%v", it)
	}
}
