package fusionsim_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/services/fusionsim"
)

// TestItemControlRefusedWithStock: Fusion refuses to change an item's lot
// or serial control while stock of it is on hand (a 400 in Fusion's error
// shape); without stock the change is taken; an upsert that does not carry
// the controls leaves them as they are (issue 9 item 1).
func TestItemControlRefusedWithStock(t *testing.T) {
	e := newEnv(t, nil) // the demo master data: 1000 of every item on hand
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		it        fusion.Item
		wantAttrs []string
	}{
		{"lot off", fusion.Item{ItemNumber: "IMP-3001", OrganizationCode: "MAIN", LotControlled: fusion.Bool(false)}, []string{"LotControlValue"}},
		{"serial off", fusion.Item{ItemNumber: "IMP-3001", OrganizationCode: "MAIN", SerialControlled: fusion.Bool(false)}, []string{"SerialNumberControlValue"}},
		{"both off", fusion.Item{ItemNumber: "IMP-3001", OrganizationCode: "MAIN", LotControlled: fusion.Bool(false), SerialControlled: fusion.Bool(false)},
			[]string{"LotControlValue", "SerialNumberControlValue"}},
		{"lot on", fusion.Item{ItemNumber: "SUP-2001", OrganizationCode: "MAIN", LotControlled: fusion.Bool(true)}, []string{"LotControlValue"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.c.UpsertItem(ctx, tc.it)
			var fe *fusion.Error
			if !errors.As(err, &fe) || fe.StatusCode != 400 || fe.Temporary() {
				t.Fatalf("want a permanent 400: %v", err)
			}
			if len(fe.Details) != len(tc.wantAttrs) {
				t.Fatalf("details %+v", fe.Details)
			}
			for _, d := range fe.Details {
				if d.Code != fusionsim.CodeControlOnhand || !strings.Contains(d.Detail, tc.it.ItemNumber) || !strings.Contains(d.Detail, "on-hand quantity exists") {
					t.Errorf("detail %+v", d)
				}
			}
		})
	}
	imp, err := e.c.FindItem(ctx, "MAIN", "IMP-3001")
	if err != nil || !fusion.IsTrue(imp.LotControlled) || !fusion.IsTrue(imp.SerialControlled) {
		t.Fatalf("IMP-3001 after refusals: %v %+v", err, imp)
	}

	// The raw answer is Fusion's error envelope.
	resp := post(t, e.hs.URL+fusion.APIPath+fusion.ItemsPath, "application/json",
		`{"ItemNumber":"IMP-3001","OrganizationCode":"MAIN","LotControlValue":"No lot control"}`, map[string]string{"Upsert-Mode": "true"})
	body := readAll(resp)
	var env struct {
		Title   string `json:"title"`
		Status  string `json:"status"`
		Details []struct {
			Detail string `json:"detail"`
			Code   string `json:"o:errorCode"`
		} `json:"o:errorDetails"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil || resp.StatusCode != 400 || env.Status != "400" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/vnd.oracle.adf.error+json") ||
		len(env.Details) != 1 || env.Details[0].Code != fusionsim.CodeControlOnhand {
		t.Fatalf("%s %s %v", resp.Status, body, err)
	}

	// An update that does not carry the controls keeps them, with stock.
	got, err := e.c.UpsertItem(ctx, fusion.Item{ItemNumber: "IMP-3001", OrganizationCode: "MAIN", Description: "Hip stem, size 4 (new)"})
	if err != nil || !fusion.IsTrue(got.LotControlled) || !fusion.IsTrue(got.SerialControlled) || got.Description != "Hip stem, size 4 (new)" {
		t.Fatalf("%v %+v", err, got)
	}
	// The same value again is not a change.
	if _, err := e.c.UpsertItem(ctx, fusion.Item{ItemNumber: "IMP-3001", OrganizationCode: "MAIN", LotControlled: fusion.Bool(true)}); err != nil {
		t.Fatal(err)
	}

	// In a batch the refusal fails the batch, all or none.
	parts := []fusion.BatchPart{
		{ID: "p1", Path: fusion.ItemsPath, Operation: fusion.OpUpsert, Payload: fusion.Item{ItemNumber: "RX-1001", OrganizationCode: "MAIN", Description: "changed"}},
		{ID: "p2", Path: fusion.ItemsPath, Operation: fusion.OpUpsert, Payload: fusion.Item{ItemNumber: "IMP-3002", OrganizationCode: "MAIN", LotControlled: fusion.Bool(false)}},
	}
	res, err := e.c.Batch(ctx, parts)
	if err == nil || len(res) != 1 || res[0].ID != "p2" || res[0].Error == nil || res[0].Error.Details[0].Code != fusionsim.CodeControlOnhand {
		t.Fatalf("batch: %v %+v", err, res)
	}
	if it, _ := e.c.FindItem(ctx, "MAIN", "RX-1001"); it == nil || it.Description == "changed" {
		t.Fatalf("a failed batch changed RX-1001: %+v", it)
	}

	// A new item has no stock: its controls are set freely, and changed.
	if _, err := e.c.UpsertItem(ctx, fusion.Item{ItemNumber: "IMP-9000", OrganizationCode: "MAIN", PrimaryUOMCode: "EA",
		LotControlled: fusion.Bool(true), SerialControlled: fusion.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	got, err = e.c.UpsertItem(ctx, fusion.Item{ItemNumber: "IMP-9000", OrganizationCode: "MAIN", LotControlled: fusion.Bool(false)})
	if err != nil || fusion.IsTrue(got.LotControlled) || !fusion.IsTrue(got.SerialControlled) {
		t.Fatalf("no stock: %v %+v", err, got)
	}
}
