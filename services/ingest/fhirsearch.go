package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/fhir"
)

// watermark is a search type's progress: everything dated before
// Through has been committed.
type watermark struct {
	Through time.Time `json:"through"`
}

const (
	maxRestarts = 5               // expired paging sessions tolerated per window
	minSplit    = 2 * time.Second // a capped window narrower than this is an error
)

// SyncSearch reads one type's window [watermark - overlap, now) page by
// page and moves the watermark to now once the window is committed.
func (f *FHIRSync) SyncSearch(ctx context.Context, s SearchSync) error {
	if s.DateParam == "" {
		s.DateParam = "date"
	}
	if s.Lookback <= 0 {
		s.Lookback = 7 * 24 * time.Hour
	}
	key := "search." + s.Type
	now := time.Now().UTC().Truncate(time.Second)
	from := now.Add(-s.Lookback)
	var wm watermark
	if e, err := f.kv.Get(ctx, key); err == nil {
		if json.Unmarshal(e.Value(), &wm) == nil && !wm.Through.IsZero() {
			from = wm.Through.Add(-s.Overlap)
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("watermark: %w", err)
	}
	if !from.Before(now) {
		return nil
	}
	if err := f.window(ctx, s, from, now, 0); err != nil {
		return err
	}
	b, _ := json.Marshal(watermark{Through: now})
	if _, err := f.kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("watermark: %w", err)
	}
	return nil
}

// window reads [lo, hi): every page, following next links exactly as
// given. An expired paging session restarts the window from its first
// page (what was committed is dropped as duplicate); a capped search is
// split in two halves.
func (f *FHIRSync) window(ctx context.Context, s SearchSync, lo, hi time.Time, depth int) error {
	q := url.Values{}
	if s.Params != "" {
		extra, err := url.ParseQuery(s.Params)
		if err != nil {
			return fmt.Errorf("params: %w", err)
		}
		q = extra
	}
	q.Add(s.DateParam, "ge"+lo.Format(time.RFC3339))
	q.Add(s.DateParam, "lt"+hi.Format(time.RFC3339))
	if s.Count > 0 {
		q.Set("_count", strconv.Itoa(s.Count))
	}
	first := strings.TrimRight(f.cfg.BaseURL, "/") + "/" + s.Type + "?" + q.Encode()
	restarts := 0
	for next := first; next != ""; {
		b, err := f.client.Search(ctx, next)
		var oe *fhir.OutcomeError
		switch {
		case errors.As(err, &oe) && oe.Outcome.Capped():
			if hi.Sub(lo) < minSplit || depth > 30 {
				return fmt.Errorf("search still capped on a %s window: %w", hi.Sub(lo), err)
			}
			f.count(func(st *FHIRStats) { st.Splits++ })
			mid := lo.Add(hi.Sub(lo) / 2).Truncate(time.Second)
			if err := f.window(ctx, s, lo, mid, depth+1); err != nil {
				return err
			}
			return f.window(ctx, s, mid, hi, depth+1)
		case errors.As(err, &oe) && oe.Outcome.SessionExpired():
			if restarts++; restarts > maxRestarts {
				return fmt.Errorf("paging session expired %d times: %w", restarts, err)
			}
			f.count(func(st *FHIRStats) { st.Restarts++ })
			f.bus.Logger().Info().Str("type", s.Type).Msg("FHIR paging session expired; the query restarts from its first page")
			next = first
			continue
		case err != nil:
			return err
		}
		matches := b.Matches()
		for _, r := range matches {
			if err := f.publish(ctx, r, channelPoll); err != nil {
				return err
			}
		}
		f.count(func(st *FHIRStats) { st.Pages++ })
		if err := f.audit(ctx, "search", s.Type, matches); err != nil {
			return err
		}
		next = b.Next()
	}
	return nil
}
