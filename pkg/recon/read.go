package recon

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/streams"
)

// ReadBoard reads RECON from the start to its current end with an ordered
// consumer into a Board: the rows of flow ("" for every flow) and batch
// ("" for every batch). `sinew recon report` and the web console's
// reconciliation pages read it this way.
func ReadBoard(ctx context.Context, js jetstream.JetStream, flow, batch string) (*Board, error) {
	board := NewBoard()
	err := streams.Scan(ctx, js, streams.Recon, SubjectFilter(flow), time.Time{}, func(m jetstream.Msg) error {
		var p sinewv1.ReconRow
		if err := proto.Unmarshal(m.Data(), &p); err != nil {
			return fmt.Errorf("recon: %s: not a ReconRow: %w", m.Subject(), err)
		}
		if batch == "" || p.GetScope() == batch {
			if err := board.AddProto(&p); err != nil {
				return fmt.Errorf("recon: %s: %w", m.Subject(), err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return board, nil
}
