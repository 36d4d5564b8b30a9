package mllp_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/sinewhq/sinew/pkg/mllp"
)

const fuzzMax = 64 // small, so that the too-large path is exercised

// FuzzReader checks, for arbitrary input split into reads of arbitrary size:
// Next never panics and always ends; a payload never contains a framing byte
// nor exceeds the limit; the results do not depend on how the input was
// split; and any frameable payloads round-trip through Encode.
func FuzzReader(f *testing.F) {
	f.Add([]byte("\x0bMSH|^~\\&|EPIC\x1c\x0d"), uint8(0), false)
	f.Add([]byte("junk\x00\x00\x0bA\x1c\x0d\x0bB\x1c"), uint8(1), true)
	f.Add([]byte("\x0bPART\x0bB\x1c\x0d\x1c\x0d"), uint8(3), false)
	f.Add([]byte("\x0b"+string(bytes.Repeat([]byte("x"), 100))+"\x1c\x0d\x0bok\x1c\x0d"), uint8(7), false)
	f.Add([]byte("\x0bA\x1c\n\x0bB"), uint8(2), true)
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, allowCR bool) {
		o := mllp.ReaderOptions{MaxFrameSize: fuzzMax, AllowMissingCR: allowCR, KeepHead: int(chunk) % (fuzzMax + 8)}
		whole := fuzzRead(t, bytes.NewReader(data), o, len(data))
		split := fuzzRead(t, &chunkReader{r: bytes.NewReader(data), n: int(chunk) + 1}, o, len(data))
		if !equal(whole, split) {
			t.Fatalf("results depend on read sizes:\nwhole %q\nsplit %q", whole, split)
		}

		// Round trip: the input cut at 0xFF into payloads, framing bytes removed.
		clean := make([]byte, 0, len(data))
		for _, b := range data {
			if b != mllp.StartBlock && b != mllp.EndBlock {
				clean = append(clean, b)
			}
		}
		payloads := bytes.Split(clean, []byte{0xff})
		var stream []byte
		for _, p := range payloads {
			stream = mllp.Encode(stream, p)
		}
		for _, rd := range []io.Reader{bytes.NewReader(stream), iotest.OneByteReader(bytes.NewReader(stream))} {
			r := mllp.NewReader(rd, mllp.ReaderOptions{AllowMissingCR: allowCR})
			for i, want := range payloads {
				got, err := r.Next()
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("frame %d: Next = %q, %v; want %q", i, got, err, want)
				}
			}
			if _, err := r.Next(); err != io.EOF {
				t.Fatalf("after the last frame: %v, want io.EOF", err)
			}
			if r.Skipped() != 0 {
				t.Fatalf("Skipped() = %d on a clean stream", r.Skipped())
			}
		}
	})
}

// fuzzRead reads until io.EOF and renders each result; a payload as itself,
// a dropped frame as its cause and offset (its Size depends on read sizes).
func fuzzRead(t *testing.T, rd io.Reader, o mllp.ReaderOptions, n int) []string {
	var out []string
	r := mllp.NewReader(rd, o)
	// Every result consumes at least one byte: more calls than bytes is a loop.
	for range n + 2 {
		p, err := r.Next()
		if err == io.EOF {
			return out
		}
		var fe *mllp.FramingError
		switch {
		case err == nil:
			if !mllp.ValidPayload(p) {
				t.Fatalf("payload %q contains a framing byte", p)
			}
			if len(p) > fuzzMax {
				t.Fatalf("payload of %d bytes, limit %d", len(p), fuzzMax)
			}
			out = append(out, "="+string(p))
		case errors.As(err, &fe):
			if fe.Offset < 0 || fe.Offset >= int64(n) {
				t.Fatalf("FramingError offset %d outside the input (%d bytes)", fe.Offset, n)
			}
			if len(fe.Head) > o.KeepHead || (len(fe.Head) > 0 && !errors.Is(fe.Err, mllp.ErrFrameTooLarge)) {
				t.Fatalf("FramingError %v with a head of %d bytes, KeepHead %d", fe.Err, len(fe.Head), o.KeepHead)
			}
			if errors.Is(fe.Err, mllp.ErrFrameTooLarge) && fe.Size <= fuzzMax {
				t.Fatalf("frame of %d bytes reported too large (limit %d)", fe.Size, fuzzMax)
			}
			out = append(out, fmt.Sprintf("!%v@%d %q", fe.Err, fe.Offset, fe.Head))
		default:
			t.Fatalf("Next: %v", err)
		}
	}
	t.Fatalf("Next did not reach io.EOF after %d calls on %d bytes", n+2, n)
	return nil
}
