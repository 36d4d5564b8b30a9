package audit_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

// written writes n records from two writers concurrently and reads them back.
func written(t *testing.T, n int) []audit.Entry {
	t.Helper()
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, id := range []string{"ingest@h1-a", "loader@h1-b"} {
		w := audit.NewWriter(js, id)
		for i := range n {
			wg.Go(func() {
				err := w.Write(ctx, &sinewv1.AuditEvent{Actor: id, Action: "consume", Flow: "resolute-gl", Hop: "load", Outcome: "ok", Detail: fmt.Sprint(i)})
				if err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	var out []audit.Entry
	if err := audit.Read(ctx, js, "", func(e audit.Entry) error { out = append(out, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(out) != 2*n {
		t.Fatalf("read %d records, want %d", len(out), 2*n)
	}
	return out
}

func verify(entries []audit.Entry) *audit.Verifier {
	v := audit.NewVerifier()
	for _, e := range entries {
		v.Add(e.Record, e.StreamSeq)
	}
	return v
}

func TestChainVerifiesAndTamperingIsDetected(t *testing.T) {
	entries := written(t, 50)
	if v := verify(entries); !v.OK() || v.Writers() != 2 || v.Records != 100 {
		t.Fatalf("clean chain: writers %d records %d problems %v", v.Writers(), v.Records, v.Problems)
	}
	clone := func() []audit.Entry {
		out := make([]audit.Entry, len(entries))
		for i, e := range entries {
			out[i] = e
			out[i].Record = proto.Clone(e.Record).(*sinewv1.AuditRecord)
		}
		return out
	}
	tests := []struct {
		name   string
		tamper func([]audit.Entry) []audit.Entry
		want   string
	}{
		{"modified event", func(es []audit.Entry) []audit.Entry {
			ev := &sinewv1.AuditEvent{}
			_ = proto.Unmarshal(es[10].Record.Event, ev)
			ev.Outcome = "failed"
			es[10].Record.Event, _ = proto.Marshal(ev)
			return es
		}, audit.ProblemHash},
		{"modified and rehashed", func(es []audit.Entry) []audit.Entry {
			r := es[10].Record
			r.Event = append(r.Event, 0x08, 0x01)
			r.Hash = audit.Hash(r.PrevHash, r.Event)
			return es
		}, audit.ProblemLink},
		{"deleted record", func(es []audit.Entry) []audit.Entry {
			return append(es[:20:20], es[21:]...)
		}, audit.ProblemGap},
		{"replayed record", func(es []audit.Entry) []audit.Entry {
			return append(es[:31:31], es[30:]...)
		}, audit.ProblemRepeat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := verify(tc.tamper(clone()))
			if v.OK() {
				t.Fatal("tampering not detected")
			}
			var kinds []string
			for _, p := range v.Problems {
				kinds = append(kinds, p.Kind)
			}
			if !strings.Contains(strings.Join(kinds, ","), tc.want) {
				t.Errorf("problems %v, want %s", v.Problems, tc.want)
			}
		})
	}
}

func TestPatientRefIsKeyedAndStable(t *testing.T) {
	a := audit.PatientRef([]byte("k1"), "MRN", "12345")
	if a != audit.PatientRef([]byte("k1"), "MRN", "12345") {
		t.Error("not stable")
	}
	if a == audit.PatientRef([]byte("k2"), "MRN", "12345") || a == audit.PatientRef([]byte("k1"), "MRN", "12346") {
		t.Error("not keyed or not distinct")
	}
	if strings.Contains(a, "12345") || !strings.HasPrefix(a, "hmac-sha256:") || len(a) != len("hmac-sha256:")+32 {
		t.Errorf("ref %q", a)
	}
}
