package mllp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ReaderOptions tune a Reader. The zero value is a strict reader with the
// default size limit.
type ReaderOptions struct {
	// MaxFrameSize bounds a payload in bytes; 0 means DefaultMaxFrameSize.
	// The Reader never buffers more than MaxFrameSize plus a few bytes (or
	// 4 KiB, whichever is larger).
	MaxFrameSize int
	// AllowMissingCR accepts an end block that is not followed by a carriage
	// return (followed by a start block, other bytes or the end of the
	// stream). A frame whose end block is the last byte received so far is
	// then returned at once rather than waiting for a CR that may never come;
	// a CR arriving next is silently dropped.
	AllowMissingCR bool
	// KeepHead is how many first payload bytes of a frame over MaxFrameSize
	// are kept and returned in its FramingError (Head), so that the frame
	// can be answered and recorded; 0 keeps none.
	KeepHead int
	// OnJunk, when set, is told of every run of bytes found between frames
	// (noise, NUL padding, stray line feeds): n is the run's length and first
	// its first bytes (at most 16, valid only during the call). Runs are
	// reported when a start block ends them or when Next returns an error.
	OnJunk func(n int, first []byte)
}

const (
	minBufSize     = 4 << 10
	initialBufSize = 16 << 10
	junkHeadSize   = 16
	maxEmptyReads  = 100
)

type readState uint8

const (
	stateBetween readState = iota // looking for a start block
	stateFrame                    // after a start block, looking for its end block
	stateDiscard                  // inside a frame too large to keep
)

// A Reader reads MLLP frames from a byte stream.
//
// Next returns each frame's payload; errors of type *FramingError mean one
// frame was dropped and reading can go on. The Reader reuses one buffer, so
// reading allocates nothing once the buffer has grown to the largest frame.
// A Reader is not safe for concurrent use.
type Reader struct {
	rd      io.Reader
	max     int
	limit   int // buffer size never exceeded
	allowCR bool
	onJunk  func(int, []byte)
	keep    int
	head    []byte // first bytes of the oversize frame being discarded

	buf  []byte
	r, w int   // buf[r:w] is input not consumed yet
	off  int64 // stream offset of buf[r]
	err  error // read error held back because its Read also returned data

	state    readState
	scanned  int   // payload bytes from buf[r] known to hold no framing byte
	frameOff int64 // stream offset of the current frame's start block
	dropped  int   // bytes discarded of an oversize frame
	skipCR   bool  // drop one CR at the head of the input

	skipped  int64
	junkN    int
	junkLen  int
	junkHead [junkHeadSize]byte
}

// NewReader returns a Reader of frames from rd.
func NewReader(rd io.Reader, o ReaderOptions) *Reader {
	size := o.MaxFrameSize
	if size <= 0 {
		size = DefaultMaxFrameSize
	}
	return &Reader{
		rd:      rd,
		max:     size,
		limit:   max(size+2, minBufSize), // payload, end block, CR
		allowCR: o.AllowMissingCR,
		onJunk:  o.OnJunk,
		keep:    max(o.KeepHead, 0),
	}
}

// Next returns the next frame's payload, valid until the following call.
//
// It returns io.EOF when the stream ends between frames, and a *FramingError
// when a frame had to be dropped (ErrFrameTooLarge once the oversize frame
// has been read to its end, ErrStartInFrame, ErrMissingCR, or
// io.ErrUnexpectedEOF when the stream ends inside a frame);
// Next may be called again after a *FramingError. Other errors come from the
// underlying reader, wrapped; after a timeout Next may be called again and
// resumes where it stopped.
func (r *Reader) Next() ([]byte, error) {
	for {
		switch r.state {
		case stateBetween:
			if r.skipCR && r.r < r.w {
				if r.buf[r.r] == CarriageReturn {
					r.consume(1)
				}
				r.skipCR = false
			}
			data := r.buf[r.r:r.w]
			i := bytes.IndexByte(data, StartBlock)
			if i < 0 {
				r.junk(data)
				r.consume(len(data))
				if err := r.fill(); err != nil {
					r.flushJunk()
					return nil, r.readErr(err)
				}
				continue
			}
			r.junk(data[:i])
			r.consume(i)
			r.flushJunk()
			r.frameOff = r.off
			r.consume(1)
			r.state, r.scanned = stateFrame, 0

		case stateFrame:
			data := r.buf[r.r:r.w]
			// Looking past max+1 bytes is pointless: the frame is too large.
			lim := min(len(data), r.max+1)
			i := indexFraming(data[r.scanned:lim])
			if i < 0 {
				if lim > r.max {
					// Drop what was scanned (keeping its head); discarding
					// finds where the frame ends, and only then is it
					// reported, so that the sender can be answered.
					r.head = append(r.head[:0], data[:min(lim, r.keep)]...)
					r.dropped = lim
					r.consume(lim)
					r.state = stateDiscard
					continue
				}
				r.scanned = len(data)
				if err := r.fill(); err != nil {
					return nil, r.frameReadErr(len(data), err)
				}
				continue
			}
			pos := r.scanned + i
			if data[pos] == StartBlock {
				// The sender gave up on this frame and started another: drop
				// the partial one; the start block opens the next frame.
				err := r.frameErr(pos, ErrStartInFrame)
				r.consume(pos)
				r.state = stateBetween
				return nil, err
			}
			// data[pos] is the end block.
			switch {
			case pos+1 < len(data) && data[pos+1] == CarriageReturn:
				payload := data[:pos:pos]
				r.consume(pos + 2)
				r.state = stateBetween
				return payload, nil
			case r.allowCR:
				// Do not wait for a CR that may never come: the sender may be
				// waiting for our reply.
				payload := data[:pos:pos]
				r.consume(pos + 1)
				r.skipCR = pos+1 == len(data)
				r.state = stateBetween
				return payload, nil
			case pos+1 < len(data):
				err := r.frameErr(pos, ErrMissingCR)
				r.consume(pos + 1)
				r.state = stateBetween
				return nil, err
			}
			// Strict, and the end block is the last byte so far: wait for CR.
			r.scanned = pos
			if err := r.fill(); err != nil {
				if err == io.EOF {
					err := r.frameErr(pos, ErrMissingCR)
					r.consume(pos + 1)
					r.state = stateBetween
					return nil, err
				}
				return nil, r.readErr(err)
			}

		case stateDiscard:
			data := r.buf[r.r:r.w]
			i := indexFraming(data)
			if i < 0 {
				r.dropped += len(data)
				r.consume(len(data))
				if err := r.fill(); err != nil {
					return nil, r.frameReadErr(r.dropped, err)
				}
				continue
			}
			r.dropped += i
			err := r.frameErr(r.dropped, ErrFrameTooLarge)
			err.Head = r.head
			if data[i] == StartBlock {
				r.consume(i)
			} else {
				r.consume(i + 1)
				r.skipCR = true
			}
			r.state = stateBetween
			return nil, err
		}
	}
}

// Skipped returns the number of bytes found between frames so far.
func (r *Reader) Skipped() int64 { return r.skipped }

// Offset returns the number of stream bytes consumed so far. Inside OnJunk it
// is the offset just after the reported run.
func (r *Reader) Offset() int64 { return r.off }

// inFrame reports whether a frame has started and not ended: the server
// applies its read timeout instead of its idle timeout then.
func (r *Reader) inFrame() bool { return r.state != stateBetween }

// discarding reports whether the frame being read is over the limit, and
// its head and size so far.
func (r *Reader) discarding() (head []byte, size int, ok bool) {
	return r.head, r.dropped, r.state == stateDiscard
}

// frameBytes returns how many payload bytes of the unfinished frame have
// arrived (for logs).
func (r *Reader) frameBytes() int {
	switch r.state {
	case stateFrame:
		return r.w - r.r
	case stateDiscard:
		return r.dropped
	}
	return 0
}

// reset makes r read a new stream, keeping its buffer.
func (r *Reader) reset(rd io.Reader) {
	buf, skipped := r.buf[:cap(r.buf)], r.skipped
	*r = Reader{rd: rd, max: r.max, limit: r.limit, allowCR: r.allowCR, onJunk: r.onJunk, keep: r.keep, buf: buf, skipped: skipped}
}

func (r *Reader) consume(n int) {
	r.r += n
	r.off += int64(n)
}

// fill reads more input into the buffer, compacting or growing it first.
func (r *Reader) fill() error {
	if r.err != nil {
		err := r.err
		r.err = nil
		return err
	}
	if r.r > 0 {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	if r.w == len(r.buf) {
		if len(r.buf) >= r.limit {
			// Next declares a frame too large before this can happen.
			return errors.New("mllp: internal error: frame buffer full")
		}
		nb := make([]byte, min(max(2*len(r.buf), initialBufSize), r.limit))
		copy(nb, r.buf[:r.w])
		r.buf = nb
	}
	for range maxEmptyReads {
		n, err := r.rd.Read(r.buf[r.w:])
		if n < 0 || n > len(r.buf)-r.w {
			return errors.New("mllp: underlying reader returned an invalid count")
		}
		r.w += n
		if n > 0 {
			r.err = err
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

func (r *Reader) junk(b []byte) {
	if len(b) == 0 {
		return
	}
	r.skipped += int64(len(b))
	r.junkN += len(b)
	r.junkLen += copy(r.junkHead[r.junkLen:], b)
}

func (r *Reader) flushJunk() {
	if r.junkN == 0 {
		return
	}
	if r.onJunk != nil {
		r.onJunk(r.junkN, r.junkHead[:r.junkLen])
	}
	r.junkN, r.junkLen = 0, 0
}

func (r *Reader) frameErr(size int, err error) *FramingError {
	return &FramingError{Offset: r.frameOff, Size: size, Err: err}
}

// frameReadErr turns a read error inside a frame into what Next returns: EOF
// drops the frame, anything else leaves it to be resumed.
func (r *Reader) frameReadErr(size int, err error) error {
	if err != io.EOF {
		return r.readErr(err)
	}
	fe := r.frameErr(size, io.ErrUnexpectedEOF)
	r.consume(r.w - r.r)
	r.state = stateBetween
	return fe
}

func (r *Reader) readErr(err error) error {
	if err == io.EOF {
		return io.EOF // callers compare with ==
	}
	return fmt.Errorf("mllp: read at offset %d: %w", r.off+int64(r.w-r.r), err)
}

// indexFraming returns the index of the first start or end block in b, or -1.
// Two IndexByte passes beat one byte-by-byte loop: both are vectorised.
func indexFraming(b []byte) int {
	end := bytes.IndexByte(b, EndBlock)
	if end < 0 {
		end = len(b)
	}
	if i := bytes.IndexByte(b[:end], StartBlock); i >= 0 {
		return i
	}
	if end == len(b) {
		return -1
	}
	return end
}
