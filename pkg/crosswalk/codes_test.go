package crosswalk_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

func TestParseCodesProblems(t *testing.T) {
	head := "source,code,fusion_item,organization,epic_uom,fusion_uom,factor\n"
	for name, in := range map[string]string{
		"source":    head + "cdm,1,RX-1,MAIN,,EA,\n",
		"duplicate": head + "ndc,1,RX-1,MAIN,,EA,\nndc,1,RX-2,MAIN,,EA,\n",
		"factor":    head + "ndc,1,RX-1,MAIN,L,ML,x\n",
		"no uom":    head + "ndc,1,RX-1,MAIN,,EA,2\n",
		"required":  head + "ndc,1,,MAIN,,EA,\n",
		"header":    "code,item\n",
	} {
		if _, err := crosswalk.ParseCodes(crosswalk.Item, strings.NewReader(in), ""); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := crosswalk.ParseCodes("nope", strings.NewReader(head), ""); err == nil {
		t.Error("unknown kind accepted")
	}
}

func TestCodeKindsInStore(t *testing.T) {
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kv, err := js.KeyValue(ctx, streams.KVCrosswalk)
	if err != nil {
		t.Fatal(err)
	}
	st := crosswalk.NewStore(kv)
	if _, err := st.CurrentCodes(ctx, crosswalk.Item); !errors.Is(err, crosswalk.ErrNoVersion) {
		t.Fatalf("empty: %v", err)
	}
	live, err := st.Live(ctx, crosswalk.Item)
	if err != nil || live.Get() != nil {
		t.Fatalf("live before any version: %v", err)
	}
	items, err := os.ReadFile("../../deploy/demo/items.csv")
	if err != nil {
		t.Fatal(err)
	}
	v1, err := st.LoadCodes(ctx, crosswalk.Item, items, "")
	if err != nil {
		t.Fatal(err)
	}
	if r := v1.LookupString("ndc", "0781-3207-95"); r == nil || r.Values[crosswalk.ItemFusionItem] != "RX-1002" {
		t.Fatalf("lookup: %v", r)
	}
	if r := v1.Lookup(nil, []byte("reagent"), []byte("GLU-R1")); r == nil || r.Values[crosswalk.ItemFactor] != "1000" {
		t.Fatalf("lookup bytes: %v", r)
	}
	v2csv := strings.Replace(string(items), "ndc,0781-3207-95,RX-1002", "ndc,0781-3207-95,RX-1009", 1) + "ndc,1111-2222-33,RX-1004,MAIN,,EA,\n"
	v2, err := st.LoadCodes(ctx, crosswalk.Item, []byte(v2csv), "")
	if err != nil {
		t.Fatal(err)
	}
	depts, err := os.ReadFile("../../deploy/demo/departments.csv")
	if err != nil {
		t.Fatal(err)
	}
	d, err := st.LoadCodes(ctx, crosswalk.Department, depts, "d1")
	if err != nil || d.LookupString("EDPHARM").Values[crosswalk.DeptSubinventory] != "PHARM-ED" {
		t.Fatalf("departments: %v", err)
	}
	// Each kind has its own versions and current pointer; COA is untouched.
	if vs, _ := st.Versions(ctx, crosswalk.Item); len(vs) != 2 {
		t.Errorf("item versions %v", vs)
	}
	if vs, _ := st.Versions(ctx, crosswalk.Department); len(vs) != 1 || vs[0] != "d1" {
		t.Errorf("department versions %v", vs)
	}
	if _, err := st.Current(ctx, crosswalk.COA); !errors.Is(err, crosswalk.ErrNoVersion) {
		t.Errorf("coa: %v", err)
	}
	cur, err := st.CurrentCodes(ctx, crosswalk.Item)
	if err != nil || cur.Version != v2.Version {
		t.Fatalf("current %v %v", cur, err)
	}
	changes := crosswalk.DiffCodes(v1, cur)
	if len(changes) != 2 || changes[0].Op != "changed" || !strings.HasPrefix(changes[0].To, "RX-1009") || changes[1].Op != "added" {
		t.Errorf("diff %+v", changes)
	}
	// The live table follows the current pointer.
	deadline := time.Now().Add(5 * time.Second)
	for live.Get() == nil || live.Get().Version != v2.Version {
		if time.Now().After(deadline) {
			t.Fatalf("live table did not follow: %v", live.Get())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := st.LoadCodes(ctx, crosswalk.Department, []byte("department,organization\nX,MAIN\n"), ""); err == nil {
		t.Error("an invalid department crosswalk was stored")
	}
}
