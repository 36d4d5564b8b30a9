package fhir_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/fhir"
)

func TestThrottlePeakAndOffPeakRates(t *testing.T) {
	th := fhir.NewThrottle(fhir.ThrottleConfig{Rate: 2, OffPeakRate: 20}, nil)
	for _, tc := range []struct {
		hour int
		want float64
	}{{6, 20}, {7, 2}, {18, 2}, {19, 20}, {23, 20}} {
		if got := th.RateAt(time.Date(2026, 3, 2, tc.hour, 30, 0, 0, time.UTC)); got != tc.want {
			t.Errorf("%02d:30: rate %v, want %v", tc.hour, got, tc.want)
		}
	}
}

func TestThrottleSpacesRequestsAndBoundsConcurrency(t *testing.T) {
	th := fhir.NewThrottle(fhir.ThrottleConfig{Rate: 50, Concurrency: 2, PeakStart: 0, PeakEnd: 24}, nil)
	var inFlight, most atomic.Int32
	var wg sync.WaitGroup
	start := time.Now()
	for range 10 {
		wg.Go(func() {
			release, err := th.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			n := inFlight.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(5 * time.Millisecond)
			inFlight.Add(-1)
			release()
		})
	}
	wg.Wait()
	if most.Load() > 2 {
		t.Errorf("%d in flight, cap 2", most.Load())
	}
	// 10 requests at 50/s take at least 9 intervals of 20 ms (a lower
	// bound only: under load it takes longer, never shorter).
	if el := time.Since(start); el < 180*time.Millisecond {
		t.Errorf("10 requests in %v at 50/s", el)
	}
	if th.Waited() <= 0 {
		t.Error("no wait recorded")
	}
}
