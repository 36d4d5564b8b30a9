package audit_test

import (
	"context"
	"encoding/hex"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

var secret = []byte("test-audit-secret")

// trail is a server with the topology and a keyed writer.
type trail struct {
	t  *testing.T
	js jetstream.JetStream
	w  *audit.Writer
}

func newTrail(t *testing.T) *trail {
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	return &trail{t: t, js: js, w: audit.NewWriter(js, "ingest@h1-a").Keyed(secret)}
}

func (tr *trail) write(n int) {
	tr.t.Helper()
	for i := range n {
		if err := tr.w.Write(context.Background(), &sinewv1.AuditEvent{Actor: "ingest", Action: "receive", Flow: "hl7", Hop: "ingest", Outcome: "AA", Detail: strconv.Itoa(i)}); err != nil {
			tr.t.Fatal(err)
		}
	}
}

// publish stores raw bytes on subject as an outsider would, returning its stream seq.
func (tr *trail) publish(subject string, data []byte, hdr nats.Header) uint64 {
	tr.t.Helper()
	ack, err := tr.js.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Data: data, Header: hdr})
	if err != nil {
		tr.t.Fatal(err)
	}
	return ack.Sequence
}

func (tr *trail) verify(cp audit.Checkpoint) (*audit.Verifier, audit.Checkpoint) {
	tr.t.Helper()
	want, _ := streams.New(streams.DefaultOptions()).Stream(streams.Audit)
	v, next, err := audit.Verify(context.Background(), tr.js, audit.VerifyOptions{Secret: secret, Want: want, Checkpoint: cp,
		HopWriters: streams.New(streams.DefaultOptions()).HopUsers()})
	if err != nil {
		tr.t.Fatal(err)
	}
	return v, next
}

func (tr *trail) last() *sinewv1.AuditRecord {
	tr.t.Helper()
	var rec *sinewv1.AuditRecord
	if err := audit.Read(context.Background(), tr.js, "", func(e audit.Entry) error { rec = e.Record; return nil }); err != nil {
		tr.t.Fatal(err)
	}
	return rec
}

// onlyProblem fails unless v found exactly one problem, of kind at streamSeq.
func onlyProblem(t *testing.T, v *audit.Verifier, kind string, streamSeq uint64) {
	t.Helper()
	if len(v.Problems) != 1 || v.Problems[0].Kind != kind || v.Problems[0].StreamSeq != streamSeq {
		t.Fatalf("want one %s at stream seq %d, got %v", kind, streamSeq, v.Problems)
	}
}

func TestVerifyNamesGarbageAndVerifiesTheRest(t *testing.T) {
	tr := newTrail(t)
	tr.write(3)
	bad := tr.publish("audit.hl7.ingest", []byte("\xff\xfe garbage, not a record"), nil)
	tr.write(2)
	v, _ := tr.verify(audit.Checkpoint{})
	if v.Problems == nil || v.Problems[0].StreamSeq != bad {
		t.Fatalf("garbage at %d not named: %v", bad, v.Problems)
	}
	onlyProblem(t, v, v.Problems[0].Kind, bad)
	if v.Writers() != 1 {
		t.Errorf("writers %d", v.Writers())
	}
	// Reviewed by an operator, it no longer fails verification forever.
	v, _ = tr.verify(audit.Checkpoint{Accepted: map[string]string{strconv.FormatUint(bad, 10): "op: probe garbage"}})
	if !v.OK() {
		t.Errorf("accepted garbage still fails: %v", v.Problems)
	}
}

func TestVerifyNamesForgedRecordNotTheGenuineOne(t *testing.T) {
	for _, tc := range []struct {
		name string
		mac  func(rec *sinewv1.AuditRecord) string
	}{
		{"no MAC", func(*sinewv1.AuditRecord) string { return "" }},
		{"wrong key", func(rec *sinewv1.AuditRecord) string {
			return hex.EncodeToString(audit.MAC(audit.ChainKey([]byte("guess")), "audit.hl7.ingest", rec))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTrail(t)
			tr.write(2)
			// The forger reads the live head and appends a well-formed next record.
			head := tr.last()
			events := []byte("\x0a\x00")
			forged := &sinewv1.AuditRecord{Writer: head.Writer, Seq: head.Seq + 1, PrevHash: head.Hash, Events: events, Hash: audit.Hash(head.Hash, events)}
			data, _ := proto.Marshal(forged)
			hdr := nats.Header{}
			if m := tc.mac(forged); m != "" {
				hdr.Set(audit.MACHeader, m)
			}
			bad := tr.publish("audit.hl7.ingest", data, hdr)
			tr.write(2) // the genuine seq 3 and 4
			v, _ := tr.verify(audit.Checkpoint{})
			onlyProblem(t, v, audit.ProblemForged, bad)
		})
	}
}

// Records from before MACs (an upgraded deployment) verify by hash and link
// once the checkpoint says where signing began; later ones need a MAC.
func TestVerifyUnsignedBefore(t *testing.T) {
	tr := newTrail(t)
	old := audit.NewWriter(tr.js, "ingest@h0-old") // no key: a previous version
	if err := old.Write(context.Background(), &sinewv1.AuditEvent{Flow: "hl7", Hop: "ingest"}); err != nil {
		t.Fatal(err)
	}
	tr.write(2)
	v, _ := tr.verify(audit.Checkpoint{})
	onlyProblem(t, v, audit.ProblemForged, 1)
	if v, _ = tr.verify(audit.Checkpoint{UnsignedBefore: 2}); !v.OK() {
		t.Errorf("unsigned-before 2: %v", v.Problems)
	}
	if err := old.Write(context.Background(), &sinewv1.AuditEvent{Flow: "hl7", Hop: "ingest"}); err != nil {
		t.Fatal(err)
	}
	v, _ = tr.verify(audit.Checkpoint{UnsignedBefore: 2})
	onlyProblem(t, v, audit.ProblemForged, 4)
}

func TestVerifyNamesAnotherServicesChainOnThisHop(t *testing.T) {
	tr := newTrail(t)
	tr.write(1)
	// Signed, but transform's chain cannot write the ingest hop.
	other := audit.NewWriter(tr.js, "transform@h1-b").Keyed(secret)
	if err := other.Write(context.Background(), &sinewv1.AuditEvent{Flow: "hl7", Hop: "ingest", Outcome: "AA"}); err != nil {
		t.Fatal(err)
	}
	v, _ := tr.verify(audit.Checkpoint{})
	onlyProblem(t, v, audit.ProblemForged, 2)
}

// The operator's CLI replays and changes flows as the console does; a
// service's chain on those hops is still forged.
func TestVerifyLetsTheCLIWriteTheHopsItSharesWithTheConsole(t *testing.T) {
	tr := newTrail(t)
	tr.write(1)
	for _, hop := range []string{streams.HopReplay, streams.HopFlows, streams.HopTriage} {
		cli := audit.NewWriter(tr.js, audit.CLIWriterPrefix+"operator-"+hop).Keyed(secret)
		if err := cli.Write(context.Background(), &sinewv1.AuditEvent{Actor: "operator", Action: hop, Hop: hop, Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	loader := audit.NewWriter(tr.js, "loader@h1-c").Keyed(secret)
	if err := loader.Write(context.Background(), &sinewv1.AuditEvent{Action: "replay", Hop: streams.HopReplay, Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	v, _ := tr.verify(audit.Checkpoint{})
	onlyProblem(t, v, audit.ProblemForged, 5)
}

func TestVerifyFailsWhenRecordsMissingAgainstCheckpoint(t *testing.T) {
	tr := newTrail(t)
	tr.write(3)
	v, cp := tr.verify(audit.Checkpoint{})
	if !v.OK() || cp.Writers["ingest@h1-a"].Seq != 3 {
		t.Fatalf("problems %v, checkpoint %+v", v.Problems, cp)
	}
	path := filepath.Join(t.TempDir(), "checkpoint.json")
	if err := cp.Save(path); err != nil {
		t.Fatal(err)
	}
	cp, found, err := audit.LoadCheckpoint(path)
	if err != nil || !found {
		t.Fatal(found, err)
	}
	// An admin deletes AUDIT and provisioning re-creates it empty.
	ctx := context.Background()
	if err := tr.js.DeleteStream(ctx, streams.Audit); err != nil {
		t.Fatal(err)
	}
	if err := streams.Ensure(ctx, tr.js); err != nil {
		t.Fatal(err)
	}
	v, _ = tr.verify(cp)
	if v.OK() || v.Records != 0 {
		t.Fatalf("emptied AUDIT verified: %d records, %v", v.Records, v.Problems)
	}
	kinds := map[string]int{}
	for _, p := range v.Problems {
		kinds[p.Kind]++
	}
	if kinds[audit.ProblemMissing] < 2 { // the stream went back; the chain is gone
		t.Errorf("problems %v", v.Problems)
	}
	// Without a checkpoint a fresh, empty stream is fine.
	if v, _ := tr.verify(audit.Checkpoint{}); !v.OK() {
		t.Errorf("fresh stream: %v", v.Problems)
	}
}

func TestVerifyFailsOnWeakenedConfig(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		weaken func(*jetstream.StreamConfig)
	}{
		{"max age", func(c *jetstream.StreamConfig) { c.MaxAge, c.Duplicates = time.Second, time.Second }},
		{"deny purge", func(c *jetstream.StreamConfig) { c.DenyPurge = false }},
		{"deny delete", func(c *jetstream.StreamConfig) { c.DenyDelete = false }},
		{"max msgs", func(c *jetstream.StreamConfig) { c.MaxMsgs = 10 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTrail(t)
			tr.write(1)
			st, err := tr.js.Stream(ctx, streams.Audit)
			if err != nil {
				t.Fatal(err)
			}
			cfg := st.CachedInfo().Config
			tc.weaken(&cfg)
			if _, err := tr.js.UpdateStream(ctx, cfg); err != nil {
				// The server refuses to lift deny-delete/purge in place;
				// an admin can still re-create the stream without them.
				if err := tr.js.DeleteStream(ctx, streams.Audit); err != nil {
					t.Fatal(err)
				}
				if _, err := tr.js.CreateStream(ctx, cfg); err != nil {
					t.Fatal(err)
				}
			}
			v, _ := tr.verify(audit.Checkpoint{})
			onlyProblem(t, v, audit.ProblemConfig, 0)
		})
	}
}
