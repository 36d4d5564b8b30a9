package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

// rds is a synthetic RDS^O13 (no real patient), CR-separated as on the wire.
const rds = "MSH|^~\\&|WILLOW|MAIN|SINEW|SINEW|20261126101500||RDS^O13|CTL-0001|P|2.5.1\r" +
	"PID|1||SYN-000123^^^MAIN^MR||SYNTHETIC^TEST\r" +
	"RXD|1|0781-3207-95^Synthetic drug^NDC|20261126|2|EA\r"

// dlqFixture is a real NATS with three dead letters: two HL7 messages of
// willow-inventory and one resolute-gl command.
type dlqFixture struct {
	url string
	js  jetstream.JetStream
}

func newDLQFixture(t *testing.T) *dlqFixture {
	t.Helper()
	srv, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx := context.Background()
	now := time.Now()
	hl7 := func(seq uint64, subject, typ, reason string, age time.Duration) *sinewv1.DeadLetter {
		ev := &sinewv1.Hl7Received{
			Envelope: &sinewv1.Envelope{EventId: "ev-" + typ, Flow: "willow-inventory", SourceSystem: "hl7:WILLOW", SourceId: "CTL-0001"},
			Raw:      []byte(rds), SendingApplication: "WILLOW", SendingFacility: "MAIN", MessageType: typ, ControlId: "CTL-0001",
		}
		data, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return &sinewv1.DeadLetter{Stream: streams.HL7In, Consumer: streams.TransformHL7, Subject: subject, StreamSeq: seq,
			Payload: data, PayloadAvailable: true, Reason: reason, Kind: dlq.KindPermanent, Deliveries: 1,
			DeadAt: timestamppb.New(now.Add(-age)), Flow: "willow-inventory", EventId: "ev-" + typ, RecordedBy: "bus:transform"}
	}
	cmd, err := proto.Marshal(&sinewv1.JournalBatch{Envelope: &sinewv1.Envelope{EventId: "ev-gl", Flow: "resolute-gl", SourceId: "HB-1"}})
	if err != nil {
		t.Fatal(err)
	}
	letters := []*sinewv1.DeadLetter{
		hl7(11, "hl7.in.MAIN.RDS.O13", "RDS", "hl7flow: RXD-2: no item for the NDC (code 103)", 3*time.Hour),
		hl7(12, "hl7.in.MAIN.DFT.P03", "DFT", "hl7flow: FT1-7: no item for the charge code (code 103)", time.Hour),
		{Stream: streams.FusionCmd, Consumer: streams.LoaderFusion, Subject: "fusion.cmd.resolute-gl.import", StreamSeq: 5,
			Payload: cmd, PayloadAvailable: true, Reason: "Journal Import: EF04 invalid account combination", Kind: dlq.KindExhausted,
			Deliveries: 3, DeadAt: timestamppb.New(now.Add(-30 * time.Minute)), Flow: "resolute-gl", EventId: "ev-gl", RecordedBy: "bus:loader"},
	}
	for _, d := range letters {
		if _, err := dlq.Write(ctx, js, d); err != nil {
			t.Fatal(err)
		}
	}
	return &dlqFixture{url: srv.ClientURL(), js: js}
}

// msgs is the number of messages in a stream.
func (f *dlqFixture) msgs(t *testing.T, stream string) uint64 {
	t.Helper()
	s, err := f.js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func (f *dlqFixture) cli(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	return cli(t, stdin, append(args, "--nats", f.url)...)
}

// TestDLQShowPayloadPrintsTheOriginalBytes: --payload is the HL7 text
// exactly as received (it was the protobuf receipt); --envelope the
// receipt without it.
func TestDLQShowPayloadPrintsTheOriginalBytes(t *testing.T) {
	f := newDLQFixture(t)
	out, errOut, code := f.cli(t, "", "dlq", "show", "1", "--payload")
	if code != 0 || out != rds {
		t.Fatalf("exit %d (%s), got %q, want the HL7 text %q", code, errOut, out, rds)
	}
	out, errOut, code = f.cli(t, "", "dlq", "show", "1", "--envelope")
	if code != 0 {
		t.Fatalf("--envelope: exit %d: %s", code, errOut)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("--envelope is not JSON: %v\n%s", err, out)
	}
	if ev["controlId"] != "CTL-0001" || ev["envelope"].(map[string]any)["flow"] != "willow-inventory" || ev["raw"] != nil {
		t.Errorf("--envelope: %s", out)
	}
	out, _, code = f.cli(t, "", "dlq", "show", "3", "--envelope")
	var env map[string]any
	if err := json.Unmarshal([]byte(out), &env); code != 0 || err != nil || env["eventId"] != "ev-gl" || env["flow"] != "resolute-gl" {
		t.Errorf("--envelope of a command: exit %d, %v\n%s", code, err, out)
	}
	if _, _, code := f.cli(t, "", "dlq", "show", "1", "--payload", "--envelope"); code == 0 {
		t.Error("--payload with --envelope accepted")
	}
	audit, _, _ := f.cli(t, "", "audit", "list")
	if !strings.Contains(audit, `"action":"view-payload"`) || !strings.Contains(audit, `"action":"view-envelope"`) {
		t.Errorf("the views are not audited:\n%s", audit)
	}
	if strings.Contains(audit, "SYNTHETIC") {
		t.Errorf("the audit trail quotes the payload:\n%s", audit)
	}
}

// TestDLQReplayNeedsAReason: without --reason nothing is replayed.
func TestDLQReplayNeedsAReason(t *testing.T) {
	f := newDLQFixture(t)
	for _, args := range [][]string{{"dlq", "replay", "1"}, {"dlq", "replay", "--flow", "willow-inventory", "--yes"}, {"dlq", "replay", "1", "--reason", "  "}} {
		_, errOut, code := f.cli(t, "", args...)
		if code == 0 || !strings.Contains(errOut, "--reason is required") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	if n := f.msgs(t, streams.HL7In); n != 0 {
		t.Errorf("%d messages replayed without a reason", n)
	}
}

// TestDLQBulkReplayDryRunCounts: a selection's dry run counts what it
// would replay, lists it, and replays nothing.
func TestDLQBulkReplayDryRunCounts(t *testing.T) {
	f := newDLQFixture(t)
	tests := []struct {
		sel   []string
		count int
		seqs  []string
	}{
		{[]string{"--all"}, 3, []string{"1", "2", "3"}},
		{[]string{"--flow", "willow-inventory"}, 2, []string{"1", "2"}},
		{[]string{"--error", "ef04"}, 1, []string{"3"}},
		{[]string{"--error", "code 103"}, 2, []string{"1", "2"}},
		{[]string{"--subject", "hl7.in.*.RDS.>"}, 1, []string{"1"}},
		{[]string{"--subject", "hl7.in.>"}, 2, []string{"1", "2"}},
		{[]string{"--subject", "fusion.cmd.*.import"}, 1, []string{"3"}},
		{[]string{"--since", "2h"}, 2, []string{"2", "3"}},
		{[]string{"--until", "2h"}, 1, []string{"1"}},
		{[]string{"--since", "2h", "--until", "45m"}, 1, []string{"2"}},
		{[]string{"--stream", "FUSION_CMD"}, 1, []string{"3"}},
		{[]string{"--stream", "HL7_IN", "--consumer", "transform-hl7"}, 2, []string{"1", "2"}},
		{[]string{"--kind", dlq.KindExhausted}, 1, []string{"3"}},
		{[]string{"--flow", "beaker-inventory"}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.sel, " "), func(t *testing.T) {
			out, errOut, code := f.cli(t, "", append([]string{"dlq", "replay", "--dry-run"}, tt.sel...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if want := strconv.Itoa(tt.count) + " dead letters selected"; lines[0] != want {
				t.Errorf("first line %q, want %q", lines[0], want)
			}
			var seqs []string
			for _, l := range lines[min(2, len(lines)):] {
				seqs = append(seqs, strings.Fields(l)[0])
			}
			if strings.Join(seqs, ",") != strings.Join(tt.seqs, ",") {
				t.Errorf("listed %v, want %v\n%s", seqs, tt.seqs, out)
			}
		})
	}
	if n := f.msgs(t, streams.HL7In) + f.msgs(t, streams.FusionCmd); n != 0 {
		t.Errorf("a dry run replayed %d messages", n)
	}
}

// TestDLQBulkReplay: a bulk replay asks for the count (or --yes), records
// its reason, and run again replays nothing twice.
func TestDLQBulkReplay(t *testing.T) {
	f := newDLQFixture(t)
	sel := []string{"dlq", "replay", "--flow", "willow-inventory", "--reason", "NDC 0781-3207-95 mapped", "--actor", "test-operator"}
	if out, errOut, code := f.cli(t, "3\n", sel...); code != 1 || !strings.Contains(errOut, "not confirmed") {
		t.Fatalf("a wrong count confirmed: exit %d\n%s%s", code, out, errOut)
	}
	if _, _, code := f.cli(t, "", sel...); code != 1 {
		t.Fatalf("no answer (stdin at EOF) confirmed: exit %d", code)
	}
	if n := f.msgs(t, streams.HL7In); n != 0 {
		t.Fatalf("%d replayed without confirmation", n)
	}
	out, errOut, code := f.cli(t, "2\n", sel...)
	if code != 0 || !strings.Contains(out, "2 replayed, 0 failed") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if n := f.msgs(t, streams.HL7In); n != 2 {
		t.Fatalf("%d messages in HL7_IN after the replay, want 2", n)
	}
	s, _ := f.js.Stream(context.Background(), streams.HL7In)
	m, err := s.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(jetstream.MsgIDHeader) != "replay:1" || m.Header.Get(dlq.ReplayOfHeader) != "1" {
		t.Errorf("replayed headers %v", m.Header)
	}
	// Again, with --yes: both were replayed, so none is selected.
	out, _, code = f.cli(t, "", append(sel, "--yes")...)
	if code != 0 || !strings.Contains(out, "0 dead letters selected (2 more replayed before, skipped") {
		t.Errorf("second run: exit %d\n%s", code, out)
	}
	if n := f.msgs(t, streams.HL7In); n != 2 {
		t.Errorf("%d messages in HL7_IN after the second run, want 2", n)
	}
	audit, _, _ := f.cli(t, "", "audit", "list")
	if strings.Count(audit, `"action":"replay"`) != 2 || !strings.Contains(audit, `"actor":"test-operator"`) || !strings.Contains(audit, "NDC 0781-3207-95 mapped") || !strings.Contains(audit, `"action":"bulk-replay"`) {
		t.Errorf("the audit trail lacks the replays and their reason:\n%s", audit)
	}
	// dlq list shows them replayed; --json filters like replay does.
	out, _, code = f.cli(t, "", "dlq", "list", "--json", "--flow", "willow-inventory")
	if code != 0 || strings.Count(out, "\n") != 2 || strings.Count(out, `"replay":{`) != 2 {
		t.Errorf("dlq list --json --flow: exit %d\n%s", code, out)
	}
}

// TestDLQReplayOneBySeq keeps the single replay's behaviour: once, then
// refused unless --force.
func TestDLQReplayOneBySeq(t *testing.T) {
	f := newDLQFixture(t)
	if out, errOut, code := f.cli(t, "", "dlq", "replay", "3", "--reason", "account fixed"); code != 0 || !strings.Contains(out, "replayed dlq seq 3 to fusion.cmd.resolute-gl.import") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := f.cli(t, "", "dlq", "replay", "3", "--reason", "again"); code != 1 || !strings.Contains(errOut, "already replayed") {
		t.Errorf("second replay: exit %d %s", code, errOut)
	}
	if _, _, code := f.cli(t, "", "dlq", "replay", "3", "--flow", "resolute-gl", "--reason", "x"); code == 0 {
		t.Error("SEQ with a selection accepted")
	}
}

// TestDLQDiscardNeedsAReasonAndStopsReplay: a discard needs --reason; a
// discarded letter is not replayed, by seq or in bulk.
func TestDLQDiscardNeedsAReasonAndStopsReplay(t *testing.T) {
	f := newDLQFixture(t)
	if _, errOut, code := f.cli(t, "", "dlq", "discard", "1"); code == 0 || !strings.Contains(errOut, "--reason is required") {
		t.Errorf("discard without a reason: exit %d, %q", code, errOut)
	}
	if out, errOut, code := f.cli(t, "", "dlq", "discard", "1", "--reason", "sent again by Willow", "--actor", "test-operator"); code != 0 || !strings.Contains(out, "discarded dlq seq 1") {
		t.Fatalf("discard: exit %d, %q %q", code, out, errOut)
	}
	if _, errOut, code := f.cli(t, "", "dlq", "replay", "1", "--reason", "x"); code == 0 || !strings.Contains(errOut, "discarded") {
		t.Errorf("replay of a discarded letter: exit %d, %q", code, errOut)
	}
	out, _, code := f.cli(t, "", "dlq", "replay", "--flow", "willow-inventory", "--reason", "mapped", "--yes")
	if code != 0 || !strings.Contains(out, "1 replayed, 0 failed") {
		t.Errorf("bulk replay after a discard: exit %d, %q", code, out)
	}
}
