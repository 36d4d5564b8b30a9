package willowinventory_test

import (
	"flag"
	"os"
	"strings"
	"testing"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow/flowtest"
	willowinventory "github.com/sinewhq/sinew/services/transform/flows/willow-inventory"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestGolden(t *testing.T) {
	all := flowtest.Golden(t, willowinventory.Flow, *update)
	// What the golden files hold, spelled out for the properties that matter.
	if o := all["rds_o13_340b_ed"]; len(o.Commands) != 1 || !strings.Contains(string(o.Commands[0].Command), `"program340b": true`) ||
		o.Commands[0].MsgID != "willow-inventory:epic.willow:rx-RX0000101:1" {
		t.Errorf("340B dispense: %+v", o)
	}
	if a, b := all["rds_o13_340b_ed"], all["rds_o13_resend_new_control_id"]; len(b.Commands) != 1 || a.Commands[0].MsgID != b.Commands[0].MsgID {
		t.Error("a resend with a new control id must keep the idempotency key")
	}
	for _, name := range []string{"bar_p01_account", "corpus_BAR_P01__fhirconv", "corpus_BAR_P01__hapi1993_msh2_subcomp_brace", "corpus_MFN_M03__hl7spec_original_mode"} {
		if o := all[name]; o.Error != "" || len(o.Commands) != 0 || o.Detail == "" {
			t.Errorf("%s: want acknowledged without a command, with a detail: %+v", name, o)
		}
	}
	for name, code := range map[string]string{"rds_o13_unmapped_ndc": "9999-9999-99"} {
		o := all[name]
		// The error names the path, never the code: a wrong field can carry an MRN.
		if !o.Permanent || o.Unmapped == nil || o.Unmapped.Code != code || strings.Contains(o.Error, code) || !strings.Contains(o.Error, "RXD-2-1") {
			t.Errorf("%s: want a permanent unmapped error naming RXD-2-1, not %s: %+v", name, code, o)
		}
	}
	for _, name := range []string{"rds_o13_no_340b", "rds_o13_bad_340b", "corpus_RDS_O13__fhirconv_01_rxd_ft1", "corpus_DFT_P03__fhirconv_01"} {
		if o := all[name]; !o.Permanent || len(o.Commands) != 0 {
			t.Errorf("%s: want a permanent error: %+v", name, o)
		}
	}
}

func TestChargesAndCredits(t *testing.T) {
	raw, err := os.ReadFile("testdata/dft_p03_charges_credit.hl7")
	if err != nil {
		t.Fatal(err)
	}
	_, cmds := flowtest.Map(t, flowtest.Mapper(t, willowinventory.Flow), flowtest.Tables(t), raw)
	if len(cmds) != 2 {
		t.Fatalf("%d commands, want 2 (the payment line skipped)", len(cmds))
	}
	issue, receipt := cmds[0].Msg.(*sinewv1.InventoryTransaction), cmds[1].Msg.(*sinewv1.InventoryTransaction)
	if issue.TransactionType != hl7flow.Issue || issue.Quantity.Value != "-2" || issue.ItemNumber != "RX-1001" || issue.Subinventory != "PHARM-ED" || !issue.Program_340B {
		t.Errorf("charge: %v", issue)
	}
	if receipt.TransactionType != hl7flow.Receipt || receipt.Quantity.Value != "1" || receipt.ItemNumber != "RX-1004" || receipt.Subinventory != "PHARM-MAIN" {
		t.Errorf("credit: %v", receipt)
	}
	for _, c := range []*sinewv1.InventoryTransaction{issue, receipt} {
		if c.SourceHeaderId == "" || c.SourceHeaderId[0] == '-' || c.SourceLineId == c.SourceHeaderId {
			t.Errorf("ids %s %s", c.SourceHeaderId, c.SourceLineId)
		}
		for _, kv := range c.Envelope.BusinessKeys {
			k := kv.Key
			if strings.Contains(strings.ToLower(k), "mrn") || strings.Contains(strings.ToLower(k), "patient") {
				t.Errorf("business key %s", k)
			}
		}
	}
}

// BenchmarkDispense maps one RDS^O13 per iteration, parsing it with
// ParseInto into a reused message, as the transform consumer does.
func BenchmarkDispense(b *testing.B) {
	raw, err := os.ReadFile("testdata/rds_o13_340b_ed.hl7")
	if err != nil {
		b.Fatal(err)
	}
	mp, tabs := flowtest.Mapper(b, willowinventory.Flow), flowtest.Tables(b)
	ev, _, err := hl7flow.Event(raw, flowtest.ReceivedAt)
	if err != nil {
		b.Fatal(err)
	}
	var m hl7.Message
	var res hl7flow.Result
	b.ReportAllocs()
	for b.Loop() {
		if err := (hl7.Options{}).ParseInto(&m, raw); err != nil {
			b.Fatal(err)
		}
		if err := mp.Map(&m, ev, tabs, &res); err != nil || len(res.Commands) != 1 {
			b.Fatal(err)
		}
	}
}
