package mllp_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/sinewhq/sinew/pkg/mllp"
)

func TestEncode(t *testing.T) {
	for _, tc := range []struct {
		dst, msg, want string
	}{
		{"", "MSH|^~\\&|A", "\x0bMSH|^~\\&|A\x1c\x0d"},
		{"", "", "\x0b\x1c\x0d"},
		{"\x0bX\x1c\x0d", "Y", "\x0bX\x1c\x0d\x0bY\x1c\x0d"}, // appends
	} {
		if got := string(mllp.Encode([]byte(tc.dst), []byte(tc.msg))); got != tc.want {
			t.Errorf("Encode(%q, %q) = %q, want %q", tc.dst, tc.msg, got, tc.want)
		}
	}
	for _, tc := range []struct {
		msg  string
		want bool
	}{
		{"MSH|x\rPID|y\r", true},
		{"", true},
		{"a\x0bb", false},
		{"a\x1cb", false},
		{"\x00\r\n", true},
	} {
		if got := mllp.ValidPayload([]byte(tc.msg)); got != tc.want {
			t.Errorf("ValidPayload(%q) = %v", tc.msg, got)
		}
	}
}

// result renders what one Next call returned: the payload, or "!kind@offset"
// for a dropped frame.
func result(t *testing.T, p []byte, err error) string {
	t.Helper()
	if err == nil {
		return string(p)
	}
	var fe *mllp.FramingError
	if !errors.As(err, &fe) {
		t.Fatalf("Next: unexpected error %v", err)
	}
	kind := map[error]string{
		mllp.ErrFrameTooLarge: "too_large", mllp.ErrStartInFrame: "start",
		mllp.ErrMissingCR: "missing_cr", io.ErrUnexpectedEOF: "eof",
	}[fe.Err]
	if kind == "" || !errors.Is(err, fe.Err) {
		t.Fatalf("FramingError with unknown cause %v", fe.Err)
	}
	return fmt.Sprintf("!%s@%d", kind, fe.Offset)
}

// readAll reads until io.EOF and returns results and junk reports.
func readAll(t *testing.T, rd io.Reader, o mllp.ReaderOptions) (res, junk []string, skipped int64) {
	t.Helper()
	o.OnJunk = func(n int, first []byte) { junk = append(junk, fmt.Sprintf("%d:%q", n, first)) }
	r := mllp.NewReader(rd, o)
	for range 1000 {
		p, err := r.Next()
		if err == io.EOF {
			return res, junk, r.Skipped()
		}
		res = append(res, result(t, p, err))
	}
	t.Fatal("Next never returned io.EOF")
	return nil, nil, 0
}

func TestReader(t *testing.T) {
	long := strings.Repeat("J", 40)
	tests := []struct {
		name    string
		in      string
		opts    mllp.ReaderOptions
		want    []string
		junk    []string
		skipped int64
	}{
		{name: "one frame", in: "\x0bMSH|1\x1c\x0d", want: []string{"MSH|1"}},
		{name: "several frames", in: "\x0bA\x1c\x0d\x0bBB\x1c\x0d\x0bCCC\x1c\x0d", want: []string{"A", "BB", "CCC"}},
		{name: "empty payload", in: "\x0b\x1c\x0d", want: []string{""}},
		{name: "empty stream", in: ""},
		{name: "junk between frames", in: "xx\x0bA\x1c\x0dyyy\x0bB\x1c\x0dzz", want: []string{"A", "B"},
			junk: []string{`2:"xx"`, `3:"yyy"`, `2:"zz"`}, skipped: 7},
		{name: "NUL padding", in: "\x00\x00\x0bA\x1c\x0d\x00", want: []string{"A"},
			junk: []string{`2:"\x00\x00"`, `1:"\x00"`}, skipped: 3},
		{name: "long junk reports 16 bytes", in: long + "\x0bA\x1c\x0d", want: []string{"A"},
			junk: []string{`40:"JJJJJJJJJJJJJJJJ"`}, skipped: 40},
		{name: "only junk", in: "hello", junk: []string{`5:"hello"`}, skipped: 5},
		{name: "stray end block outside a frame", in: "\x1c\x0d\x0bA\x1c\x0d", want: []string{"A"},
			junk: []string{`2:"\x1c\r"`}, skipped: 2},
		{name: "line feed after CR", in: "\x0bA\x1c\x0d\n\x0bB\x1c\x0d\n", want: []string{"A", "B"},
			junk: []string{`1:"\n"`, `1:"\n"`}, skipped: 2},
		{name: "missing CR strict", in: "\x0bA\x1c\x0bB\x1c\x0d", want: []string{"!missing_cr@0", "B"}},
		{name: "missing CR strict at EOF", in: "\x0bA\x1c", want: []string{"!missing_cr@0"}},
		{name: "missing CR allowed", in: "\x0bA\x1c\x0bB\x1c\x0d", opts: mllp.ReaderOptions{AllowMissingCR: true},
			want: []string{"A", "B"}},
		{name: "missing CR allowed at EOF", in: "\x0bA\x1c\x0bB\x1c", opts: mllp.ReaderOptions{AllowMissingCR: true},
			want: []string{"A", "B"}},
		{name: "missing CR allowed, LF instead", in: "\x0bA\x1c\n\x0bB\x1c\x0d", opts: mllp.ReaderOptions{AllowMissingCR: true},
			want: []string{"A", "B"}, junk: []string{`1:"\n"`}, skipped: 1},
		{name: "CR allowed is still dropped", in: "\x0bA\x1c\x0d\x0d", opts: mllp.ReaderOptions{AllowMissingCR: true},
			want: []string{"A"}, junk: []string{`1:"\r"`}, skipped: 1},
		{name: "start block inside a frame", in: "\x0bPART\x0bB\x1c\x0d", want: []string{"!start@0", "B"}},
		{name: "two start blocks", in: "z\x0b\x0bA\x1c\x0d", want: []string{"!start@1", "A"},
			junk: []string{`1:"z"`}, skipped: 1},
		{name: "exactly the limit", in: "\x0b1234\x1c\x0d", opts: mllp.ReaderOptions{MaxFrameSize: 4}, want: []string{"1234"}},
		{name: "too large, resync after its end", in: "\x0b12345\x1c\x0d\x0bok\x1c\x0d", opts: mllp.ReaderOptions{MaxFrameSize: 4},
			want: []string{"!too_large@0", "ok"}},
		{name: "too large, long", in: "\x0b" + strings.Repeat("x", 10000) + "\x1c\x0dj\x0bok\x1c\x0d", opts: mllp.ReaderOptions{MaxFrameSize: 4},
			want: []string{"!too_large@0", "ok"}, junk: []string{`1:"j"`}, skipped: 1},
		{name: "too large, resync at a new start", in: "\x0b123456\x0bok\x1c\x0d", opts: mllp.ReaderOptions{MaxFrameSize: 4},
			want: []string{"!too_large@0", "ok"}},
		{name: "too large then EOF", in: "\x0b123456", opts: mllp.ReaderOptions{MaxFrameSize: 4},
			want: []string{"!eof@0"}},
		{name: "EOF inside a frame", in: "\x0bA\x1c\x0d\x0bMSH|trunc", want: []string{"A", "!eof@4"}},
		{name: "large frame grows the buffer", in: "\x0b" + strings.Repeat("y", 100<<10) + "\x1c\x0d",
			want: []string{strings.Repeat("y", 100<<10)}},
	}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one byte", iotest.OneByteReader},
		{"half", iotest.HalfReader},
		{"data+EOF", iotest.DataErrReader},
		{"chunks of 3", func(r io.Reader) io.Reader { return &chunkReader{r: r, n: 3} }},
	}
	for _, tc := range tests {
		for _, rw := range readers {
			t.Run(tc.name+"/"+rw.name, func(t *testing.T) {
				res, junk, skipped := readAll(t, rw.wrap(strings.NewReader(tc.in)), tc.opts)
				if !equal(res, tc.want) {
					t.Errorf("results = %q, want %q", res, tc.want)
				}
				if !equal(junk, tc.junk) {
					t.Errorf("junk = %q, want %q", junk, tc.junk)
				}
				if skipped != tc.skipped {
					t.Errorf("Skipped() = %d, want %d", skipped, tc.skipped)
				}
			})
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// chunkReader returns at most n bytes per Read, like a slow socket.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// TestReaderBounded checks the memory bound: an endless frame never makes
// the Reader ask for more than MaxFrameSize plus a little at once.
func TestReaderBounded(t *testing.T) {
	const max = 64 << 10
	src := &endless{b: 'x', limit: 10 * max}
	r := mllp.NewReader(src, mllp.ReaderOptions{MaxFrameSize: max})
	// The frame never ends: it is discarded to the end of the stream.
	if _, err := r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Next = %v, want io.ErrUnexpectedEOF", err)
	}
	if src.maxAsk > max+2 {
		t.Errorf("largest read buffer %d bytes, limit %d", src.maxAsk, max)
	}
}

// endless is a frame start followed by limit bytes of b.
type endless struct {
	b        byte
	n, limit int
	maxAsk   int
	started  bool
}

func (e *endless) Read(p []byte) (int, error) {
	e.maxAsk = max(e.maxAsk, len(p))
	if !e.started {
		e.started = true
		p[0] = mllp.StartBlock
		return 1, nil
	}
	if e.n >= e.limit {
		return 0, io.EOF
	}
	n := min(len(p), e.limit-e.n)
	for i := range p[:n] {
		p[i] = e.b
	}
	e.n += n
	return n, nil
}

// TestReaderResumesAfterTimeout: a read timeout in the middle of a frame
// does not lose it; the next Next carries on.
func TestReaderResumesAfterTimeout(t *testing.T) {
	src := &stutter{parts: []string{"ju", "nk\x0bMSH|", "", "part2\x1c", "", "\x0d"}}
	r := mllp.NewReader(src, mllp.ReaderOptions{})
	var got []string
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			got = append(got, "timeout")
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(p))
	}
	want := []string{"timeout", "timeout", "MSH|part2"}
	if !equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if r.Skipped() != 4 {
		t.Errorf("Skipped() = %d, want 4", r.Skipped())
	}
}

// stutter returns its parts one per Read; an empty part is a timeout.
type stutter struct{ parts []string }

func (s *stutter) Read(p []byte) (int, error) {
	if len(s.parts) == 0 {
		return 0, io.EOF
	}
	part := s.parts[0]
	s.parts = s.parts[1:]
	if part == "" {
		return 0, os.ErrDeadlineExceeded
	}
	return copy(p, part), nil
}

func TestReaderOffsets(t *testing.T) {
	in := "ab\x0bA\x1c\x0d\x00\x0bB\x1c\x0d"
	var offsets []int64
	var r *mllp.Reader
	r = mllp.NewReader(strings.NewReader(in), mllp.ReaderOptions{
		OnJunk: func(n int, _ []byte) { offsets = append(offsets, r.Offset()-int64(n)) },
	})
	for {
		if _, err := r.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if want := []int64{0, 6}; len(offsets) != 2 || offsets[0] != want[0] || offsets[1] != want[1] {
		t.Errorf("junk offsets = %v, want %v", offsets, want)
	}
	if r.Offset() != int64(len(in)) {
		t.Errorf("Offset() = %d, want %d", r.Offset(), len(in))
	}
}

// TestReaderAllocs: once warm, reading frames allocates nothing.
func TestReaderAllocs(t *testing.T) {
	payload := bytes.Repeat([]byte("MSH|^~\\&|EPIC|"), 70) // ~1 KiB
	src := &loop{data: mllp.Encode(nil, payload)}
	r := mllp.NewReader(src, mllp.ReaderOptions{})
	for range 100 {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per frame, want 0", allocs)
	}
}

// loop repeats data forever, filling each Read as a busy socket would.
type loop struct {
	data []byte
	off  int
}

func (l *loop) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.data[l.off:])
		n += c
		l.off = (l.off + c) % len(l.data)
	}
	return n, nil
}

func BenchmarkReader(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			payload := bytes.Repeat([]byte("PID|1||12345^^^EPIC^MRN||DOE^JANE\r"), size/34+1)[:size]
			var stream []byte
			for range 8 {
				stream = mllp.Encode(stream, payload)
			}
			r := mllp.NewReader(&loop{data: stream}, mllp.ReaderOptions{})
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				p, err := r.Next()
				if err != nil || len(p) != size {
					b.Fatalf("Next = %d bytes, %v", len(p), err)
				}
			}
		})
	}
}
