package dlq_test

import (
	"context"
	"testing"
	"time"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

func TestWriteOncePerStreamMessageBeyondTheDuplicateWindow(t *testing.T) {
	// A 1 s duplicate window: the second writer comes after it has passed.
	_, _, js := natstest.StartWithTopology(t, streams.Options{DuplicateWindow: time.Second})
	ctx := context.Background()
	d := &sinewv1.DeadLetter{Stream: streams.FusionCmd, Consumer: streams.LoaderFusion, StreamSeq: 42, Subject: "fusion.cmd.x.y", Kind: dlq.KindPermanent}
	if dup, err := dlq.Write(ctx, js, d); err != nil || dup {
		t.Fatalf("first write: dup=%v err=%v", dup, err)
	}
	time.Sleep(1500 * time.Millisecond)
	d2 := &sinewv1.DeadLetter{Stream: streams.FusionCmd, Consumer: streams.LoaderFusion, StreamSeq: 42, Subject: "fusion.cmd.x.y", Kind: dlq.KindMaxDeliveries}
	if dup, err := dlq.Write(ctx, js, d2); err != nil || !dup {
		t.Fatalf("second write: dup=%v err=%v", dup, err)
	}
	other := &sinewv1.DeadLetter{Stream: streams.FusionCmd, Consumer: streams.LoaderFusion, StreamSeq: 43, Subject: "fusion.cmd.x.y"}
	if dup, err := dlq.Write(ctx, js, other); err != nil || dup {
		t.Fatalf("other message: dup=%v err=%v", dup, err)
	}
	s, _ := js.Stream(ctx, streams.DLQ)
	info, _ := s.Info(ctx)
	if info.State.Msgs != 2 {
		t.Errorf("%d dead letters, want 2", info.State.Msgs)
	}
}
