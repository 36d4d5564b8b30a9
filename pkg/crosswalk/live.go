package crosswalk

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
)

// Live holds the current version of one code table in memory, following
// the store's current pointer with a KV watch: mappers read it per message
// without a round trip. Refresh reads the pointer directly, for a caller
// that must not act on a version that may just have been replaced (an
// unmapped code is checked against KV before it is dead-lettered).
type Live struct {
	st   *Store
	kind string
	cur  atomic.Pointer[Codes]
	mu   sync.Mutex // serialises loads
}

// Live starts following kind until ctx ends. The table is nil until a
// version exists.
func (s *Store) Live(ctx context.Context, kind string) (*Live, error) {
	if !IsCodes(kind) {
		return nil, ErrUnknownKind
	}
	l := &Live{st: s, kind: kind}
	// Watch first, then read: a version made current in between is seen
	// by one or the other.
	w, err := s.kv.Watch(ctx, kind+".current")
	if err != nil {
		return nil, err
	}
	if _, err := l.Refresh(ctx); err != nil && !errors.Is(err, ErrNoVersion) {
		_ = w.Stop()
		return nil, err
	}
	go func() {
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil || e.Operation() != jetstream.KeyValuePut {
					continue
				}
				_, _ = l.use(ctx, string(e.Value()))
			}
		}
	}()
	return l, nil
}

// Get returns the table in force as last seen (nil when none).
func (l *Live) Get() *Codes { return l.cur.Load() }

// Kind is the kind followed.
func (l *Live) Kind() string { return l.kind }

// Refresh reads the current pointer from KV now and returns its table.
func (l *Live) Refresh(ctx context.Context) (*Codes, error) {
	v, err := l.st.CurrentVersion(ctx, l.kind)
	if err != nil {
		return nil, err
	}
	return l.use(ctx, v)
}

func (l *Live) use(ctx context.Context, version string) (*Codes, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.cur.Load(); c != nil && c.Version == version {
		return c, nil
	}
	c, err := l.st.VersionCodes(ctx, l.kind, version)
	if err != nil {
		return nil, err
	}
	l.cur.Store(c)
	return c, nil
}
