package schedule

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/streams"
)

// Job is a flow's run: it reports its steps and counts on p and returns
// an error when the run failed. It must be safe to run again (a run whose
// holder crashed is run again by the next holder of the lease).
type Job func(ctx context.Context, p *Progress) error

// Auditor writes an audit event (audit.Writer).
type Auditor interface {
	Write(ctx context.Context, ev *sinewv1.AuditEvent) error
}

// Config is one flow's scheduler.
type Config struct {
	Flow string
	// Cron is the flow's schedule; nil: runs only by hand.
	Cron *Cron
	// Holder names this replica in leases and run records (unique per process).
	Holder string
	// LeaseTTL is how long a lease lasts unrenewed (a crashed holder's
	// run is taken over after it); renewed every third of it. 30 s when 0.
	LeaseTTL time.Duration
	// Tick is how often the scheduler looks at requests and the clock; 5 s when 0.
	Tick time.Duration
	// Active reports whether scheduled runs may begin (the flow's state);
	// runs asked for by hand begin whatever it says. nil: always.
	Active func(ctx context.Context) bool
	Audit  Auditor // nil: not audited (tests)
	Now    func() time.Time
	Log    func(err error, msg string)
}

// Scheduler begins a flow's runs: on its schedule, after a missed
// schedule, and when asked by hand, one at a time across replicas.
type Scheduler struct {
	cfg   Config
	store *Store
	job   Job
}

// New returns a scheduler of cfg.Flow running job.
func New(store *Store, cfg Config, job Job) *Scheduler {
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 30 * time.Second
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = func(error, string) {}
	}
	if cfg.Active == nil {
		cfg.Active = func(context.Context) bool { return true }
	}
	return &Scheduler{cfg: cfg, store: store, job: job}
}

// Run ticks until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		if _, err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Log(err, s.cfg.Flow+" scheduler")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick begins at most one run, if one is due and the lease is free, and
// waits for it: a request waiting, else a scheduled time passed since the
// watermark (once, however many passed while Sinew was down). It returns
// the run it ran (nil when none).
func (s *Scheduler) Tick(ctx context.Context) (*Run, error) {
	now := s.cfg.Now().UTC()
	req, reqRev, err := s.store.Pending(ctx, s.cfg.Flow)
	if err != nil {
		return nil, err
	}
	if req != nil {
		return s.begin(ctx, &Run{ID: req.ID, Trigger: ManualTrigger, Params: req.Params}, reqRev, now)
	}
	if s.cfg.Cron == nil || !s.cfg.Active(ctx) {
		return nil, nil
	}
	due, trigger, err := s.due(ctx, now)
	if err != nil || due.IsZero() {
		return nil, err
	}
	return s.begin(ctx, &Run{ID: RunID(due), Trigger: trigger, Scheduled: due}, 0, now)
}

// due is the latest scheduled time not yet run (zero when none).
func (s *Scheduler) due(ctx context.Context, now time.Time) (time.Time, string, error) {
	wm, ok, err := s.store.Watermark(ctx, s.cfg.Flow)
	if err != nil {
		return time.Time{}, "", err
	}
	if !ok {
		// First sight of the flow: its history before Sinew ran it is
		// not a missed run.
		return time.Time{}, "", s.store.SetWatermark(ctx, s.cfg.Flow, now)
	}
	first := s.cfg.Cron.Next(wm)
	if first.IsZero() || first.After(now) {
		return time.Time{}, "", nil
	}
	last := first
	for n := 0; n < 100000; n++ {
		next := s.cfg.Cron.Next(last)
		if next.IsZero() || next.After(now) {
			break
		}
		last = next
	}
	trigger := ByScheduleTrigger
	if last != first || now.Sub(last) > s.cfg.Tick+time.Minute {
		trigger = CatchUpTrigger
	}
	return last, trigger, nil
}

// RunID is a scheduled run's id: the time it was due, so
// every replica names the same run alike.
func RunID(due time.Time) string {
	return due.UTC().Format("20060102T1504Z")
}

// ManualID is the id of a run asked for by hand at t.
func ManualID(t time.Time) string {
	return "m" + strconv.FormatInt(t.UTC().UnixMilli(), 36)
}

func (s *Scheduler) begin(ctx context.Context, run *Run, reqRev uint64, now time.Time) (*Run, error) {
	flow := s.cfg.Flow
	rev, held, err := s.store.Acquire(ctx, flow, s.cfg.Holder, run.ID, s.cfg.LeaseTTL, now)
	if errors.Is(err, ErrLeaseHeld) {
		return nil, nil // another replica runs the flow; a request waits for it
	}
	if err != nil {
		return nil, err
	}
	lease := *held
	release := func() {
		if rev != 0 {
			_ = s.store.Release(context.WithoutCancel(ctx), flow, rev)
		}
	}
	// Look again under the lease: another replica may have just run it.
	if run.Trigger == ManualTrigger {
		if err := s.store.Taken(ctx, flow, reqRev); err != nil {
			release()
			return nil, nil // taken by another replica between our read and the lease
		}
	} else if due, _, err := s.due(ctx, now); err != nil || !due.Equal(run.Scheduled) {
		release()
		return nil, err
	}
	run.Flow, run.Holder, run.Started, run.Outcome = flow, s.cfg.Holder, now, Running
	if err := s.store.SaveRun(ctx, run); err != nil {
		release()
		return nil, err
	}
	_ = s.store.setLatest(ctx, flow, run.ID)
	s.audit(ctx, run)

	jobCtx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var mu sync.Mutex // guards rev
	wg.Add(1)
	go func() { // renew the lease while the run lasts
		defer wg.Done()
		t := time.NewTicker(s.cfg.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			mu.Lock()
			nrev, err := s.store.Renew(ctx, flow, lease, rev, s.cfg.LeaseTTL, s.cfg.Now())
			if err == nil {
				rev = nrev
			}
			mu.Unlock()
			if err != nil {
				cancel(err) // another holder took over: stop, it runs again
				return
			}
		}
	}()
	p := &Progress{store: s.store, run: run}
	jobErr := s.job(jobCtx, p)
	close(stop)
	wg.Wait()
	if cause := context.Cause(jobCtx); jobErr == nil && cause != nil && ctx.Err() == nil {
		jobErr = cause
	}
	cancel(nil)

	p.finish(jobErr, s.cfg.Now().UTC())
	end := context.WithoutCancel(ctx)
	if err := s.store.SaveRun(end, run); err != nil {
		s.cfg.Log(err, flow+" run record")
	}
	if run.Trigger != ManualTrigger && ctx.Err() == nil {
		if err := s.store.SetWatermark(end, flow, run.Scheduled); err != nil {
			s.cfg.Log(err, flow+" watermark")
		}
	}
	s.audit(end, run)
	mu.Lock()
	release()
	mu.Unlock()
	return run, nil
}

func (s *Scheduler) audit(ctx context.Context, r *Run) {
	if s.cfg.Audit == nil {
		return
	}
	ev := &sinewv1.AuditEvent{Actor: s.cfg.Holder, Action: "flow-run", Flow: r.Flow, Hop: streams.HopSchedule,
		Outcome: r.Outcome, EventId: "run:" + r.Flow + ":" + r.ID + ":" + r.Outcome, Detail: r.Summary(),
		BusinessKeys: sinewv1.KeysOf("run", r.ID, "trigger", r.Trigger)}
	if err := s.cfg.Audit.Write(ctx, ev); err != nil {
		s.cfg.Log(err, r.Flow+" run audit")
	}
}

// Summary is the run's steps and counts on one line (names and numbers only).
func (r *Run) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Trigger, r.Outcome)
	for _, st := range r.Steps {
		fmt.Fprintf(&b, "; %s %s", st.Name, st.State)
		for _, k := range slices.Sorted(maps.Keys(st.Counts)) {
			fmt.Fprintf(&b, " %s=%d", k, st.Counts[k])
		}
	}
	if r.Error != "" {
		b.WriteString("; error: " + r.Error)
	}
	return b.String()
}

// Progress is a running job's record: steps and counts, written to the
// run's record as they change (at most every saveEvery, and at each step).
type Progress struct {
	store *Store
	mu    sync.Mutex
	run   *Run
	saved time.Time
}

const saveEvery = 200 * time.Millisecond

// Param is a parameter the run was asked with ("" when none).
func (p *Progress) Param(name string) string { return p.run.Params[name] }

// Run is the run's id, trigger and scheduled time (read only).
func (p *Progress) Run() Run {
	p.mu.Lock()
	defer p.mu.Unlock()
	return *p.run
}

// Step begins a step (the step before it ends, succeeded unless failed).
func (p *Progress) Step(ctx context.Context, name string) {
	p.mu.Lock()
	p.endStep(Succeeded, "")
	p.run.Steps = append(p.run.Steps, Step{Name: name, State: Running, Counts: map[string]int64{}})
	p.mu.Unlock()
	p.save(ctx, true)
}

// Add adds n to the current step's count name.
func (p *Progress) Add(ctx context.Context, name string, n int64) {
	p.mu.Lock()
	if len(p.run.Steps) > 0 {
		p.run.Steps[len(p.run.Steps)-1].Counts[name] += n
	}
	p.mu.Unlock()
	p.save(ctx, false)
}

// Detail sets the current step's detail (names and numbers, no values).
func (p *Progress) Detail(ctx context.Context, d string) {
	p.mu.Lock()
	if len(p.run.Steps) > 0 {
		p.run.Steps[len(p.run.Steps)-1].Detail = d
	}
	p.mu.Unlock()
	p.save(ctx, false)
}

// Fail ends the current step as failed with detail (names and numbers,
// no values); the next Step or the run's end leaves it failed.
func (p *Progress) Fail(ctx context.Context, detail string) {
	p.mu.Lock()
	p.endStep(Failed, detail)
	p.mu.Unlock()
	p.save(ctx, true)
}

func (p *Progress) endStep(state, detail string) {
	if n := len(p.run.Steps); n > 0 && p.run.Steps[n-1].State == Running {
		p.run.Steps[n-1].State = state
		if detail != "" {
			p.run.Steps[n-1].Detail = detail
		}
	}
}

func (p *Progress) save(ctx context.Context, force bool) {
	p.mu.Lock()
	if !force && time.Since(p.saved) < saveEvery {
		p.mu.Unlock()
		return
	}
	p.saved = time.Now()
	r := *p.run
	r.Steps = slices.Clone(r.Steps)
	for i := range r.Steps {
		r.Steps[i].Counts = maps.Clone(r.Steps[i].Counts)
	}
	p.mu.Unlock()
	_ = p.store.SaveRun(ctx, &r)
}

func (p *Progress) finish(err error, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.run.Ended, p.run.Outcome = at, Succeeded
	if err != nil {
		p.run.Outcome, p.run.Error = Failed, err.Error()
		// The job's error is the running step's, unless the job already
		// said which step failed (Fail): then that error is the summary.
		state := Failed
		if slices.ContainsFunc(p.run.Steps, func(s Step) bool { return s.State == Failed }) {
			state = Succeeded
		}
		p.endStep(state, "")
		return
	}
	p.endStep(Succeeded, "")
}
