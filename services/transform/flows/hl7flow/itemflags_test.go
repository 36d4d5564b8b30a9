package hl7flow_test

import (
	"testing"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow/flowtest"
)

// TestItemFlagsTriState: a site that configures flag fields for its item
// master gets "given true", "given false" and "not given" apart (issue 9
// item 1: not given used to go out as false).
func TestItemFlagsTriState(t *testing.T) {
	yn := func(path string) flows.Field {
		return flows.Field{Path: path, True: []string{"Y"}, False: []string{"N"}}
	}
	mp, err := hl7flow.New(&flows.Flow{ID: "optime-materials", HL7: &flows.HL7{SourceSystem: "epic.optime",
		Messages: map[string]flows.HL7Message{"MFN^M01": {Shape: hl7flow.ItemMaster, Source: "supply", Fields: map[string]flows.Field{
			"lot_controlled": yn("ZIT-1"), "serial_controlled": yn("ZIT-2"), "program_340b": yn("ZIT-3")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	msg := "MSH|^~\\&|OPTIME|STMARYS|SINEW|STMARYS|20261126081500||MFN^M01^MFN_M01|O0012|P|2.5.1\r" +
		"MFE|MUP|20261126081000||OR-HIP4^Hip stem^OPTIME|CE\rZIT|Y|N\r" + // 340B not given
		"MFE|MUP|20261126081001||OR-SCR45^Screw^OPTIME|CE\r" + // nothing given
		"MFE|MUP|20261126081002||OR-TRO12^Trocar^OPTIME|CE\rZIT|N||Y\r"
	_, cmds := flowtest.Map(t, mp, flowtest.Tables(t), []byte(msg))
	if len(cmds) != 3 {
		t.Fatalf("%d commands", len(cmds))
	}
	show := func(p *bool) string {
		if p == nil {
			return "unset"
		}
		if *p {
			return "true"
		}
		return "false"
	}
	for i, want := range [][3]string{{"true", "false", "unset"}, {"unset", "unset", "unset"}, {"false", "unset", "true"}} {
		it := cmds[i].Msg.(*sinewv1.ItemUpsert)
		got := [3]string{show(it.LotControlled), show(it.SerialControlled), show(it.Program_340B)}
		if got != want {
			t.Errorf("record %d (%s): lot/serial/340B %v, want %v", i+1, it.ItemNumber, got, want)
		}
	}
}
