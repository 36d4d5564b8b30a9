package loader

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/sinewhq/sinew/pkg/fusion"
)

// The loader's dependencies, declared where they are used, so that its
// posting logic can be tested without a NATS server or fusionsim.

// stagedPoster stages inventory transactions (*fusion.Client).
type stagedPoster interface {
	CreateInventoryTransaction(ctx context.Context, t fusion.InventoryTransaction) (*fusion.StagedTransaction, error)
	CreateInventoryTransactions(ctx context.Context, ts []fusion.InventoryTransaction) ([]fusion.StagedStatus, []fusion.BatchPartResult, error)
}

// fusionPoster is every call the loader makes on Fusion (*fusion.Client).
type fusionPoster interface {
	stagedPoster
	FindInventoryTransactions(ctx context.Context, sourceCode string, headerID, lineID int64) ([]fusion.StagedTransaction, error)
	UpsertItem(ctx context.Context, it fusion.Item) (*fusion.Item, error)
	FindSupplier(ctx context.Context, number string) (*fusion.Supplier, error)
	CreateSupplier(ctx context.Context, s fusion.Supplier) (*fusion.Supplier, error)
	FindImportRequests(ctx context.Context, fileName string) ([]string, error)
	ImportBulkData(ctx context.Context, r fusion.ImportRequest) (string, error)
	SubmitJournalImport(ctx context.Context, p fusion.JournalImportParams) (string, error)
	DownloadExecutionDetails(ctx context.Context, requestID, fileType string) (map[string][]byte, error)
	JournalBatches(ctx context.Context, q fusion.JournalBatchQuery) ([]fusion.JournalBatch, error)
	ExecutionDetails(ctx context.Context, requestID string) ([]fusion.Job, error)
	Workers(ctx context.Context, q fusion.WorkerQuery) ([]fusion.Worker, error)
	UpdateProviderAttributes(ctx context.Context, w fusion.Worker, effective time.Time, attrs map[string]string) error
}

// publisher publishes an event once per message id (*bus.Bus).
type publisher interface {
	Publish(ctx context.Context, subject, msgID string, msg proto.Message) (*jetstream.PubAck, error)
}

// claimStore keeps the idempotency claims (claims: the KV buckets).
// put is compare-and-set on rev (0: new); a lost race is
// jetstream.ErrKeyExists or a wrong-last-sequence API error.
type claimStore interface {
	get(ctx context.Context, key string) (*claim, uint64, error)
	put(ctx context.Context, key string, rev uint64, cl *claim) (uint64, error)
}

var (
	_ fusionPoster = (*fusion.Client)(nil)
	_ claimStore   = claims{}
)
