package ingest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/corpus"
	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/ingest"
)

// syntheticDir holds pkg/hl7's in-repo messages, which re-create what the
// conformance corpus (../shared/corpus/hl7v2, absent from a clone) checks.
const syntheticDir = "../../pkg/hl7/testdata/synthetic"

type env struct {
	js     jetstream.JetStream
	svc    *ingest.Service
	client *mllp.Client
}

// start runs the ingest service on a real embedded NATS and MLLP socket.
func start(t testing.TB, topo streams.Options, tune func(*ingest.Config)) *env {
	t.Helper()
	_, nc, js := natstest.StartWithTopology(t, topo)
	b, err := bus.New(nc, bus.Config{}, bus.Options{Service: "ingest", Logger: zerolog.Nop(), AuditSecret: []byte("test-secret")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ingest.DefaultConfig()
	cfg.MLLPAddr = "127.0.0.1:0"
	cfg.DropDir = t.TempDir()
	if tune != nil {
		tune(&cfg)
	}
	svc, err := ingest.New(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, svc)
	e := &env{js: js, svc: svc}
	e.client = e.dial(t)
	return e
}

func (e *env) dial(t testing.TB) *mllp.Client {
	t.Helper()
	c, err := mllp.Dial(context.Background(), mllp.ClientConfig{Addr: e.svc.MLLPAddr().String(), Match: hl7.AckMatches, AckTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (e *env) send(t *testing.T, msg []byte) *hl7.Message {
	t.Helper()
	reply, err := e.client.Send(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := hl7.Parse(reply)
	if err != nil {
		t.Fatalf("reply does not parse: %v\n%q", err, reply)
	}
	return ack
}

// stored returns every message in HL7_IN.
func (e *env) stored(t *testing.T) []jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, streams.HL7In)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *m)
	}
	return out
}

func decode(t *testing.T, data []byte) *sinewv1.Hl7Received {
	t.Helper()
	ev := &sinewv1.Hl7Received{}
	if err := proto.Unmarshal(data, ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func wire(b []byte) []byte {
	msgs, _, err := hl7.Split(b)
	if err != nil || len(msgs) != 1 {
		return nil
	}
	m, err := hl7.Parse(msgs[0])
	if err != nil {
		return nil
	}
	return m.Encode()
}

func TestEveryCorpusMessageIsCommittedThenAcknowledged(t *testing.T) {
	everyMessageIsCommittedThenAcknowledged(t, corpus.Glob(t, "hl7v2", "*.hl7"), 25)
}

func TestEverySyntheticMessageIsCommittedThenAcknowledged(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(syntheticDir, "*.hl7"))
	everyMessageIsCommittedThenAcknowledged(t, files, 15)
}

// everyMessageIsCommittedThenAcknowledged sends each single message of
// files (at least min are sent) and checks its answer and what HL7_IN keeps.
func everyMessageIsCommittedThenAcknowledged(t *testing.T, files []string, min int) {
	e := start(t, streams.DefaultOptions(), nil)
	sent := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msg := wire(data)
		if msg == nil {
			continue // batches and files of several messages are split by file ingest, not here
		}
		m, _ := hl7.Parse(msg)
		if m.Type() == "" || m.Type() == "ACK" || m.Type() == "MSA" {
			continue
		}
		if _, seq := m.SequenceNumber(); seq {
			continue // covered by the sequence-number test
		}
		ack := e.send(t, msg)
		want := hl7.AA
		if m.EnhancedMode() {
			want = hl7.CA
		}
		if got := ack.Get("MSA-1"); got != want || ack.Get("MSA-2") != m.ControlID() {
			t.Errorf("%s: MSA %s|%s, want %s|%s", filepath.Base(f), got, ack.Get("MSA-2"), want, m.ControlID())
		}
		if ack.Get("MSH-9") != "ACK" || ack.Get("MSH-9-2") != m.Event() || ack.Get("MSH-5") != m.SendingApplication() {
			t.Errorf("%s: ACK header %q", filepath.Base(f), ack.Segment(0))
		}
		sent++
	}
	stored := e.stored(t)
	if len(stored) != sent || sent < min {
		t.Fatalf("%d messages stored for %d sent", len(stored), sent)
	}
	for _, s := range stored {
		ev := decode(t, s.Data)
		if !strings.HasPrefix(s.Subject, "hl7.in.") || ev.Envelope.IdempotencyKey != s.Header.Get(jetstream.MsgIDHeader) ||
			len(ev.Raw) == 0 || ev.Envelope.ReceivedAt == nil || ev.ControlId == "" && ev.Envelope.BusinessKey("control_id") != "" {
			t.Errorf("stored %s: %+v", s.Subject, ev.Envelope)
		}
		if want := streams.HL7Subject(ev.SendingFacility, ev.MessageType, ev.TriggerEvent); s.Subject != want {
			t.Errorf("subject %s, want %s", s.Subject, want)
		}
	}
}

func TestResendGetsSameAnswerAndIsStoredOnce(t *testing.T) {
	e := start(t, streams.DefaultOptions(), nil)
	msg := "MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126||ADT^A08|CTRL-7|P|2.5\rPID|||MRN1^^^STMARYS^MR||DOE^JANE\r"
	a1 := e.send(t, []byte(msg))
	a2 := e.send(t, []byte(msg))
	if a1.Get("MSA-1") != hl7.AA || a2.Get("MSA-1") != hl7.AA {
		t.Errorf("answers %s then %s", a1.Get("MSA-1"), a2.Get("MSA-1"))
	}
	// The same control id with a different body is a different message: kept, flagged.
	other := strings.Replace(msg, "DOE^JANE", "DOE^JOHN", 1)
	if a := e.send(t, []byte(other)); a.Get("MSA-1") != hl7.AA {
		t.Errorf("reused control id answered %s", a.Get("MSA-1"))
	}
	stored := e.stored(t)
	if len(stored) != 2 {
		t.Fatalf("%d stored, want 2", len(stored))
	}
	if first, second := decode(t, stored[0].Data), decode(t, stored[1].Data); first.ControlIdReused || !second.ControlIdReused {
		t.Errorf("reuse flags: %v, %v", first.ControlIdReused, second.ControlIdReused)
	}
}

func TestUnparseableInputIsRejectedExplainedAndKept(t *testing.T) {
	e := start(t, streams.DefaultOptions(), nil)
	tests := []struct {
		name, msg, errLoc string
	}{
		{"not HL7", "hello, this is not HL7", ""},
		{"bad encoding characters", "MSH|^^\\&|EPIC|STMARYS|SINEW|HQ|20261126||ADT^A01|BAD1|P|2.5\rPID|1\r", "MSH^1^2"},
	}
	for _, tc := range tests {
		reply, err := e.client.Send(context.Background(), []byte(tc.msg))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		ack, err := hl7.Parse(reply)
		if err != nil {
			t.Fatalf("%s: NAK does not parse: %v", tc.name, err)
		}
		if ack.Get("MSA-1") != hl7.AR || ack.Count("ERR") != 1 {
			t.Errorf("%s: %q", tc.name, strings.ReplaceAll(string(reply), "\r", "\n"))
		}
		if raw, _ := ack.Raw(hl7.MustPath("ERR-2")); tc.errLoc != "" && string(raw) != tc.errLoc {
			t.Errorf("%s: ERR-2 %q, want %q", tc.name, raw, tc.errLoc)
		}
	}
	stored := e.stored(t)
	if len(stored) != 2 {
		t.Fatalf("%d kept, want 2", len(stored))
	}
	for i, s := range stored {
		ev := decode(t, s.Data)
		if string(ev.Raw) != tests[i].msg || s.Header.Get(ingest.RejectedHeader) == "" || !strings.Contains(s.Subject, ".REJECTED.") {
			t.Errorf("kept %s %q header %q", s.Subject, ev.Raw, s.Header.Get(ingest.RejectedHeader))
		}
	}
}

func TestRefusedCommitIsAnsweredAE(t *testing.T) {
	topo := streams.DefaultOptions()
	topo.IngestMaxBytes = 2048 // a full stream refuses (DiscardNew)
	e := start(t, topo, nil)
	var codes []string
	for i := range 12 {
		msg := "MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126||ADT^A08|FULL-" + string(rune('A'+i)) + "|P|2.5\rPID|||" + strings.Repeat("X", 300) + "\r"
		ack := e.send(t, []byte(msg))
		codes = append(codes, ack.Get("MSA-1"))
		if ack.Get("MSA-1") == hl7.AE {
			if ack.Count("ERR") != 1 || !strings.Contains(ack.Get("ERR-8"), "resend") {
				t.Errorf("AE without an explaining ERR: %q", ack.Segment(2))
			}
			return
		}
	}
	t.Errorf("a full HL7_IN never answered AE: %v", codes)
}

func TestEnhancedModeAndSequenceNumbers(t *testing.T) {
	// Plain MLLP tracks MSH-13 only when asked to (see seq_probe_test.go).
	e := start(t, streams.DefaultOptions(), func(c *ingest.Config) { c.HL7.SequenceNumbers = ingest.SeqAll })
	hdr := func(ctrl, seq string) string {
		return "MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126||ADT^A08|" + ctrl + "|P|2.5|" + seq + "||AL|NE\rPID|1\r"
	}
	sync := e.send(t, []byte("MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126||^|S0|P|2.5|0||AL|NE\r"))
	if sync.Get("MSA-1") != hl7.CA || sync.Get("MSA-4") != "1" {
		t.Errorf("sync: %s %s", sync.Get("MSA-1"), sync.Get("MSA-4"))
	}
	steps := []struct{ ctrl, seq, code, expected string }{
		{"Q1", "1", hl7.CA, "2"},
		{"Q2", "2", hl7.CA, "3"},
		{"Q2", "2", hl7.CA, "3"}, // duplicate: accepted, not stored again
		{"Q5", "5", hl7.CR, "3"}, // gap: rejected, the sender resends from 3
		{"Q3", "3", hl7.CA, "4"},
	}
	for _, s := range steps {
		a := e.send(t, []byte(hdr(s.ctrl, s.seq)))
		if a.Get("MSA-1") != s.code || a.Get("MSA-4") != s.expected {
			t.Errorf("seq %s: %s expected %s; want %s %s", s.seq, a.Get("MSA-1"), a.Get("MSA-4"), s.code, s.expected)
		}
	}
	if n := len(e.stored(t)); n != 3 {
		t.Errorf("%d stored, want 3 (Q1, Q2, Q3)", n)
	}
	// NE for accept acks and AL for application acks: the answer is an AA.
	a := e.send(t, []byte("MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126||ADT^A08|APP1|P|2.5|||NE|AL\rPID|1\r"))
	if a.Get("MSA-1") != hl7.AA {
		t.Errorf("NE/AL answered %s", a.Get("MSA-1"))
	}
}

func TestOrderPerConnectionAndAuditWithoutPHI(t *testing.T) {
	e := start(t, streams.DefaultOptions(), nil)
	for i := range 50 {
		msg := "MSH|^~\\&|WILLOW|STMARYS|SINEW|HQ|20261126||RDS^O13|ORD-" + itoa(i) + "|P|2.5.1\rPID|||MRN-77^^^STMARYS^MR||SECRETNAME^ALICE\r"
		if a := e.send(t, []byte(msg)); a.Get("MSA-1") != hl7.AA {
			t.Fatalf("message %d: %s", i, a.Get("MSA-1"))
		}
	}
	for i, s := range e.stored(t) {
		if ev := decode(t, s.Data); ev.ControlId != "ORD-"+itoa(i) {
			t.Fatalf("stream position %d holds %s", i, ev.ControlId)
		}
	}
	var receipts int
	v := audit.NewVerifier()
	err := audit.Read(context.Background(), e.js, "", func(en audit.Entry) error {
		v.Add(en.Record, en.StreamSeq)
		if body := string(en.Record.Events); strings.Contains(body, "SECRETNAME") || strings.Contains(body, "MRN-77") {
			t.Errorf("PHI in audit record: %q", body)
		}
		for _, ev := range en.Events {
			if ev.Action != "receive" {
				continue
			}
			receipts++
			if len(ev.PatientRefs) != 1 || !strings.HasPrefix(ev.PatientRefs[0], "hmac-sha256:") {
				t.Errorf("patient refs %v", ev.PatientRefs)
			}
		}
		return nil
	})
	if err != nil || receipts != 50 || !v.OK() {
		t.Errorf("%d receipt records, err %v, problems %v", receipts, err, v.Problems)
	}
}

func itoa(i int) string {
	return string([]byte{byte('0' + i/10), byte('0' + i%10)})
}

func TestNATSUnavailableIsAnsweredAE(t *testing.T) {
	srv, nc, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	_ = js
	b, err := bus.New(nc, bus.Config{PublishTimeout: time.Second}, bus.Options{Service: "ingest", Logger: zerolog.Nop(), AuditSecret: []byte("s")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ingest.DefaultConfig()
	cfg.MLLPAddr = "127.0.0.1:0"
	cfg.DropDir = t.TempDir()
	cfg.HL7.CommitTimeout = time.Second
	svc, err := ingest.New(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, svc)
	e := &env{js: js, svc: svc}
	e.client = e.dial(t)
	msg := []byte("MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126||ADT^A08|DOWN-1|P|2.5\rPID|1\r")
	if a := e.send(t, msg); a.Get("MSA-1") != hl7.AA {
		t.Fatalf("before the outage: %s", a.Get("MSA-1"))
	}
	srv.Shutdown() // NATS goes away
	start := time.Now()
	a := e.send(t, []byte("MSH|^~\\&|EPIC|STMARYS|SINEW|HQ|20261126||ADT^A08|DOWN-2|P|2.5\rPID|1\r"))
	if a.Get("MSA-1") != hl7.AE || !strings.Contains(a.Get("ERR-8"), "resend") {
		t.Errorf("during the outage: %s %q", a.Get("MSA-1"), a.Get("ERR-8"))
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("AE took %v", took)
	}
}
