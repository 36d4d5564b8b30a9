package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/streams"
)

// publish publishes a run's rows of a batch the way the reconciler does:
// every row on its tier's subject, the summary last.
func publish(t *testing.T, js jetstream.JetStream, flow string, res *recon.Result, at time.Time) {
	t.Helper()
	ctx := context.Background()
	for _, r := range res.Publishable() {
		b, err := proto.Marshal(r.Proto(flow, at))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, recon.Subject(flow, r.Tier), b,
			jetstream.WithMsgID(recon.MsgID(flow, r, at.Format(time.RFC3339Nano)))); err != nil {
			t.Fatal(err)
		}
	}
}

// batchResult is a two-line batch; fail makes Fusion post the credit
// with another amount.
func batchResult(id string, fail bool) *recon.Result {
	src := []recon.SourceLine{
		{Reference21: id + ":1", GroupID: 1, Journal: "J", Ledger: "L", Period: "Jan-26", Currency: "USD", Account: "101-4000", DR: 10_00},
		{Reference21: id + ":2", GroupID: 1, Journal: "J", Ledger: "L", Period: "Jan-26", Currency: "USD", Account: "101-1000", CR: 10_00},
	}
	in := &recon.Input{Batch: id}
	for _, l := range src {
		p := recon.PostedLine{Reference21: l.Reference21, GroupID: 1, JeBatchID: 7, Account: l.Account, DR: l.DR, CR: l.CR,
			Ledger: l.Ledger, Period: l.Period, Currency: l.Currency}
		if fail && l.CR != 0 {
			p.CR = 9_99
		}
		in.Posted = append(in.Posted, p)
	}
	return recon.Reconcile(in, src)
}

func runReport(t *testing.T, js jetstream.JetStream, flow, batch string, asJSON bool) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := reconReport(ctx, js, reportOptions{Flow: flow, Batch: batch, JSON: asJSON}, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestReconReport(t *testing.T) {
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())

	// Nothing reconciled yet.
	_, stderr, err := runReport(t, js, "", "", false)
	if !errors.Is(err, exitError(1)) || !strings.Contains(stderr, "nothing reconciled matches") {
		t.Fatalf("empty RECON: %v, %q", err, stderr)
	}

	t0 := time.Date(2026, 1, 16, 3, 0, 0, 0, time.UTC)
	publish(t, js, "resolute-gl", batchResult("B1", false), t0)
	publish(t, js, "resolute-gl", batchResult("B2", true), t0)
	publish(t, js, "beaker-inventory", batchResult("B3", false), t0)

	out, stderr, err := runReport(t, js, "resolute-gl", "B1", false)
	if err != nil || !strings.Contains(out, "resolute-gl batch B1: PASS") || strings.Contains(out, "B2") {
		t.Fatalf("B1: %v\n%s%s", err, out, stderr)
	}
	if !strings.Contains(out, "group/1") || !strings.Contains(out, "10.00 USD") {
		t.Errorf("B1 table lacks its rows:\n%s", out)
	}

	out, stderr, err = runReport(t, js, "resolute-gl", "", false)
	if !errors.Is(err, exitError(1)) || !strings.Contains(stderr, "resolute-gl batch B2: variance") ||
		strings.Contains(out, "B3") || !strings.Contains(out, "B2:2") {
		t.Fatalf("flow: %v\n%s%s", err, out, stderr)
	}

	_, stderr, err = runReport(t, js, "resolute-gl", "B9", false)
	if !errors.Is(err, exitError(1)) || !strings.Contains(stderr, "nothing reconciled matches flow resolute-gl, batch B9") {
		t.Fatalf("unknown batch: %v, %q", err, stderr)
	}

	// A later run fixes B2: its latest summary passes, and the line row of
	// the earlier run is superseded.
	publish(t, js, "resolute-gl", batchResult("B2", false), t0.Add(time.Hour))
	out, stderr, err = runReport(t, js, "resolute-gl", "B2", true)
	if err != nil {
		t.Fatalf("B2 fixed: %v\n%s%s", err, out, stderr)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	var rows []rowJSON
	for sc.Scan() {
		var r rowJSON
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 || rows[0].Tier != recon.SummaryTier || rows[0].Key != recon.SummaryKey || rows[0].Verdict != recon.VerdictPass ||
		rows[0].Source != "2" || rows[0].Target != "2" {
		t.Fatalf("summary first: %+v", rows)
	}
	for _, r := range rows {
		if r.Verdict != recon.VerdictPass || r.Batch != "B2" || r.Flow != "resolute-gl" || !r.CheckedAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("row %+v", r)
		}
	}

	// Every flow: B1, B2 and B3 pass now.
	out, stderr, err = runReport(t, js, "", "", false)
	if err != nil || strings.Count(out, ": PASS") != 3 {
		t.Fatalf("all flows: %v\n%s%s", err, out, stderr)
	}

	// A batch with rows but no summary yet fails.
	res := batchResult("B4", false)
	b, _ := proto.Marshal(res.Rows[0].Proto("resolute-gl", t0))
	if _, err := js.Publish(context.Background(), recon.Subject("resolute-gl", res.Rows[0].Tier), b); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = runReport(t, js, "resolute-gl", "B4", false)
	if !errors.Is(err, exitError(1)) || !strings.Contains(stderr, "B4: no summary yet") {
		t.Fatalf("no summary: %v, %q", err, stderr)
	}
}

func TestReconUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"recon"}, &out, &errOut); !errors.Is(err, exitError(2)) {
		t.Errorf("recon without verb: %v", err)
	}
	if err := run(context.Background(), []string{"recon", "report", "extra"}, &out, &errOut); !errors.Is(err, exitError(2)) {
		t.Errorf("recon report extra: %v", err)
	}
}
