package ingest_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parquet-go/parquet-go"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/fbdi"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/resolute"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/ingest"
	"github.com/sinewhq/sinew/services/transform"
)

// clarityRow is one Parquet extract row (the default column names).
type clarityRow struct {
	BatchID     string `parquet:"batch_id"`
	BatchKind   string `parquet:"batch_kind"`
	LineID      string `parquet:"line_id"`
	PostingDate string `parquet:"posting_date"`
	ServiceArea string `parquet:"service_area"`
	CostCenter  string `parquet:"cost_center"`
	GLAccount   string `parquet:"gl_account"`
	FinClass    string `parquet:"fin_class"`
	Payor       string `parquet:"payor"`
	TxType      string `parquet:"tx_type"`
	Debit       string `parquet:"debit"`
	Credit      string `parquet:"credit"`
	TxCount     int64  `parquet:"tx_count"`
	Description string `parquet:"description"`
}

// dropFile writes a file into a drop folder under a .part name, then renames it.
func dropFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name+".part"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, name+".part"), filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestClarityExtractsToFusionCommand runs ingest and transform on a real
// embedded nats-server: a Clarity CSV extract and a Parquet one dropped
// into drop/clarity/ become journal-import commands on FUSION_CMD, mapped
// through the demo crosswalk and chart; a CSV with a bad row is rejected
// with a report naming its CSV line.
func TestClarityExtractsToFusionCommand(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	_, nc, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	newBus := func(name string) *bus.Bus {
		b, err := bus.New(nc, bus.Config{}, bus.Options{Service: name, Logger: zerolog.Nop(), AuditSecret: []byte("test-secret")})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tcfg := transform.DefaultConfig()
	tcfg.FlowsFile = filepath.Join(root, "flows.yaml")
	tcfg.Crosswalk = filepath.Join(root, "deploy", "demo", "coa.csv")
	tcfg.Chart = filepath.Join(root, "deploy", "demo", "chart.csv")
	tcfg.TempDir = t.TempDir()
	tr, err := transform.New(tcfg, newBus("transform"))
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, tr)
	drop := t.TempDir()
	icfg := ingest.DefaultConfig()
	icfg.MLLPAddr, icfg.DropDir, icfg.DropPoll, icfg.DropSettle = "127.0.0.1:0", drop, 50*time.Millisecond, 0
	icfg.FlowsFile = filepath.Join(root, "flows.yaml") // the drop folders are the flows'
	ing, err := ingest.New(icfg, newBus("ingest"))
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, ing)
	dir := filepath.Join(drop, "clarity")

	day := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	generate := func(id string, seed uint64) (*bytes.Buffer, int64) {
		var pipe bytes.Buffer
		lines, _, err := resolute.Generate(&pipe, resolute.GenerateOptions{BatchID: id, Kind: "HB", PostingDate: day,
			Journals: 4, LinesPerJournal: 25, ServiceAreas: []string{"10", "20"}, CostCenters: []string{"6010", "6020"},
			RevenueAccounts: []string{"40100", "40200"}, ARAccount: "11010", Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return &pipe, lines
	}
	command := func(seq uint64) (*sinewv1.JournalBatch, string) {
		t.Helper()
		s, _ := js.Stream(context.Background(), streams.FusionCmd)
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		var cmd sinewv1.JournalBatch
		if err := proto.Unmarshal(m.Data, &cmd); err != nil {
			t.Fatal(err)
		}
		return &cmd, m.Subject
	}
	checkZip := func(cmd *sinewv1.JournalBatch, lines int64) {
		t.Helper()
		store, err := js.ObjectStore(context.Background(), streams.ObjFBDI)
		if err != nil {
			t.Fatal(err)
		}
		zipBytes, err := store.GetBytes(context.Background(), cmd.ObjectKey)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := fbdi.Check(context.Background(), bytes.NewReader(zipBytes), int64(len(zipBytes)), fbdi.Options{})
		if err != nil || !rep.OK() || rep.Totals.Lines != lines || rep.Totals.DR != rep.Totals.CR {
			t.Fatalf("GlInterface.zip: %v %+v", err, rep)
		}
	}

	// CSV.
	pipe, lines := generate("HB-20260115-CSV", 11)
	var csv bytes.Buffer
	if err := resolute.WriteClarityCSV(&csv, pipe, resolute.Clarity{}, resolute.DefaultLayout()); err != nil {
		t.Fatal(err)
	}
	dropFile(t, dir, "clarity_20260115.csv", csv.Bytes())
	waitFor(t, "the CSV extract's command", func() bool { return streamMsgs(t, js, streams.FusionCmd) == 1 })
	cmd, subject := command(1)
	if subject != "fusion.cmd.resolute-gl.import" || cmd.BatchId != "HB-20260115-CSV" || cmd.AccountingDate != "2026-01-15" || len(cmd.Journals) != 2 {
		t.Fatalf("command %s %+v", subject, cmd)
	}
	checkZip(cmd, lines)
	// The original file is in the object store unchanged.
	files, _ := js.ObjectStore(context.Background(), streams.ObjBatchFiles)
	if stored, err := files.GetBytes(context.Background(), cmd.Envelope.BusinessKey("sha256")); err != nil || !bytes.Equal(stored, csv.Bytes()) {
		t.Errorf("object store copy differs from the extract: %v", err)
	}

	// Parquet.
	pipe, lines = generate("HB-20260115-PQ", 12)
	var rows []clarityRow
	if _, err := resolute.DefaultLayout().Read(pipe, func(l *resolute.Line) error {
		r := clarityRow{BatchID: "HB-20260115-PQ", BatchKind: "HB", LineID: string(l.LineID), PostingDate: l.PostingDate.Format("2006-01-02"),
			ServiceArea: string(l.ServiceArea), CostCenter: string(l.CostCenter), GLAccount: string(l.GLAccount), FinClass: string(l.FinClass),
			Payor: string(l.Payor), TxType: string(l.TxType), TxCount: int64(l.TxCount), Description: string(l.Description)}
		if l.Debit != 0 {
			r.Debit = l.Debit.String()
		} else {
			r.Credit = l.Credit.String()
		}
		rows = append(rows, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var pq bytes.Buffer
	w := parquet.NewGenericWriter[clarityRow](&pq)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	dropFile(t, dir, "clarity_20260115.parquet", pq.Bytes())
	waitFor(t, "the Parquet extract's command", func() bool { return streamMsgs(t, js, streams.FusionCmd) == 2 })
	cmd, _ = command(2)
	if cmd.BatchId != "HB-20260115-PQ" {
		t.Fatalf("command %+v", cmd)
	}
	checkZip(cmd, lines)

	// A bad row (CSV line 3: an account the crosswalk does not map, and line
	// 4: three decimals): the batch is rejected whole, the report names the lines.
	bad := "batch_id,batch_kind,line_id,posting_date,service_area,cost_center,gl_account,fin_class,payor,tx_type,debit,credit,tx_count,description\n" +
		"HB-BADCSV,HB,B1,2026-01-15,10,6010,40100,COM,BCBS,CHG,,7.00,1,ok\n" +
		"HB-BADCSV,HB,B2,2026-01-15,10,6010,40999,COM,BCBS,CHG,,3.00,1,unmapped\n" +
		"HB-BADCSV,HB,B3,2026-01-15,10,6010,11010,COM,BCBS,CHG,10.001,,1,three decimals\n"
	dropFile(t, dir, "clarity_bad.csv", []byte(bad))
	var report string
	waitFor(t, "the rejection report", func() bool {
		objs, _ := files.List(context.Background())
		for _, o := range objs {
			if strings.HasSuffix(o.Name, ".report.txt") {
				report, _ = files.GetString(context.Background(), o.Name)
				return true
			}
		}
		return false
	})
	for _, want := range []string{"batch HB-BADCSV (file clarity_bad.csv", "line 4: debit: \"10.001\" is not an amount"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := streamMsgs(t, js, streams.FusionCmd); n != 2 {
		t.Errorf("FUSION_CMD holds %d commands, want 2 (the bad extract was commanded)", n)
	}
	// Fixed (line 4), the unmapped account on CSV line 3 is found next.
	dropFile(t, dir, "clarity_bad2.csv", []byte(strings.Replace(strings.Replace(bad, "HB-BADCSV", "HB-BADCSV2", -1), "10.001", "10.00", 1)))
	waitFor(t, "the second rejection report", func() bool {
		objs, _ := files.List(context.Background())
		for _, o := range objs {
			if strings.HasSuffix(o.Name, ".report.txt") && o.Name != "" {
				s, _ := files.GetString(context.Background(), o.Name)
				if strings.Contains(s, "HB-BADCSV2") {
					report = s
					return true
				}
			}
		}
		return false
	})
	if !strings.Contains(report, "line 3: gl_account: no crosswalk mapping for service area 10, cost center 6010, account 40999") {
		t.Errorf("report:\n%s", report)
	}
}
