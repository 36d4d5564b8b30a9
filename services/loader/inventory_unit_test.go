package loader

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/streams"
)

// The loader's inventory posting on its interfaces alone: no NATS server,
// no fusionsim (loader_test.go runs the same paths on real servers).

// memClaims is a claimStore in memory, compare-and-set like the buckets.
type memClaims struct {
	mu   sync.Mutex
	revs map[string]uint64
	vals map[string]claim
}

func newMemClaims() *memClaims {
	return &memClaims{revs: map[string]uint64{}, vals: map[string]claim{}}
}

func (m *memClaims) get(_ context.Context, key string) (*claim, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rev, ok := m.revs[key]
	if !ok {
		return nil, 0, nil
	}
	cl := m.vals[key]
	return &cl, rev, nil
}

func (m *memClaims) put(_ context.Context, key string, rev uint64, cl *claim) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.revs[key] != rev {
		return 0, jetstream.ErrKeyExists
	}
	m.revs[key] = rev + 1
	m.vals[key] = *cl
	return rev + 1, nil
}

// stubFusion answers staging calls; any other call panics (nil embedded).
type stubFusion struct {
	fusionPoster
	staged  fusion.StagedStatus
	postErr error
	found   []fusion.StagedTransaction
	posts   int
}

func (f *stubFusion) CreateInventoryTransaction(_ context.Context, t fusion.InventoryTransaction) (*fusion.StagedTransaction, error) {
	f.posts++
	if f.postErr != nil {
		return nil, f.postErr
	}
	return &fusion.StagedTransaction{InventoryTransaction: t, StagedStatus: f.staged}, nil
}

func (f *stubFusion) FindInventoryTransactions(context.Context, string, int64, int64) ([]fusion.StagedTransaction, error) {
	return f.found, nil
}

// recorder is a publisher that keeps what was published.
type recorder struct{ subjects []string }

func (r *recorder) Publish(_ context.Context, subject, _ string, _ proto.Message) (*jetstream.PubAck, error) {
	r.subjects = append(r.subjects, subject)
	return &jetstream.PubAck{}, nil
}

func TestInventoryPostingOnInterfaces(t *testing.T) {
	inv, err := flows.Load("../../flows.yaml") // willow-inventory's Fusion source code
	if err != nil {
		t.Fatal(err)
	}
	const idem = "epic.willow:CTL-1:1"
	key := claimKey("willow-inventory", idem)
	refused := &fusion.Error{StatusCode: 400, Title: "Bad Request", Details: []fusion.ErrorDetail{{Code: "INV_INVALID_ITEM", Detail: "no such item"}}}
	for _, tc := range []struct {
		name      string
		fusion    stubFusion
		claim     *claim // already recorded under the key
		headerID  string
		wantPosts int
		wantSubj  string // outcome published to RESULTS; "" for none
		wantCode  reason.Code
		wantClaim string
	}{
		{name: "accepted", fusion: stubFusion{staged: fusion.StagedStatus{TransactionInterfaceID: 42, ProcessFlag: 1}},
			wantPosts: 1, wantSubj: "accepted", wantClaim: claimDone},
		{name: "refused in Fusion's interface", fusion: stubFusion{staged: fusion.StagedStatus{TransactionInterfaceID: 43, ProcessFlag: 3, ErrorCode: "INV_INVALID_ITEM"}},
			wantPosts: 1, wantSubj: "rejected", wantCode: reason.FusionRefused, wantClaim: claimFailed},
		{name: "on-hand control refusal has its own code", fusion: stubFusion{staged: fusion.StagedStatus{ProcessFlag: 3, ErrorCode: "EGP_CONTROL_ONHAND_EXISTS"}},
			wantPosts: 1, wantSubj: "rejected", wantCode: reason.FusionOnhandControlExists, wantClaim: claimFailed},
		{name: "refused with HTTP 400", fusion: stubFusion{postErr: refused},
			wantPosts: 1, wantSubj: "rejected", wantCode: reason.FusionRefused, wantClaim: claimFailed},
		{name: "already done is not posted again", claim: &claim{State: claimDone, FusionID: "42"},
			wantSubj: "accepted", wantClaim: claimDone},
		{name: "a claim left posting is settled by reading Fusion", claim: &claim{State: claimPosting, Attempt: 1, At: time.Now()},
			fusion:   stubFusion{found: []fusion.StagedTransaction{{StagedStatus: fusion.StagedStatus{TransactionInterfaceID: 42, ProcessFlag: 1}}}},
			wantSubj: "accepted", wantClaim: claimDone},
		{name: "bad source ids are refused before any post", headerID: "x", wantCode: reason.LoaderCommandInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, pub, log := newMemClaims(), &recorder{}, zerolog.Nop()
			if tc.claim != nil {
				if _, err := cl.put(context.Background(), key, 0, tc.claim); err != nil {
					t.Fatal(err)
				}
			}
			fu := tc.fusion
			s := &Service{cfg: Config{FusionAttempts: 1, PollInterval: time.Millisecond, MaxPollInterval: time.Millisecond,
				Fusion: fusion.Config{Timeout: time.Second}}, pub: pub, log: &log, fusion: &fu, claims: cl, inv: inv}
			headerID := tc.headerID
			if headerID == "" {
				headerID = "1001"
			}
			cmd := &sinewv1.InventoryTransaction{
				Envelope:       &sinewv1.Envelope{Flow: "willow-inventory", IdempotencyKey: idem, SourceId: "CTL-1", EventId: "ev-1"},
				SourceHeaderId: headerID, SourceLineId: "1", Organization: "WIL", Subinventory: "PHARM", ItemNumber: "ITEM-1",
				TransactionType: "Miscellaneous Issue", Quantity: &sinewv1.Quantity{Value: "-2", Uom: "EA"},
				TransactionDate: timestamppb.New(time.Date(2026, 11, 26, 10, 15, 0, 0, time.UTC)),
			}
			err := s.loadInventory(context.Background(), &bus.Delivery{Subject: "fusion.cmd.willow-inventory.inventory"}, cmd)
			if got := reason.Of(err); got != tc.wantCode || (tc.wantCode != "") != bus.IsPermanent(err) {
				t.Errorf("err %v: code %q permanent %v, want %q", err, got, bus.IsPermanent(err), tc.wantCode)
			}
			if fu.posts != tc.wantPosts {
				t.Errorf("%d posts, want %d", fu.posts, tc.wantPosts)
			}
			if want := []string{streams.ResultSubject("willow-inventory", tc.wantSubj)}; tc.wantSubj == "" && len(pub.subjects) != 0 || tc.wantSubj != "" && (len(pub.subjects) != 1 || pub.subjects[0] != want[0]) {
				t.Errorf("published %v, want %v", pub.subjects, tc.wantSubj)
			}
			if got, _, _ := cl.get(context.Background(), key); tc.wantClaim != "" && (got == nil || got.State != tc.wantClaim) {
				t.Errorf("claim %+v, want %s", got, tc.wantClaim)
			}
		})
	}
}
