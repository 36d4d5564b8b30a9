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

// written writes n events from each of two writers and reads them back.
// Sequential writes give one record each; concurrent ones are committed
// together (group commit), so records may hold several events.
func written(t *testing.T, n int, concurrent bool) []audit.Entry {
	t.Helper()
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, id := range []string{"ingest@h1-a", "loader@h1-b"} {
		w := audit.NewWriter(js, id)
		wg.Go(func() {
			var inner sync.WaitGroup
			for i := range n {
				write := func() {
					err := w.Write(ctx, &sinewv1.AuditEvent{Actor: id, Action: "consume", Flow: "resolute-gl", Hop: "load", Outcome: "ok", Detail: fmt.Sprint(i)})
					if err != nil {
						t.Error(err)
					}
				}
				if concurrent {
					inner.Go(write)
				} else {
					write()
				}
			}
			inner.Wait()
		})
	}
	wg.Wait()
	var out []audit.Entry
	events := 0
	if err := audit.Read(ctx, js, "", func(e audit.Entry) error {
		out = append(out, e)
		events += len(e.Events)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if events != 2*n {
		t.Fatalf("read %d events, want %d", events, 2*n)
	}
	return out
}

func TestGroupCommit(t *testing.T) {
	entries := written(t, 500, true)
	if len(entries) >= 1000 {
		t.Errorf("%d records for 1000 concurrent events: no group commit", len(entries))
	}
	if v := verify(entries); !v.OK() || v.Writers() != 2 {
		t.Errorf("problems %v", v.Problems)
	}
	t.Logf("1000 events in %d records", len(entries))
}

func verify(entries []audit.Entry) *audit.Verifier {
	v := audit.NewVerifier()
	for _, e := range entries {
		v.Add(e.Record, e.StreamSeq)
	}
	return v
}

func TestChainVerifiesAndTamperingIsDetected(t *testing.T) {
	entries := written(t, 50, false)
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
			evs, _ := audit.Events(es[10].Record)
			evs[0].Outcome = "failed"
			es[10].Record.Events, _ = proto.Marshal(&sinewv1.AuditEvents{Events: evs})
			return es
		}, audit.ProblemHash},
		{"modified and rehashed", func(es []audit.Entry) []audit.Entry {
			r := es[10].Record
			r.Events = append(r.Events, 0x0a, 0x00)
			r.Hash = audit.Hash(r.PrevHash, r.Events)
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
