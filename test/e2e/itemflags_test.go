package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
)

// simItem is an item as fusionsim's /sim/items shows it.
type simItem struct {
	ItemNumber, OrganizationCode, Description    string
	LotControlled, SerialControlled, Program340B *bool
}

func itemOf(t *testing.T, f *fusionProc, number string) simItem {
	t.Helper()
	var items []simItem
	f.get(t, "/sim/items", &items)
	for _, it := range items {
		if it.ItemNumber == number && it.OrganizationCode == "MAIN" {
			return it
		}
	}
	t.Fatalf("no item %s in fusionsim", number)
	return simItem{}
}

func isTrue(p *bool) bool { return p != nil && *p }

// sendAA sends one message over MLLP and expects AA.
func sendAA(t *testing.T, addr, msg string) {
	t.Helper()
	ctx := context.Background()
	c, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: addr, Match: hl7.AckMatches, AckTimeout: 5 * time.Second, Retries: 10, RetryDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ack, err := c.Send(ctx, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	if a, err := hl7.Parse(ack); err != nil || a.Get("MSA-1") != "AA" {
		t.Fatalf("answered %q", ack)
	}
}

// TestItemMasterUpdateKeepsFusionFlags reproduces issue 9 item 1 on the
// real processes: a Willow formulary MFN^M15 MUP changes RX-1002's
// description and leaves its 340B flag Y; an OpTime MFN^M01 for OR-HIP4
// leaves IMP-3001's lot and serial control on. A command that does switch
// IMP-3001's lot control off while it has stock is refused by Fusion and
// dead-lettered with Fusion's code, the item unchanged.
func TestItemMasterUpdateKeepsFusionFlags(t *testing.T) {
	fusion := startFusion(t, "-step", "50ms")
	if it := itemOf(t, fusion, "RX-1002"); !isTrue(it.Program340B) {
		t.Fatalf("fusionsim's master data changed: RX-1002 %+v", it)
	}
	if it := itemOf(t, fusion, "IMP-3001"); !isTrue(it.LotControlled) || !isTrue(it.SerialControlled) {
		t.Fatalf("fusionsim's master data changed: IMP-3001 %+v", it)
	}
	a := newAddrs(t)
	s, _ := upWith(t, t.TempDir(), a, []string{"--fusion-url", fusion.url}, nil)

	ts := time.Now().UTC().Format("20060102150405")
	sendAA(t, a.mllp, "MSH|^~\\&|WILLOW|STMARYS|SINEW|STMARYS|"+ts+"||MFN^M15^MFN_M15|WIF"+ts+"|P|2.5.1\r"+
		"MFI|IIM^Inventory Item Master^HL70175||UPD|||AL\r"+
		"MFE|MUP|"+ts+"||0781-3207-95^New text^NDC|CE\r")
	sendAA(t, a.mllp, "MSH|^~\\&|OPTIME|STMARYS|SINEW|STMARYS|"+ts+"||MFN^M01^MFN_M01|OIF"+ts+"|P|2.5.1\r"+
		"MFI|PREFCARD^OpTime preference card items^L||UPD|||AL\r"+
		"MFE|MUP|"+ts+"||OR-HIP4^Hip stem cemented size 4 (rev B)^OPTIME|CE\r"+
		"ZPC|PC-HIP-ARTHRO|Total hip arthroplasty|1\r")

	waitFor(t, "both updates in Fusion", 30*time.Second, func() (bool, string) {
		rx, imp := itemOf(t, fusion, "RX-1002"), itemOf(t, fusion, "IMP-3001")
		b, _ := json.Marshal([]simItem{rx, imp})
		return rx.Description == "New text" && imp.Description == "Hip stem cemented size 4 (rev B)", string(b)
	})
	if it := itemOf(t, fusion, "RX-1002"); !isTrue(it.Program340B) {
		t.Errorf("RX-1002 lost its 340B flag: %+v", it)
	}
	if it := itemOf(t, fusion, "IMP-3001"); !isTrue(it.LotControlled) || !isTrue(it.SerialControlled) {
		t.Errorf("IMP-3001 lost its controls: lot %v serial %v", it.LotControlled, it.SerialControlled)
	}

	// A command that says "lot control off" for an item with stock: Fusion
	// refuses it, the loader dead-letters it with Fusion's code.
	key := "optime-materials:epic.optime:item-OR-HIP4:e2e-lot-off"
	cmd := &sinewv1.ItemUpsert{
		Envelope: &sinewv1.Envelope{EventId: bus.EventID(key), Flow: "optime-materials", SourceSystem: "epic.optime",
			SourceId: "OR-HIP4", IdempotencyKey: key},
		ItemNumber: "IMP-3001", Organization: "MAIN", LotControlled: proto.Bool(false), Action: "update",
	}
	data, err := proto.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	js := s.js(t)
	m := &nats.Msg{Subject: "fusion.cmd.optime-materials.item", Data: data, Header: nats.Header{}}
	m.Header.Set(nats.MsgIdHdr, key)
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	var reason string
	waitFor(t, "the refused command dead-lettered", 30*time.Second, func() (bool, string) {
		out, err := s.cli(t, "dlq", "list", "--json")
		if err != nil {
			return false, out
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var dl struct{ Reason string }
			if json.Unmarshal([]byte(line), &dl) == nil && strings.Contains(dl.Reason, key) {
				reason = dl.Reason
				return true, ""
			}
		}
		return false, out
	})
	if !strings.Contains(reason, "EGP_CONTROL_ONHAND_EXISTS") || !strings.Contains(reason, "permanent") {
		t.Errorf("dead letter reason %q: want permanent with Fusion's code", reason)
	}
	if it := itemOf(t, fusion, "IMP-3001"); !isTrue(it.LotControlled) {
		t.Errorf("IMP-3001's lot control switched off with stock on hand: %+v", it)
	}
}
