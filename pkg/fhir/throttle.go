package fhir

import (
	"context"
	"sync"
	"time"
)

// ThrottleConfig caps what Sinew asks of one Epic instance (Epic expects
// an app to stay within a small share of its database): requests per
// second, higher off-peak, and requests in flight at once.
type ThrottleConfig struct {
	// Rate is requests per second during peak hours (0: no rate cap).
	Rate float64 `yaml:"rate"`
	// OffPeakRate applies outside [PeakStart, PeakEnd) (0: Rate).
	OffPeakRate float64 `yaml:"offpeak_rate"`
	// PeakStart and PeakEnd are hours of the day, local to Location
	// (default 7 and 19).
	PeakStart int `yaml:"peak_start"`
	PeakEnd   int `yaml:"peak_end"`
	// Concurrency caps requests in flight (0: no cap).
	Concurrency int `yaml:"concurrency"`
	// Location is the instance's time zone (default UTC).
	Location *time.Location `yaml:"-"`
}

// Throttle spaces requests by the rate of the hour and bounds those in
// flight. Safe for concurrent use.
type Throttle struct {
	cfg  ThrottleConfig
	sem  chan struct{}
	now  func() time.Time
	mu   sync.Mutex
	next time.Time // earliest start of the next request
	// Waited is the total time requests waited for the cap (a metric).
	waited time.Duration
}

// NewThrottle returns a throttle for cfg (now: time.Now when nil).
func NewThrottle(cfg ThrottleConfig, now func() time.Time) *Throttle {
	if cfg.PeakStart == 0 && cfg.PeakEnd == 0 {
		cfg.PeakStart, cfg.PeakEnd = 7, 19
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if now == nil {
		now = time.Now
	}
	t := &Throttle{cfg: cfg, now: now}
	if cfg.Concurrency > 0 {
		t.sem = make(chan struct{}, cfg.Concurrency)
	}
	return t
}

// RateAt is the rate cap at instant at (0: none).
func (t *Throttle) RateAt(at time.Time) float64 {
	h := at.In(t.cfg.Location).Hour()
	if h >= t.cfg.PeakStart && h < t.cfg.PeakEnd {
		return t.cfg.Rate
	}
	if t.cfg.OffPeakRate > 0 {
		return t.cfg.OffPeakRate
	}
	return t.cfg.Rate
}

// Waited is the time requests have spent waiting for the caps.
func (t *Throttle) Waited() time.Duration { t.mu.Lock(); defer t.mu.Unlock(); return t.waited }

// InFlight is the number of requests holding a concurrency slot.
func (t *Throttle) InFlight() int { return len(t.sem) }

// Acquire waits for a concurrency slot and the request's turn under the
// rate; release gives the slot back.
func (t *Throttle) Acquire(ctx context.Context) (release func(), err error) {
	start := t.now()
	if t.sem != nil {
		select {
		case t.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	release = func() {
		if t.sem != nil {
			<-t.sem
		}
	}
	if r := t.RateAt(start); r > 0 {
		t.mu.Lock()
		now := t.now()
		at := t.next
		if at.Before(now) {
			at = now
		}
		t.next = at.Add(time.Duration(float64(time.Second) / r))
		t.mu.Unlock()
		if d := at.Sub(now); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				release()
				return nil, ctx.Err()
			}
		}
	}
	t.mu.Lock()
	t.waited += t.now().Sub(start)
	t.mu.Unlock()
	return release, nil
}
