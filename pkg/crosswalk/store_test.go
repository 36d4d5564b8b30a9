package crosswalk_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

func TestStoreVersionsAndDiff(t *testing.T) {
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, streams.KVCrosswalk)
	if err != nil {
		t.Fatal(err)
	}
	st := crosswalk.NewStore(kv)
	if _, err := st.Current(ctx, crosswalk.COA); !errors.Is(err, crosswalk.ErrNoVersion) {
		t.Fatalf("empty store: %v", err)
	}
	v1csv, err := os.ReadFile("testdata/coa.csv")
	if err != nil {
		t.Fatal(err)
	}
	v1, err := st.Load(ctx, crosswalk.COA, v1csv, "")
	if err != nil {
		t.Fatal(err)
	}
	v2csv := strings.Replace(string(v1csv), "10,6010,40100,*,*,2026-01-01,,101,6010,40100,300,000", "10,6010,40100,*,*,2026-01-01,,101,6010,40150,300,000", 1) +
		"30,7010,40100,*,*,2026-01-01,,103,7010,40100,300,000\n"
	v2, err := st.Load(ctx, crosswalk.COA, []byte(v2csv), "")
	if err != nil {
		t.Fatal(err)
	}
	cur, err := st.Current(ctx, crosswalk.COA)
	if err != nil || cur.Version != v2.Version || v1.Version == v2.Version {
		t.Fatalf("current %v %v", cur, err)
	}
	old, err := st.Version(ctx, crosswalk.COA, v1.Version)
	if err != nil {
		t.Fatal(err)
	}
	versions, err := st.Versions(ctx, crosswalk.COA)
	if err != nil || len(versions) != 2 {
		t.Fatalf("versions %v %v", versions, err)
	}
	changes := crosswalk.Diff(old, cur)
	if len(changes) != 2 || changes[0].Op != "changed" || changes[0].To != "101.6010.40150.300.000" || changes[1].Op != "added" {
		t.Errorf("diff %+v", changes)
	}
	if _, err := st.Load(ctx, crosswalk.COA, []byte("not,a,crosswalk\n"), ""); err == nil {
		t.Error("an invalid crosswalk was stored")
	}
}
