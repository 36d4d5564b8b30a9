package optimematerials_test

import (
	"flag"
	"os"
	"testing"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/services/transform/flows/hl7flow/flowtest"
	optimematerials "github.com/sinewhq/sinew/services/transform/flows/optime-materials"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestGolden(t *testing.T) {
	all := flowtest.Golden(t, optimematerials.Flow, *update)
	if o := all["dft_p03_case_in_progress"]; o.Error != "" || len(o.Commands) != 0 {
		t.Errorf("a case in progress consumes nothing: %+v", o)
	}
	if o := all["dft_p03_case_unmapped_supply"]; !o.Permanent || o.Unmapped == nil || o.Unmapped.Code != "OR-XYZ99" || o.Unmapped.Kind != "item" {
		t.Errorf("unmapped supply: %+v", o)
	}
	if o := all["mfn_m01_preference_card"]; len(o.Commands) != 2 {
		t.Errorf("preference card: %+v", o)
	}
	if o := all["corpus_DFT_P03__fhirconv_01"]; !o.Permanent {
		t.Errorf("corpus DFT has no case id: %+v", o)
	}
}

func TestImplantsKeepLotAndSerial(t *testing.T) {
	raw, err := os.ReadFile("testdata/dft_p03_case_complete_implants.hl7")
	if err != nil {
		t.Fatal(err)
	}
	_, cmds := flowtest.Map(t, flowtest.Mapper(t, optimematerials.Flow), flowtest.Tables(t), raw)
	if len(cmds) != 4 {
		t.Fatalf("%d commands", len(cmds))
	}
	want := []struct{ item, qty, uom, lot, serial string }{
		{"SUP-2001", "-2", "EA", "", ""}, {"SUP-2002", "-1", "BX", "", ""},
		{"IMP-3001", "-1", "EA", "LOT-H4-7781", "SN-000991"}, {"IMP-3002", "-3", "EA", "LOT-S45-220", ""},
	}
	for i, w := range want {
		c := cmds[i].Msg.(*sinewv1.InventoryTransaction)
		if c.ItemNumber != w.item || c.Quantity.Value != w.qty || c.Quantity.Uom != w.uom || c.LotNumber != w.lot || c.SerialNumber != w.serial ||
			c.Subinventory != "OR-CORE" || c.Organization != "MAIN" {
			t.Errorf("line %d: %v", i+1, c)
		}
		if cmds[i].MsgID != c.Envelope.IdempotencyKey || c.Envelope.SourceSystem != "epic.optime" {
			t.Errorf("line %d: msg id %s key %s", i+1, cmds[i].MsgID, c.Envelope.IdempotencyKey)
		}
	}
}
