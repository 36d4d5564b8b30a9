package fusion

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestUpsertItemSendsOnlyGiven posts items over a real HTTP server and
// reads the JSON that went out: a flag that is not given must not be in
// it (issue 9 item 1: "not in the message" went out as false and
// switched Fusion's lot/serial control and 340B flag off).
func TestUpsertItemSendsOnlyGiven(t *testing.T) {
	bodies := make(chan map[string]any, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("body %s: %v", b, err)
		}
		if r.Header.Get("Upsert-Mode") != "true" {
			t.Errorf("Upsert-Mode %q", r.Header.Get("Upsert-Mode"))
		}
		bodies <- m
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		it      Item
		want    map[string]any // attribute -> value (DFF: the 340B segment)
		absent  []string
		readDFF *bool
	}{
		{name: "description only",
			it:     Item{ItemNumber: "RX-1002", OrganizationCode: "MAIN", Description: "New text", PrimaryUOMCode: "EA"},
			want:   map[string]any{"ItemDescription": "New text", "PrimaryUOMCode": "EA"},
			absent: []string{"LotControlValue", "SerialNumberControlValue", "DFF", "ItemStatusValue", "ItemClass"}},
		{name: "flags false",
			it:     Item{ItemNumber: "IMP-3001", OrganizationCode: "MAIN", LotControlled: Bool(false), SerialControlled: Bool(false), Program340B: Bool(false)},
			want:   map[string]any{"LotControlValue": LotControlNone, "SerialNumberControlValue": SerialControlNone, "DFF": "N"},
			absent: []string{"ItemDescription", "PrimaryUOMCode", "ItemStatusValue"}, readDFF: Bool(false)},
		{name: "flags true",
			it:      Item{ItemNumber: "IMP-3001", OrganizationCode: "MAIN", LotControlled: Bool(true), SerialControlled: Bool(true), Program340B: Bool(true), ItemStatus: "Active"},
			want:    map[string]any{"LotControlValue": LotControlFull, "SerialNumberControlValue": SerialControlAtRcpt, "DFF": "Y", "ItemStatusValue": "Active"},
			readDFF: Bool(true)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.UpsertItem(context.Background(), tc.it)
			if err != nil {
				t.Fatal(err)
			}
			m := <-bodies
			for _, k := range tc.absent {
				if v, ok := m[k]; ok {
					t.Errorf("%s sent (%v); it was not given", k, v)
				}
			}
			for k, want := range tc.want {
				v := m[k]
				if k == "DFF" {
					dff, _ := v.([]any)
					if len(dff) != 1 {
						t.Fatalf("DFF %v", v)
					}
					v = dff[0].(map[string]any)[DFF340BAttribute]
				}
				if v != want {
					t.Errorf("%s = %v, want %v", k, v, want)
				}
			}
			// The echo reads back the same: what was not sent stays unknown.
			if (got.Program340B == nil) != (tc.readDFF == nil) || (got.Program340B != nil && *got.Program340B != *tc.readDFF) {
				t.Errorf("read back 340B %v, want %v", got.Program340B, tc.readDFF)
			}
			if (got.LotControlled == nil) != (tc.it.LotControlled == nil) {
				t.Errorf("read back lot control %v, sent %v", got.LotControlled, tc.it.LotControlled)
			}
		})
	}
	// A batch part carries the same shape.
	raw, err := marshalPayload(Item{ItemNumber: "RX-1002", OrganizationCode: "MAIN", Description: "x"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	for _, k := range []string{"LotControlValue", "SerialNumberControlValue", "DFF"} {
		if _, ok := m[k]; ok {
			t.Errorf("batch payload sends %s: %s", k, raw)
		}
	}
}
