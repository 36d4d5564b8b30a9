package beakerinventory_test

import (
	"flag"
	"os"
	"testing"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	beakerinventory "github.com/sinewhq/sinew/services/transform/flows/beaker-inventory"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow/flowtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestGolden(t *testing.T) {
	all := flowtest.Golden(t, beakerinventory.Flow, *update)
	for _, name := range []string{"oru_r01_preliminary", "oru_r01_no_reagents", "corpus_MFN_M03__hl7spec_enhanced_mode_AL_AL"} {
		if o := all[name]; o.Error != "" || len(o.Commands) != 0 || o.Detail == "" {
			t.Errorf("%s: want no command: %+v", name, o)
		}
	}
	if o := all["oru_r01_unmapped_reagent"]; !o.Permanent || o.Unmapped == nil || o.Unmapped.Code != "XYZ-R9" {
		t.Errorf("unmapped reagent: %+v", o)
	}
}

func TestReagentsAndSupplier(t *testing.T) {
	mp, tabs := flowtest.Mapper(t, beakerinventory.Flow), flowtest.Tables(t)
	raw, err := os.ReadFile("testdata/oru_r01_reagents_final.hl7")
	if err != nil {
		t.Fatal(err)
	}
	_, cmds := flowtest.Map(t, mp, tabs, raw)
	if len(cmds) != 2 {
		t.Fatalf("%d commands", len(cmds))
	}
	cbc, glu := cmds[0].Msg.(*sinewv1.InventoryTransaction), cmds[1].Msg.(*sinewv1.InventoryTransaction)
	if cbc.ItemNumber != "LAB-4001" || cbc.Quantity.Value != "-1" || cbc.Quantity.Uom != "EA" || cbc.Subinventory != "LAB-CORE" {
		t.Errorf("CBC: %v", cbc)
	}
	if glu.ItemNumber != "LAB-4002" || glu.Quantity.Value != "-250" || glu.Quantity.Uom != "ML" || glu.LotNumber != "LOT-G-9" {
		t.Errorf("glucose (0.25 L = 250 ML): %v", glu)
	}
	raw, err = os.ReadFile("testdata/mfn_m01_supplier.hl7")
	if err != nil {
		t.Fatal(err)
	}
	_, cmds = flowtest.Map(t, mp, tabs, raw)
	if len(cmds) != 1 {
		t.Fatalf("%d supplier commands", len(cmds))
	}
	s := cmds[0].Msg.(*sinewv1.SupplierChange)
	if s.Origin != "epic" || s.SupplierNumber != "9001" || s.Name != "Acme Medical Supply" || s.Action != "create" || len(s.Sites) != 1 ||
		s.Sites[0].SiteCode != "ACME-MAIN" || s.Sites[0].ProcurementBu != "Main Hospital BU" || cmds[0].Subject != "fusion.cmd.beaker-inventory.supplier" {
		t.Errorf("supplier: %v %s", s, cmds[0].Subject)
	}
}
