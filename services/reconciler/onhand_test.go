package reconciler_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/crosswalk"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/fusionsim"
)

// countFile stores a Beaker count file and announces it on BATCH_IN, as
// ingest does.
func (e *env) countFile(t testing.TB, name, body string, at time.Time) {
	t.Helper()
	ctx := context.Background()
	sum := sha256.Sum256([]byte(body))
	sha := hex.EncodeToString(sum[:])
	files, err := e.js.ObjectStore(ctx, streams.ObjBatchFiles)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := files.PutString(ctx, sha, body); err != nil {
		t.Fatal(err)
	}
	m := &sinewv1.BatchManifest{Envelope: &sinewv1.Envelope{Flow: "beaker-inventory", ReceivedAt: timestamppb.New(at)},
		ObjectKey: sha, Sha256: sha, FileName: name}
	b, _ := proto.Marshal(m)
	if _, err := e.js.Publish(ctx, streams.BatchSubject("beaker-inventory"), b); err != nil {
		t.Fatal(err)
	}
}

// loadCodes loads the demo item and department crosswalks into KV.
func (e *env) loadCodes(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	kv, err := e.js.KeyValue(ctx, streams.KVCrosswalk)
	if err != nil {
		t.Fatal(err)
	}
	xw := crosswalk.NewStore(kv)
	for kind, file := range map[string]string{crosswalk.Item: "items.csv", crosswalk.Department: "departments.csv"} {
		b, err := os.ReadFile("../../deploy/demo/" + file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := xw.LoadCodes(ctx, kind, b, ""); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOnhandCounts compares Beaker count files with fusionsim's on-hand
// (1,000 of every item to start with), case by case.
func TestOnhandCounts(t *testing.T) {
	tests := []struct {
		name    string
		rows    string // count rows after the header
		verdict string
		row     string // a row explanation or key the run must publish
	}{
		{name: "count equals Fusion's on-hand in Fusion's units", verdict: recon.VerdictPass,
			rows: "CORELAB,CBC-PK,1000,PK\nCORELAB,GLU-R1,1,L\n", row: "onhand|MAIN|LAB-CORE|LAB-4002"},
		{name: "a short count beyond tolerance", verdict: recon.VerdictVariance,
			rows: "CORELAB,CBC-PK,1000,PK\nCORELAB,GLU-R1,0.5,L\n", row: "onhand|MAIN|LAB-CORE|LAB-4002"},
		{name: "an unmapped reagent code", verdict: recon.VerdictVariance,
			rows: "CORELAB,CBC-PK,1000,PK\nCORELAB,GLU-R1,1,L\nCORELAB,NOPE-1,3,EA\n", row: "NOPE-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, tuning{noLoader: true, sim: func(c *fusionsim.SimConfig) { c.StartingOnhand = "1000" }})
			e.loadCodes(t)
			at := time.Now().UTC().Add(-time.Second).Truncate(time.Second)
			var body strings.Builder
			body.WriteString("count_date,department,reagent_code,quantity,unit\n")
			for _, r := range strings.Split(strings.TrimSpace(tc.rows), "\n") {
				body.WriteString(at.Format(time.RFC3339) + "," + r + "\n")
			}
			e.countFile(t, "beaker-onhand-test.csv", body.String(), at)
			var res *recon.Result
			for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				var err error
				if res, err = e.rc.ReconcileOnhand(context.Background(), time.Now()); err != nil {
					t.Fatal(err)
				}
				if res != nil && res.Summary.Verdict != recon.VerdictPending {
					break
				}
			}
			if res == nil || res.Summary.Verdict != tc.verdict {
				t.Fatalf("result %+v, want %s", res, tc.verdict)
			}
			var all []string
			for _, r := range res.Rows {
				all = append(all, r.Key+" "+r.Verdict+": "+r.Explanation)
			}
			if !strings.Contains(strings.Join(all, "\n"), tc.row) {
				t.Errorf("no row %q in:\n%s", tc.row, strings.Join(all, "\n"))
			}
		})
	}
}
