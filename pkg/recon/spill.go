package recon

import (
	"bufio"
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/sinewhq/sinew/pkg/money"
)

// DefaultMemoryBudget is the line index's memory when Input.MemoryBudget
// is 0: about 60,000 lines each of posted and source; a larger batch is sorted in runs on disk.
const DefaultMemoryBudget = 16 << 20

// entry is one posted or source line as tier 3's merge-join needs it.
// seq orders lines of one REFERENCE21: a source line's position among
// Add's calls, a posted line's among the read-back's.
type entry struct {
	ref                               string
	seq                               int64
	group, jeBatch                    int64
	dr, cr                            money.Amount
	account, ledger, period, currency string
}

// entrySize is an entry's fixed part; its strings but ref are shared
// (interned by the readers), so a held entry costs entrySize + len(ref).
const entrySize = 120

// maxFanIn bounds the runs merged at once (each reads through a
// runBuffer): beyond it runs are merged into one first.
const (
	maxFanIn  = 64
	runBuffer = 16 << 10
)

func compareEntries(a, b *entry) int {
	return cmp.Or(cmp.Compare(a.ref, b.ref), cmp.Compare(a.seq, b.seq))
}

// sorter sorts entries by (ref, seq) within a memory limit: entries are
// held until the limit, then sorted and written to a run file; iter
// merges the runs and the entries still held.
type sorter struct {
	dir   string
	limit int64
	held  int64 // bytes of buf's strings
	buf   []entry
	runs  []*os.File
	enc   []byte
	wrote bool // some run was written
}

func newSorter(dir string, limit int64) *sorter {
	return &sorter{dir: dir, limit: max(limit, 2*entrySize)}
}

// spilled reports whether some entries are on disk.
func (s *sorter) spilled() bool { return s.wrote }

func (s *sorter) add(e *entry) error {
	if len(s.buf) == cap(s.buf) {
		// Grow within the limit: the slice's capacity counts, not its length.
		want := int64(max(2*cap(s.buf), 64))
		if room := (s.limit - s.held) / entrySize; want > room {
			want = room
		}
		if want <= int64(len(s.buf)) {
			if err := s.spill(); err != nil {
				return err
			}
		} else {
			s.buf = slices.Grow(s.buf, int(want)-len(s.buf))
		}
	}
	s.buf = append(s.buf, *e)
	s.held += int64(len(e.ref))
	return nil
}

// spill writes the held entries, sorted, to a new run.
func (s *sorter) spill() error {
	if len(s.buf) == 0 {
		return nil
	}
	slices.SortFunc(s.buf, func(a, b entry) int { return compareEntries(&a, &b) })
	src := &sliceStream{es: s.buf}
	if err := s.writeRun(src); err != nil {
		return err
	}
	clear(s.buf) // drop the refs
	s.buf, s.held = s.buf[:0], 0
	if len(s.runs) >= maxFanIn {
		m, err := s.merge(s.runs, nil)
		if err != nil {
			return err
		}
		runs := s.runs
		s.runs = nil
		err = s.writeRun(m)
		for _, f := range runs {
			closeRun(f)
		}
		return err
	}
	return nil
}

func (s *sorter) writeRun(src stream) error {
	f, err := os.CreateTemp(s.dir, "recon-run-*")
	if err != nil {
		return fmt.Errorf("recon: spilling lines: %w", err)
	}
	_ = os.Remove(f.Name()) // where the system allows it, the open file is all that is left
	s.runs, s.wrote = append(s.runs, f), true
	w := bufio.NewWriterSize(f, 64<<10)
	var e entry
	for {
		ok, err := src.next(&e)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		s.enc = encodeEntry(s.enc[:0], &e)
		if _, err := w.Write(s.enc); err != nil {
			return fmt.Errorf("recon: spilling lines: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("recon: spilling lines: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("recon: spilling lines: %w", err)
	}
	return nil
}

// iter returns the entries in (ref, seq) order. Call it once, after the
// last add.
func (s *sorter) iter() (stream, error) {
	slices.SortFunc(s.buf, func(a, b entry) int { return compareEntries(&a, &b) })
	mem := &sliceStream{es: s.buf}
	if len(s.runs) == 0 {
		return mem, nil
	}
	return s.merge(s.runs, mem)
}

// merge merges runs (and mem, if not nil) into one stream.
func (s *sorter) merge(runs []*os.File, mem stream) (stream, error) {
	m := &merger{}
	add := func(src stream) error {
		h := &head{src: src}
		ok, err := src.next(&h.e)
		if err != nil {
			return err
		}
		if ok {
			m.heads = append(m.heads, h)
		}
		return nil
	}
	for _, f := range runs {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("recon: reading spilled lines: %w", err)
		}
		if err := add(&runReader{r: bufio.NewReaderSize(f, runBuffer), intern: map[string]string{}}); err != nil {
			return nil, err
		}
	}
	if mem != nil {
		if err := add(mem); err != nil {
			return nil, err
		}
	}
	heap.Init(m)
	return m, nil
}

// close removes the runs.
func (s *sorter) close() {
	for _, f := range s.runs {
		closeRun(f)
	}
	s.runs, s.buf = nil, nil
}

func closeRun(f *os.File) {
	_ = f.Close()
	_ = os.Remove(f.Name()) // already gone where the system allowed it
}

// stream yields entries; next copies the next one into e.
type stream interface {
	next(e *entry) (bool, error)
}

type sliceStream struct {
	es []entry
	i  int
}

func (s *sliceStream) next(e *entry) (bool, error) {
	if s.i >= len(s.es) {
		return false, nil
	}
	*e = s.es[s.i]
	s.es[s.i] = entry{} // the caller has it now
	s.i++
	return true, nil
}

type head struct {
	e   entry
	src stream
}

// merger is a k-way merge of sorted streams (a heap of their heads).
type merger struct {
	heads []*head
}

func (m *merger) Len() int           { return len(m.heads) }
func (m *merger) Less(i, j int) bool { return compareEntries(&m.heads[i].e, &m.heads[j].e) < 0 }
func (m *merger) Swap(i, j int)      { m.heads[i], m.heads[j] = m.heads[j], m.heads[i] }
func (m *merger) Push(x any)         { m.heads = append(m.heads, x.(*head)) }
func (m *merger) Pop() any {
	h := m.heads[len(m.heads)-1]
	m.heads = m.heads[:len(m.heads)-1]
	return h
}

func (m *merger) next(e *entry) (bool, error) {
	if len(m.heads) == 0 {
		return false, nil
	}
	h := m.heads[0]
	*e = h.e
	ok, err := h.src.next(&h.e)
	if err != nil {
		return false, err
	}
	if ok {
		heap.Fix(m, 0)
	} else {
		heap.Pop(m)
	}
	return true, nil
}

// A run is entries one after another: varints and length-prefixed
// strings.
func encodeEntry(b []byte, e *entry) []byte {
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	str(e.ref)
	b = binary.AppendVarint(b, e.seq)
	b = binary.AppendVarint(b, e.group)
	b = binary.AppendVarint(b, e.jeBatch)
	b = binary.AppendVarint(b, int64(e.dr))
	b = binary.AppendVarint(b, int64(e.cr))
	str(e.account)
	str(e.ledger)
	str(e.period)
	str(e.currency)
	return b
}

type runReader struct {
	r      *bufio.Reader
	intern map[string]string // account, ledger, period, currency repeat
	b      []byte
}

var errCorruptRun = errors.New("recon: spilled lines: corrupt run")

func (rr *runReader) next(e *entry) (bool, error) {
	n, err := binary.ReadUvarint(rr.r)
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("recon: reading spilled lines: %w", err)
	}
	ref, err := rr.bytes(n)
	if err != nil {
		return false, err
	}
	e.ref = string(ref)
	for _, p := range []*int64{&e.seq, &e.group, &e.jeBatch, (*int64)(&e.dr), (*int64)(&e.cr)} {
		if *p, err = binary.ReadVarint(rr.r); err != nil {
			return false, fmt.Errorf("%w: %w", errCorruptRun, err)
		}
	}
	for _, p := range []*string{&e.account, &e.ledger, &e.period, &e.currency} {
		n, err := binary.ReadUvarint(rr.r)
		if err != nil {
			return false, fmt.Errorf("%w: %w", errCorruptRun, err)
		}
		b, err := rr.bytes(n)
		if err != nil {
			return false, err
		}
		v, ok := rr.intern[string(b)]
		if !ok {
			v = string(b)
			if len(rr.intern) < 1<<12 {
				rr.intern[v] = v
			}
		}
		*p = v
	}
	return true, nil
}

func (rr *runReader) bytes(n uint64) ([]byte, error) {
	if n > 1<<20 {
		return nil, errCorruptRun
	}
	rr.b = slices.Grow(rr.b[:0], int(n))[:n]
	if _, err := io.ReadFull(rr.r, rr.b); err != nil {
		return nil, fmt.Errorf("%w: %w", errCorruptRun, err)
	}
	return rr.b, nil
}
