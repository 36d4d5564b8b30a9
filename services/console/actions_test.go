package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/batchstate"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/streams"
)

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrfOf reads the session's CSRF token from a page.
func csrfOf(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	_, body := get(t, c, u)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on %s", u)
	}
	return m[1]
}

// post sends a form and returns the status and body after redirects.
func post(t *testing.T, c *http.Client, u string, v url.Values) (int, string) {
	t.Helper()
	r, err := c.PostForm(u, v)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := r.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return r.StatusCode, b.String()
}

// hl7Letter is a dead HL7 message of willow-inventory as the bus records
// it: its receipt, the text inside.
func hl7Letter(t *testing.T, seq uint64, code, ctl string) *sinewv1.DeadLetter {
	t.Helper()
	raw := "MSH|^~\\&|WILLOW|W|||20261126||RDS^O13|" + ctl + "|P|2.5\rPID|1||MRN-SYN-1^^^W^MR\rRXD|1|0781-3207-95^Synthetic^NDC\r"
	data, err := proto.Marshal(&sinewv1.Hl7Received{Envelope: &sinewv1.Envelope{EventId: "ev-" + ctl, Flow: "willow-inventory"}, Raw: []byte(raw), ControlId: ctl})
	if err != nil {
		t.Fatal(err)
	}
	return &sinewv1.DeadLetter{Stream: streams.HL7In, Consumer: streams.TransformHL7Flow("willow-inventory"), Subject: "hl7.in.W.RDS.O13.willow-inventory",
		StreamSeq: seq, Payload: data, PayloadAvailable: true, Reason: "no item for the NDC at RXD-2", ReasonCode: code, Flow: "willow-inventory",
		Kind: dlq.KindPermanent, DeadAt: timestamppb.Now()}
}

func actions(t *testing.T, js jetstream.JetStream) string {
	var out []string
	_ = audit.Read(context.Background(), js, "audit.>", func(e audit.Entry) error {
		for _, ev := range e.Events {
			out = append(out, ev.Actor+" "+ev.Action+" "+ev.Outcome+" "+ev.Detail)
		}
		return nil
	})
	return strings.Join(out, "\n")
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
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

// TestConsoleDLQReplayAndDiscardNeedTheOperatorAReasonAndCSRF: replay and
// discard are the operator's, with the session's CSRF token and a reason;
// a bulk replay takes every waiting letter of a reason code; each is
// audited, the replays reach the original subject once, and the waiting
// count drops.
func TestConsoleDLQReplayAndDiscardNeedTheOperatorAReasonAndCSRF(t *testing.T) {
	base, pw, wb := console(t)
	ctx := context.Background()
	for i, code := range []string{"SINEW-HL7-101", "SINEW-HL7-101", "SINEW-HL7-103"} {
		if _, err := dlq.Write(ctx, wb.js, hl7Letter(t, uint64(i+1), code, "CTL-"+string(rune('A'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	fin, _ := login(t, base, "finance", pw["finance"])
	if code, _ := post(t, fin, base+"/dlq/act", url.Values{"csrf": {csrfOf(t, fin, base+"/triage")}, "seq": {"1"}, "action": {"replay"}, "reason": {"x"}}); code != http.StatusForbidden {
		t.Errorf("finance replay: %d, want 403", code)
	}
	op, _ := login(t, base, "operator", pw["operator"])
	if code, _ := post(t, op, base+"/dlq/act", url.Values{"seq": {"1"}, "action": {"replay"}, "reason": {"x"}}); code != http.StatusForbidden {
		t.Errorf("replay without CSRF: %d, want 403", code)
	}
	csrf := csrfOf(t, op, base+"/dlq")
	if _, body := post(t, op, base+"/dlq/act", url.Values{"csrf": {csrf}, "seq": {"1"}, "action": {"replay"}, "reason": {"  "}}); !strings.Contains(body, "a reason is required") {
		t.Errorf("replay without a reason: %s", body)
	}
	if n := streamMsgs(t, wb.js, streams.HL7In); n != 0 {
		t.Fatalf("%d messages on HL7_IN before any replay", n)
	}
	_, body := post(t, op, base+"/dlq/act", url.Values{"csrf": {csrf}, "bulk_code": {"SINEW-HL7-101"}, "action": {"replay"}, "reason": {"NDC mapped in the crosswalk"}})
	if !strings.Contains(body, "2 replayed, 0 failed") || !strings.Contains(body, `id="dlq-waiting">1<`) {
		t.Errorf("bulk replay by code: %s", body)
	}
	if n := streamMsgs(t, wb.js, streams.HL7In); n != 2 {
		t.Errorf("%d messages on HL7_IN after replaying 2", n)
	}
	// Again: nothing waits with that code, nothing is replayed twice.
	_, body = post(t, op, base+"/dlq/act", url.Values{"csrf": {csrf}, "bulk_code": {"SINEW-HL7-101"}, "action": {"replay"}, "reason": {"again"}})
	if !strings.Contains(body, "tick dead letters or choose a reason code") || streamMsgs(t, wb.js, streams.HL7In) != 2 {
		t.Errorf("second bulk replay: %s", body)
	}
	_, body = post(t, op, base+"/dlq/act", url.Values{"csrf": {csrf}, "seq": {"3"}, "action": {"discard"}, "reason": {"test message from Willow"}})
	if !strings.Contains(body, "1 discarded, 0 failed") || !strings.Contains(body, `id="dlq-waiting">0<`) {
		t.Errorf("discard: %s", body)
	}
	if _, body := get(t, op, base+"/dlq?all=1"); !strings.Contains(body, "discarded by console:operator: test message from Willow") || strings.Contains(body, "MRN-SYN-1") {
		t.Errorf("DLQ page with handled letters: %s", body)
	}
	trail := actions(t, wb.js)
	for _, want := range []string{"console:operator bulk-replay started 2 dead letters selected by code=\"SINEW-HL7-101\": NDC mapped in the crosswalk",
		"console:operator replay replayed dlq seq 1", "console:operator replay replayed dlq seq 2", "console:operator discard discarded dlq seq 3"} {
		if !strings.Contains(trail, want) {
			t.Errorf("audit lacks %q:\n%s", want, trail)
		}
	}
}

// TestConsoleDecodedPayloadNamesFieldsByPath: the privacy officer's view
// of an HL7 dead letter lists its fields by path, read from the receipt;
// the view is audited.
func TestConsoleDecodedPayloadNamesFieldsByPath(t *testing.T) {
	base, pw, wb := console(t)
	if _, err := dlq.Write(context.Background(), wb.js, hl7Letter(t, 1, "SINEW-HL7-101", "CTL-D")); err != nil {
		t.Fatal(err)
	}
	pv, _ := login(t, base, "privacy", pw["privacy"])
	code, body := get(t, pv, base+"/dlq/payload?seq=1")
	if code != 200 || !strings.Contains(body, `id="decoded"`) || !strings.Contains(body, "<td>RXD-2-1</td><td>0781-3207-95</td>") || !strings.Contains(body, "<td>MSH-10</td><td>CTL-D</td>") {
		t.Errorf("decoded view: %d %s", code, body)
	}
	if !strings.Contains(actions(t, wb.js), "console:privacy console-payload ok") {
		t.Error("the view is not audited")
	}
}

// TestConsoleFlowActivationIsAuditedAndShowsTheDrain: the operator stages
// a flow with a reason (audited first, its consumers paused), its input
// waits, activating it drains the backlog and the progress answer says
// how far; others may watch but not change it.
func TestConsoleFlowActivationIsAuditedAndShowsTheDrain(t *testing.T) {
	base, pw, wb := console(t)
	ctx := context.Background()
	const flow = "willow-inventory"
	op, _ := login(t, base, "operator", pw["operator"])
	csrf := csrfOf(t, op, base+"/flows")
	if _, body := post(t, op, base+"/flows/state", url.Values{"csrf": {csrf}, "flow": {flow}, "state": {flows.Staged}}); !strings.Contains(body, "a reason is required") {
		t.Errorf("stage without a reason: %s", body)
	}
	_, body := post(t, op, base+"/flows/state", url.Values{"csrf": {csrf}, "flow": {flow}, "state": {flows.Staged}, "reason": {"cutover rehearsal"}})
	if !strings.Contains(body, flow+": active -&gt; staged") || !strings.Contains(body, `id="drain"`) {
		t.Fatalf("stage: %s", body)
	}
	for i := range 5 {
		m := nats.NewMsg(streams.HL7FlowSubject(flow, "W", "RDS", "O13"))
		m.Data = []byte("x")
		m.Header.Set(nats.MsgIdHdr, "drain-"+string(rune('a'+i)))
		if _, err := wb.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	prog := func(c *http.Client) progress {
		t.Helper()
		_, b := get(t, c, base+"/api/flows/progress?flow="+flow)
		var p progress
		if err := json.Unmarshal([]byte(b), &p); err != nil {
			t.Fatalf("progress: %v: %s", err, b)
		}
		return p
	}
	if p := prog(op); p.State != flows.Staged || p.Remaining != 5 {
		t.Errorf("staged with 5 waiting: %+v", p)
	}
	if _, body := post(t, op, base+"/flows/state", url.Values{"csrf": {csrf}, "flow": {flow}, "state": {flows.Active}, "reason": {"go live"}}); !strings.Contains(body, "staged -&gt; active") {
		t.Fatalf("activate: %s", body)
	}
	// Drain the flow's consumer as transform would.
	c, err := wb.js.Consumer(ctx, streams.HL7In, streams.TransformHL7Flow(flow))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(3, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		_ = m.DoubleAck(ctx)
	}
	p := prog(op)
	if p.State != flows.Active || p.Total != 5 || p.Done != 3 || p.Percent != 60 || len(p.Samples) < 2 {
		t.Errorf("after 3 of 5: %+v", p)
	}
	fin, _ := login(t, base, "finance", pw["finance"])
	if p := prog(fin); p.Remaining != 2 {
		t.Errorf("finance watching: %+v", p)
	}
	if code, _ := post(t, fin, base+"/flows/state", url.Values{"csrf": {csrfOf(t, fin, base+"/triage")}, "flow": {flow}, "state": {flows.Paused}, "reason": {"x"}}); code != http.StatusForbidden {
		t.Errorf("finance pause: %d, want 403", code)
	}
	trail := actions(t, wb.js)
	for _, want := range []string{"console:operator flow-stage staged flow willow-inventory: active -> staged: cutover rehearsal",
		"console:operator flow-activate active flow willow-inventory: staged -> active: go live"} {
		if !strings.Contains(trail, want) {
			t.Errorf("audit lacks %q:\n%s", want, trail)
		}
	}
}

// TestConsoleReconDrillDownToTheLineWithFusionsText: finance opens a
// batch with a variance, its rejected journal, and the line with Fusion's
// own code and text; the operator is refused.
func TestConsoleReconDrillDownToTheLineWithFusionsText(t *testing.T) {
	base, pw, wb := console(t)
	seedRecon(t, wb.js)
	fin, _ := login(t, base, "finance", pw["finance"])
	_, body := get(t, fin, base+"/recon")
	if !strings.Contains(body, "/recon/batch?flow=resolute-gl&amp;batch=HB-20261126") || !strings.Contains(body, "variance") {
		t.Fatalf("recon page: %s", body)
	}
	_, body = get(t, fin, base+"/recon/batch?flow=resolute-gl&batch=HB-20261126")
	if !strings.Contains(body, "/recon/journal?flow=resolute-gl&amp;batch=HB-20261126&amp;group=7002") || !strings.Contains(body, "1 line rejected") {
		t.Fatalf("batch page: %s", body)
	}
	_, body = get(t, fin, base+"/recon/journal?flow=resolute-gl&batch=HB-20261126&group=7002")
	for _, want := range []string{"HB-20261126:L4", "EF04", "The account combination is not valid", "HB-20261126:L3", "GROUP_ID 7002 not posted"} {
		if !strings.Contains(body, want) {
			t.Errorf("journal page lacks %q: %s", want, body)
		}
	}
	if strings.Contains(body, "HB-20261126:L1") {
		t.Errorf("journal 7002 shows a line of journal 7001: %s", body)
	}
	op, _ := login(t, base, "operator", pw["operator"])
	if code, _ := get(t, op, base+"/recon/journal?flow=resolute-gl&batch=HB-20261126&group=7002"); code != http.StatusForbidden {
		t.Errorf("operator recon: %d, want 403", code)
	}
}

// seedRecon stores what the reconciler would for a GL batch with one
// rejected journal: batch_state with Fusion's line error, RECON rows.
func seedRecon(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	const flow, batch = "resolute-gl", "HB-20261126"
	st, err := batchstate.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(ctx, flow, batch, func(s *batchstate.State) error {
		s.Flow, s.BatchID = flow, batch
		s.Upload = batchstate.Upload{RequestID: "900101", Status: "SUCCEEDED"}
		s.Groups = []batchstate.Group{{ID: 7001, Journal: "HB-1", Step: batchstate.GroupImported, RequestID: "900102", Status: "SUCCEEDED"},
			{ID: 7002, Journal: "HB-2", Step: batchstate.GroupRejected, RequestID: "900103", Status: "ERROR",
				Errors: []batchstate.LineError{{Reference21: batch + ":L4", Code: "EF04", Text: "The account combination is not valid"}}}}
		s.Advance(batchstate.Rejected, "1 group rejected", time.Now())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	rows := []recon.Row{
		{Tier: recon.TierTotals, Scope: batch, Key: "lines", Hop: recon.HopFile, Unit: recon.UnitLines, Source: 4, Target: 4, Verdict: recon.VerdictPass, Explanation: "4 lines"},
		{Tier: recon.TierLines, Scope: batch, Key: batch + ":L4", Hop: recon.HopFusion, Unit: "USD", Source: money.Amount(-12345), Variance: 12345, Verdict: recon.VerdictRejected,
			Explanation: "Fusion rejected the line: EF04: The account combination is not valid"},
		{Tier: recon.TierLines, Scope: batch, Key: batch + ":L3", Hop: recon.HopFusion, Unit: "USD", Source: 12345, Variance: -12345, Verdict: recon.VerdictHeld,
			Explanation: "GROUP_ID 7002 not posted: Journal Import rejected the group"},
		{Tier: recon.TierLines, Scope: batch, Key: "group/7002", Hop: recon.HopFusion, Unit: recon.UnitLines, Source: 2, Target: 0, Variance: -2, Verdict: recon.VerdictRejected,
			Explanation: "2 lines: 0 matched, 0 mismatched, 1 rejected, 1 held, 0 missing, 0 pending"},
		{Tier: recon.TierLines, Scope: batch, Key: "group/7001", Hop: recon.HopFusion, Unit: recon.UnitLines, Source: 2, Target: 2, Verdict: recon.VerdictPass,
			Explanation: "2 lines: 2 matched"},
		{Tier: recon.SummaryTier, Scope: batch, Key: recon.SummaryKey, Unit: recon.UnitLines, Verdict: recon.VerdictVariance, Explanation: "1 line rejected, 1 held"},
	}
	for _, r := range rows {
		data, err := proto.Marshal(r.Proto(flow, at))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, recon.Subject(flow, r.Tier), data); err != nil {
			t.Fatal(err)
		}
	}
}
