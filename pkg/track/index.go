package track

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/rs/zerolog"
)

// IndexConfig sizes an Index's memory. Pebble's memory is its block cache
// and its memtables, both bounded here, so the process's RSS stays flat as
// the index grows (it reads sstables with pread, not through an mmap).
type IndexConfig struct {
	// CacheBytes is the block cache (8 MiB when 0).
	CacheBytes int64
	// MemTableBytes is one memtable (4 MiB when 0; writes wait while two
	// are queued for flushing).
	MemTableBytes uint64
	// Log receives pebble's errors; zerolog.Nop() when zero.
	Log zerolog.Logger
}

// Index is the tracking index on disk: one record per (identifier, hop).
//
// A record's key is the identifier's key (Key, 16 bytes decoded), the
// audit sequence of its record (8 bytes, big endian) and the event's
// index in that record (4 bytes): a lookup is one prefix scan, already in
// audit order, and indexing the same audit record again writes the same
// keys (no duplicate hops, no duplicate window). Entries files a value
// once per event, so no entry index is needed. The watermark, the last
// audit sequence indexed, is under a reserved key no record key can
// equal (it is shorter than any).
type Index struct {
	// mu guards db against use after Close (pebble panics then): a web
	// request or a NATS lookup may still arrive as the console stops.
	mu     sync.RWMutex
	db     *pebble.DB
	cache  interface{ Unref() }
	closed bool
}

// ErrClosed: the index was closed.
var ErrClosed = errors.New("track: index closed")

// watermarkKey holds the last audit sequence indexed.
var watermarkKey = []byte("\x00watermark")

const (
	idLen  = 16
	keyLen = idLen + 8 + 4
)

// OpenIndex opens (creating it if missing) the index in dir.
func OpenIndex(dir string, cfg IndexConfig) (*Index, error) {
	if dir == "" {
		return nil, errors.New("track: index dir not set")
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = 8 << 20
	}
	if cfg.MemTableBytes == 0 {
		cfg.MemTableBytes = 4 << 20
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("track: index dir: %w", err)
	}
	cache := pebble.NewCache(cfg.CacheBytes)
	db, err := pebble.Open(dir, &pebble.Options{
		Cache:                       cache,
		MemTableSize:                cfg.MemTableBytes,
		MemTableStopWritesThreshold: 2,
		Logger:                      pebbleLog{cfg.Log},
		FormatMajorVersion:          pebble.FormatNewest,
	})
	if err != nil {
		cache.Unref()
		return nil, fmt.Errorf("track: open index %s: %w", dir, err)
	}
	return &Index{db: db, cache: cache}, nil
}

// Close flushes the index's write-ahead log and releases the index.
func (x *Index) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil
	}
	x.closed = true
	err := x.db.Close()
	x.cache.Unref()
	if err != nil {
		return fmt.Errorf("track: close index: %w", err)
	}
	return nil
}

// Watermark is the last audit sequence indexed (0: none).
func (x *Index) Watermark() (uint64, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed {
		return 0, ErrClosed
	}
	v, closer, err := x.db.Get(watermarkKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("track: watermark: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("track: watermark of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// Lookup returns the timeline of the identifier whose key (Key) is key:
// its hops in the order they were audited, each with its retries so far.
func (x *Index) Lookup(key string) ([]Hop, error) {
	id, err := decodeKey(key)
	if err != nil {
		return nil, err
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed {
		return nil, ErrClosed
	}
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: id, UpperBound: nextPrefix(id)})
	if err != nil {
		return nil, fmt.Errorf("track: lookup: %w", err)
	}
	defer it.Close()
	var hops []Hop
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("track: lookup: %w", err)
		}
		var h Hop
		if err := json.Unmarshal(v, &h); err != nil {
			return nil, fmt.Errorf("track: record at audit sequence %d: %w", binary.BigEndian.Uint64(it.Key()[idLen:]), err)
		}
		hops = append(hops, h)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("track: lookup: %w", err)
	}
	if len(hops) == 0 {
		return nil, ErrNotFound
	}
	return timeline(hops), nil
}

// LookupValue is Lookup by the identifier itself.
func (x *Index) LookupValue(value string) ([]Hop, error) { return x.Lookup(Key(value)) }

// batch is the records of consecutive audit records, committed at once.
type batch struct {
	x *Index
	b *pebble.Batch
}

// newBatch starts a batch; only the indexer's goroutine (one per index)
// writes, and Close comes after it stops.
func (x *Index) newBatch() batch { return batch{x, x.db.NewBatch()} }

// add files the entries of event i of the audit record at seq.
func (b batch) add(seq uint64, i int, entries []Entry) error {
	for _, e := range entries {
		v, err := json.Marshal(e.Hop)
		if err != nil {
			return fmt.Errorf("track: record: %w", err)
		}
		if err := b.b.Set(recordKey(Key(e.Value), seq, i), v, nil); err != nil {
			return fmt.Errorf("track: record: %w", err)
		}
	}
	return nil
}

// commit stores the batch with the watermark in pebble's write-ahead log,
// not fsynced. The index is derived from AUDIT and the watermark is in the
// same batch, so a crash that takes the log's tail takes the watermark's
// advance with it, and the indexer reads those records from AUDIT again
// (the same keys) when the index reopens. An fsync here would compete with
// JetStream's for the disk that every hop waits on.
func (b batch) commit(watermark uint64) error {
	defer b.b.Close()
	if err := b.b.Set(watermarkKey, binary.BigEndian.AppendUint64(nil, watermark), nil); err != nil {
		return fmt.Errorf("track: watermark: %w", err)
	}
	b.x.mu.RLock()
	defer b.x.mu.RUnlock()
	if b.x.closed {
		return ErrClosed
	}
	if err := b.b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("track: commit: %w", err)
	}
	return nil
}

// recordKey is key (decoded) || audit seq || event index.
func recordKey(key string, seq uint64, event int) []byte {
	k := make([]byte, idLen, keyLen)
	if _, err := hex.Decode(k, []byte(key)); err != nil {
		panic("track: Key is 32 hex digits: " + err.Error())
	}
	k = binary.BigEndian.AppendUint64(k, seq)
	return binary.BigEndian.AppendUint32(k, uint32(event))
}

// nextPrefix is the first key after every key starting with p (nil: none).
func nextPrefix(p []byte) []byte {
	n := bytes.Clone(p)
	for i := len(n) - 1; i >= 0; i-- {
		if n[i]++; n[i] != 0 {
			return n
		}
	}
	return nil
}

// decodeKey turns a Key back into its 16 bytes.
func decodeKey(key string) ([]byte, error) {
	id, err := hex.DecodeString(key)
	if err != nil || len(id) != idLen {
		return nil, fmt.Errorf("track: key %q is not %d hex digits", key, 2*idLen)
	}
	return id, nil
}

// pebbleLog sends pebble's errors to the service's log (no identifier is
// in them: keys are hashes, values are not logged).
type pebbleLog struct{ log zerolog.Logger }

func (l pebbleLog) Infof(string, ...any) {}
func (l pebbleLog) Errorf(f string, args ...any) {
	l.log.Error().Msg("track index: " + fmt.Sprintf(f, args...))
}
func (l pebbleLog) Fatalf(f string, args ...any) {
	l.log.Error().Msg("track index: " + fmt.Sprintf(f, args...))
	panic("track index: " + fmt.Sprintf(f, args...))
}
