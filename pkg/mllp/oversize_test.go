package mllp_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/sinewhq/sinew/pkg/mllp"
)

// TestReaderKeepsHeadOfOversizeFrame: an oversize frame is reported once it
// has ended, with its size and first bytes, and reading goes on.
func TestReaderKeepsHeadOfOversizeFrame(t *testing.T) {
	payload := "MSH|^~\\&|" + strings.Repeat("x", 5000)
	in := string(mllp.Encode(nil, []byte(payload))) + string(mllp.Encode(nil, []byte("ok")))
	for _, keep := range []int{0, 16, 100_000} {
		r := mllp.NewReader(iotest.HalfReader(strings.NewReader(in)), mllp.ReaderOptions{MaxFrameSize: 1024, KeepHead: keep})
		_, err := r.Next()
		var fe *mllp.FramingError
		if !errors.As(err, &fe) || !errors.Is(err, mllp.ErrFrameTooLarge) {
			t.Fatalf("keep %d: Next = %v, want ErrFrameTooLarge", keep, err)
		}
		if fe.Size != len(payload) {
			t.Errorf("keep %d: Size %d, want %d", keep, fe.Size, len(payload))
		}
		if want := payload[:min(keep, 1025)]; string(fe.Head) != want {
			t.Errorf("keep %d: Head %d bytes, want %d", keep, len(fe.Head), len(want))
		}
		if p, err := r.Next(); err != nil || string(p) != "ok" {
			t.Errorf("keep %d: next frame %q, %v", keep, p, err)
		}
	}
}

// oversizeHandler answers messages with ack and oversize frames with
// "TOO-LARGE <size> <head>".
type oversizeHandler struct{ calls atomic.Int32 }

func (h *oversizeHandler) ServeMLLP(_ context.Context, _ *mllp.Conn, m []byte) []byte { return ack(m) }

func (h *oversizeHandler) ServeMLLPOversize(_ context.Context, _ *mllp.Conn, head []byte, size int) []byte {
	h.calls.Add(1)
	return []byte("TOO-LARGE " + strconv.Itoa(size) + " " + string(head))
}

// TestOversizeFrameIsAnswered: with an OversizeHandler the server reads an
// oversize frame to its end and answers it, then serves the next frame;
// one that never ends is answered when the read timeout cuts it.
func TestOversizeFrameIsAnswered(t *testing.T) {
	h := &oversizeHandler{}
	ts := startServer(t, mllp.ServerConfig{MaxFrameSize: 1024, KeepHead: 8, ReadTimeout: 500 * time.Millisecond}, h)
	rc := dialRaw(t, ts.addr)
	big := append([]byte("MSH|^~\\&"), bytes.Repeat([]byte("X"), 100_000)...)
	rc.write(string(mllp.Encode(nil, big)))
	if got, err := rc.next(5 * time.Second); err != nil || got != "TOO-LARGE "+strconv.Itoa(len(big))+" MSH|^~\\&" {
		t.Fatalf("reply = %q, %v", got, err)
	}
	rc.write(string(mllp.Encode(nil, []byte("MSH|next"))))
	if got, err := rc.next(5 * time.Second); err != nil || got != "ACK|MSH|next" {
		t.Fatalf("reply = %q, %v", got, err)
	}
	// A frame over the limit that never ends: answered, then closed.
	rc.write("\x0bMSH|^~\\&" + strings.Repeat("Y", 2000))
	if got, err := rc.next(5 * time.Second); err != nil || !strings.HasPrefix(got, "TOO-LARGE ") {
		t.Fatalf("reply to an unfinished oversize frame = %q, %v", got, err)
	}
	if h.calls.Load() != 2 {
		t.Errorf("oversize handler called %d times", h.calls.Load())
	}
}
