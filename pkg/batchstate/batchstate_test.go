package batchstate_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/sinewhq/sinew/pkg/batchstate"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

func TestUpdateIsCompareAndSet(t *testing.T) {
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	ctx := context.Background()
	st, err := batchstate.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, "resolute-gl", "B/1 with spaces"); !errors.Is(err, batchstate.ErrNotFound) {
		t.Fatalf("get of a new batch: %v", err)
	}
	// Concurrent writers each add a group: none is lost.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := st.Update(ctx, "resolute-gl", "B/1 with spaces", func(s *batchstate.State) error {
				s.Groups = append(s.Groups, batchstate.Group{ID: int64(i), Step: batchstate.GroupPending})
				return nil
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := st.Get(ctx, "resolute-gl", "B/1 with spaces")
	if err != nil || len(got.Groups) != 20 || got.BatchID != "B/1 with spaces" {
		t.Fatalf("%v %+v", err, got)
	}
	if got.Group(7) == nil || got.Group(99) != nil {
		t.Error("Group lookup")
	}
	// A failing update writes nothing.
	if _, err := st.Update(ctx, "resolute-gl", "B/1 with spaces", func(s *batchstate.State) error {
		s.Groups = nil
		return errors.New("no")
	}); err == nil {
		t.Fatal("want the update's error")
	}
	if got, _ := st.Get(ctx, "resolute-gl", "B/1 with spaces"); len(got.Groups) != 20 {
		t.Fatalf("failed update wrote: %d groups", len(got.Groups))
	}
	all, err := st.List(ctx, "resolute-gl")
	if err != nil || len(all) != 1 {
		t.Fatalf("list: %v %d", err, len(all))
	}
}

func TestAdvanceRecordsEachStepOnce(t *testing.T) {
	var s batchstate.State
	s.Advance(batchstate.Received, "sha", s.Updated)
	s.Advance(batchstate.Received, "sha", s.Updated)
	s.Advance(batchstate.Submitted, "load request 1", s.Updated)
	if len(s.History) != 2 || s.Step != batchstate.Submitted || s.Done() {
		t.Fatalf("%+v", s)
	}
	for range 100 {
		s.Advance(batchstate.Submitted, "again", s.Updated)
		s.Advance(batchstate.Imported, "done", s.Updated)
	}
	if len(s.History) > 64 || s.History[0].Step != batchstate.Received || !s.Done() {
		t.Fatalf("history %d, first %s", len(s.History), s.History[0].Step)
	}
}
