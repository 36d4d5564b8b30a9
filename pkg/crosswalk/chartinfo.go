package crosswalk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ChartInfo is the stored chart with its place in the bucket: the one
// transform checks mapped lines against.
type ChartInfo struct {
	Chart    *Chart
	Key      string    // KV key
	Revision uint64    // KV revision
	Stored   time.Time // when it was stored
	SHA256   string    // of the stored CSV
	Header   []string  // segment names, as the CSV's header
}

// ChartInfo returns the stored chart and its KV revision, or ErrNoVersion
// when none was saved.
func (s *Store) ChartInfo(ctx context.Context) (*ChartInfo, error) {
	e, err := s.kv.Get(ctx, chartKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNoVersion
	} else if err != nil {
		return nil, fmt.Errorf("crosswalk: chart: %w", err)
	}
	c, err := ParseChart(bytes.NewReader(e.Value()))
	if err != nil {
		return nil, err
	}
	cr := csv.NewReader(bytes.NewReader(e.Value()))
	cr.Comment = '#'
	header, _ := cr.Read()
	sum := sha256.Sum256(e.Value())
	return &ChartInfo{Chart: c, Key: chartKey, Revision: e.Revision(), Stored: e.Created(), SHA256: hex.EncodeToString(sum[:]), Header: header}, nil
}

// Combinations lists the valid combinations, segments joined by ".",
// sorted.
func (c *Chart) Combinations() []string {
	out := make([]string, 0, len(c.combos))
	for k := range c.combos {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
