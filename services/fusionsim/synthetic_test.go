package fusionsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strconv"
	"testing"

	"github.com/sinewhq/sinew/pkg/corpus"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/services/fusionsim"
)

// In-repo counterparts of the corpus tests: the same behaviours on
// synthetic files (pkg/fbdi/testdata/synthetic/GlInterface.csv and
// testdata/batch_request.synthetic.json), so a clone without ../shared
// still tests them.

// syntheticChart accepts the in-repo sample's six segments except account 99999.
const syntheticChart = "company,cc,account,product,interco,future\n" +
	"201,1100,11010,000,0000,000\n201,6110,40100,310,0000,000\n201,6120,40100,310,0000,000\n"

const syntheticLedger = "300000000000042"

func TestSyntheticFileBadAccountHoldsGroup(t *testing.T) {
	csv, err := os.ReadFile("../../pkg/fbdi/testdata/synthetic/GlInterface.csv")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *fusionsim.SimConfig) {
		c.ChartCSV = syntheticChart
		c.Sources = []string{"Epic Resolute HB"}
		c.Ledgers = append(c.Ledgers, fusionsim.Ledger{ID: syntheticLedger, Name: "Sinew Synthetic Ledger", Currency: "USD", DataAccessSetID: dasID})
	})
	ctx := context.Background()
	id, err := e.c.ImportBulkData(ctx, fusion.ImportRequest{FileName: "SYNHB_20260212_700042.zip", Zip: zipCSV(t, string(csv)),
		Source: "Epic Resolute HB", LedgerID: syntheticLedger, GroupID: "700042"})
	if err != nil {
		t.Fatal(err)
	}
	if st := e.wait(t, id); st != fusion.StatusWarning {
		t.Fatalf("status %s, want WARNING", st)
	}
	rep := e.report(t, id)
	if rep.Groups != 1 || len(rep.Held) != 1 || len(rep.Errors) != 1 {
		t.Fatalf("report %+v", rep)
	}
	le := rep.Errors[0]
	if le.GroupID != 700042 || le.Reference21 != "SYN:HB:20260212:0002:1" || le.Code != "EF04" ||
		le.Text != "FLEX-VALUE DOES NOT EXIST (SEGMENT=3) (VALUESET=ACCOUNT) (VALUE=99999)" {
		t.Fatalf("error %+v", le)
	}
	files, _ := e.c.DownloadExecutionDetails(ctx, strconv.Itoa(mustAtoi(id)+4), "log")
	if !bytes.Contains(files[strconv.Itoa(mustAtoi(id)+4)+".log"], []byte("LEZL0010: Deleting journal entry error lines")) {
		t.Fatalf("log: %q", files)
	}
	statuses := map[string]string{}
	rows := e.sim.InterfaceRows()
	for _, r := range rows {
		statuses[r.Reference21] = r.Status
	}
	if len(rows) != 4 || statuses["SYN:HB:20260212:0002:1"] != "EF04" || statuses["SYN:HB:20260212:0001:1"] != "P" {
		t.Fatalf("interface %v", statuses)
	}
	if len(e.sim.JournalBatches()) != 0 {
		t.Fatal("a held group made a batch")
	}
}

// TestBatchExampleBothPartsFail: a batch whose items do not exist fails as
// a whole, and every failing part comes back.
func TestBatchExampleBothPartsFail(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		load      func(t *testing.T) []byte
	}{
		{"synthetic", "", func(t *testing.T) []byte {
			b, err := os.ReadFile("testdata/batch_request.synthetic.json")
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{"corpus", "batch_request_example", func(t *testing.T) []byte {
			return corpus.ReadFile(t, "fusion/erpintegrations_payloads.synthetic.json")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var doc map[string]json.RawMessage
			if err := json.Unmarshal(tc.load(t), &doc); err != nil {
				t.Fatal(err)
			}
			if tc.key != "" {
				if err := json.Unmarshal(doc[tc.key], &doc); err != nil {
					t.Fatal(err)
				}
			}
			e := newEnv(t, nil)
			resp := post(t, e.hs.URL+fusion.APIPath+"/", fusion.BatchContentType, string(doc["body"]), nil)
			var fail struct {
				Parts []struct {
					ID string `json:"id"`
				} `json:"parts"`
			}
			if resp.StatusCode != 400 || json.NewDecoder(resp.Body).Decode(&fail) != nil || len(fail.Parts) != 2 {
				t.Fatalf("%s %+v", resp.Status, fail)
			}
		})
	}
}
