package schedule_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/schedule"
	"github.com/sinewhq/sinew/pkg/streams"
)

func open(t *testing.T) *schedule.Store {
	t.Helper()
	_, _, js := natstest.StartWithTopology(t, streams.DefaultOptions())
	st, err := schedule.Open(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func cron(t *testing.T, expr string) *schedule.Cron {
	t.Helper()
	c, err := schedule.Parse(expr)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// Two schedulers (two replicas) tick on the same due time at once: the
// job runs once, and while it runs the other cannot begin one.
func TestTwoSchedulersRunADueRunOnce(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 2, 0, 30, 0, time.UTC)
	if err := st.SetWatermark(ctx, "nightly-catchup", now.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	release := make(chan struct{})
	job := func(ctx context.Context, p *schedule.Progress) error {
		runs.Add(1)
		p.Step(ctx, "work")
		<-release
		return nil
	}
	mk := func(holder string) *schedule.Scheduler {
		return schedule.New(st, schedule.Config{Flow: "nightly-catchup", Cron: cron(t, "0 2 * * *"), Holder: holder,
			LeaseTTL: 3 * time.Second, Now: func() time.Time { return now }}, job)
	}
	a, b := mk("replica-a"), mk("replica-b")
	var wg sync.WaitGroup
	got := make([]*schedule.Run, 2)
	for i, s := range []*schedule.Scheduler{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Tick(ctx)
			if err != nil {
				t.Error(err)
			}
			got[i] = r
		}()
	}
	// While the run holds the lease, a third tick begins nothing.
	deadline := time.Now().Add(5 * time.Second)
	for runs.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	l, _, err := st.Lease(ctx, "nightly-catchup")
	if err != nil || l == nil {
		t.Fatalf("lease while running: %v %v", l, err)
	}
	if r, err := mk("replica-c").Tick(ctx); r != nil || err != nil {
		t.Fatalf("third scheduler ran %v (%v) while the lease was held", r, err)
	}
	close(release)
	wg.Wait()
	if n := runs.Load(); n != 1 {
		t.Fatalf("job ran %d times, want 1", n)
	}
	if (got[0] == nil) == (got[1] == nil) {
		t.Fatalf("want exactly one scheduler to report the run: %v %v", got[0], got[1])
	}
	// Once done, the same due time is not run again by either.
	for _, s := range []*schedule.Scheduler{a, b} {
		if r, err := s.Tick(ctx); r != nil || err != nil {
			t.Fatalf("ran again: %v %v", r, err)
		}
	}
	last, err := st.Latest(ctx, "nightly-catchup")
	if err != nil || last == nil || last.Outcome != schedule.Succeeded || last.Trigger != schedule.ByScheduleTrigger || len(last.Steps) != 1 {
		t.Fatalf("run record: %+v %v", last, err)
	}
}

// Sinew was down over three scheduled times: on start the run happens
// once (a catch-up of the latest), and the watermark moves to it.
func TestMissedRunCatchesUpOnceAfterDowntime(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 8, 15, 0, 0, time.UTC)
	if err := st.SetWatermark(ctx, "nightly-catchup", time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	s := schedule.New(st, schedule.Config{Flow: "nightly-catchup", Cron: cron(t, "0 2 * * *"), Holder: "a",
		Now: func() time.Time { return now }}, func(ctx context.Context, p *schedule.Progress) error { runs.Add(1); return nil })
	r, err := s.Tick(ctx)
	if err != nil || r == nil {
		t.Fatalf("tick: %v %v", r, err)
	}
	if want := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC); r.Trigger != schedule.CatchUpTrigger || !r.Scheduled.Equal(want) {
		t.Fatalf("run %s scheduled %v, want catch-up of %v", r.Trigger, r.Scheduled, want)
	}
	if r, _ := s.Tick(ctx); r != nil || runs.Load() != 1 {
		t.Fatalf("ran %d times (again: %v), want once", runs.Load(), r)
	}
	if wm, _, _ := st.Watermark(ctx, "nightly-catchup"); !wm.Equal(r.Scheduled) {
		t.Fatalf("watermark %v, want %v", wm, r.Scheduled)
	}
	// A first start (no watermark) is not a missed run.
	s2 := schedule.New(st, schedule.Config{Flow: "other", Cron: cron(t, "0 2 * * *"), Holder: "a",
		Now: func() time.Time { return now }}, func(ctx context.Context, p *schedule.Progress) error { runs.Add(1); return nil })
	if r, err := s2.Tick(ctx); r != nil || err != nil {
		t.Fatalf("first start ran %v %v", r, err)
	}
}

// A holder that crashed leaves its lease; after the TTL another replica
// takes it and runs; a failed job is recorded as failed with its step.
func TestCrashedHoldersLeaseLapsesAndFailureIsRecorded(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	now := time.Now().UTC()
	if _, _, err := st.Acquire(ctx, "f", "crashed", "r0", 2*time.Second, now); err != nil {
		t.Fatal(err)
	}
	if err := st.Ask(ctx, "f", schedule.Request{ID: "m1", At: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.Ask(ctx, "f", schedule.Request{ID: "m2", At: now}); !errors.Is(err, schedule.ErrRequestPending) {
		t.Fatalf("second request: %v, want ErrRequestPending", err)
	}
	clock := now
	s := schedule.New(st, schedule.Config{Flow: "f", Holder: "b", LeaseTTL: 2 * time.Second, Now: func() time.Time { return clock }},
		func(ctx context.Context, p *schedule.Progress) error {
			p.Step(ctx, "compare")
			p.Add(ctx, "missing", 2)
			return errors.New("fusion read failed")
		})
	if r, err := s.Tick(ctx); r != nil || err != nil {
		t.Fatalf("ran under a live lease: %v %v", r, err)
	}
	clock = now.Add(3 * time.Second)
	r, err := s.Tick(ctx)
	if err != nil || r == nil {
		t.Fatalf("after the lease lapsed: %v %v", r, err)
	}
	if r.ID != "m1" || r.Outcome != schedule.Failed || r.Steps[0].State != schedule.Failed || r.Steps[0].Counts["missing"] != 2 {
		t.Fatalf("run: %+v", r)
	}
	if req, _, _ := st.Pending(ctx, "f"); req != nil {
		t.Fatalf("request still pending: %+v", req)
	}
	if l, _, _ := st.Lease(ctx, "f"); l != nil {
		t.Fatalf("lease not released: %+v", l)
	}
}

// A step failed by its job stays failed and the steps after it do not
// inherit the failure, whatever the run's outcome.
func TestFailedStepIsTheOneMarked(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	job := func(ctx context.Context, p *schedule.Progress) error {
		p.Step(ctx, "first")
		p.Fail(ctx, "first: 1 still missing")
		p.Step(ctx, "second")
		p.Add(ctx, "source", 3)
		return errors.New("1 step failed")
	}
	s := schedule.New(st, schedule.Config{Flow: "nightly-catchup", Holder: "replica-a"}, job)
	if err := st.Ask(ctx, "nightly-catchup", schedule.Request{ID: "m1", By: "test", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Tick(ctx)
	if err != nil || r == nil {
		t.Fatalf("tick: %v %v", r, err)
	}
	r, err = st.Run(ctx, "nightly-catchup", r.ID)
	if err != nil || r == nil {
		t.Fatal(err)
	}
	want := []struct{ name, state, detail string }{{"first", schedule.Failed, "first: 1 still missing"}, {"second", schedule.Succeeded, ""}}
	if r.Outcome != schedule.Failed || len(r.Steps) != len(want) {
		t.Fatalf("run %+v", r)
	}
	for i, w := range want {
		if s := r.Steps[i]; s.Name != w.name || s.State != w.state || s.Detail != w.detail {
			t.Errorf("step %d: %+v, want %+v", i, s, w)
		}
	}
}
