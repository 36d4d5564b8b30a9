package optimematerials_test

import (
	"os"
	"strings"
	"testing"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/services/transform/flows/hl7flow/flowtest"
	optimematerials "github.com/sinewhq/sinew/services/transform/flows/optime-materials"
)

// TestPreferenceCardCarriesNoControls: issue 9 item 1. An OpTime MFN^M01
// for OR-HIP4 says nothing about lot or serial control: the command leaves
// both unset, so IMP-3001 keeps its controls in Fusion (golden file
// mfn_m01_mup_no_control_flags).
func TestPreferenceCardCarriesNoControls(t *testing.T) {
	for _, file := range []string{"mfn_m01_mup_no_control_flags", "mfn_m01_preference_card"} {
		raw, err := os.ReadFile("testdata/" + file + ".hl7")
		if err != nil {
			t.Fatal(err)
		}
		out, cmds := flowtest.Map(t, flowtest.Mapper(t, optimematerials.Flow), flowtest.Tables(t), raw)
		if len(cmds) == 0 {
			t.Fatalf("%s: no command: %+v", file, out)
		}
		for i, c := range cmds {
			it := c.Msg.(*sinewv1.ItemUpsert)
			if it.LotControlled != nil || it.SerialControlled != nil || it.Program_340B != nil {
				t.Errorf("%s: %s: flags set although the message carries none: lot %v serial %v 340B %v",
					file, it.ItemNumber, it.LotControlled, it.SerialControlled, it.Program_340B)
			}
			if strings.Contains(string(out.Commands[i].Command), "Controlled") {
				t.Errorf("%s: golden command has a control flag", file)
			}
		}
		if it := cmds[0].Msg.(*sinewv1.ItemUpsert); it.ItemNumber != "IMP-3001" || it.Action != "update" {
			t.Errorf("%s: %v", file, it)
		}
	}
}
