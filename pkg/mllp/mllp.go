// Package mllp is Sinew's HL7 v2 transport: framing for the Minimal Lower
// Layer Protocol that carries HL7 v2 over TCP, a server that hands each
// received message to a Handler and writes its acknowledgement, and a client
// that sends a message and waits for the matching acknowledgement.
//
// A frame is a start block (0x0B), the payload, an end block (0x1C) and a
// carriage return (0x0D). Senders in the field deviate from this in many
// ways, so the Reader is tolerant (junk between frames, a missing final CR, a
// sender that restarts a message) yet bounded (MaxFrameSize), and it never
// returns bytes that were not framed as a payload.
//
// Ordering: the server handles the messages of one connection strictly one
// after the other (read, handle, reply, read the next), so a sender that waits
// for each ACK, or pipelines on one connection, keeps its order end to end.
//
// No protected health information is logged by this package: only counts,
// offsets, connection ids and at most the first 16 bytes of junk found
// outside frames, in hex.
package mllp

import (
	"bytes"
	"errors"
	"fmt"
)

// Framing bytes.
const (
	StartBlock     byte = 0x0B // VT, starts a frame
	EndBlock       byte = 0x1C // FS, ends a frame's payload
	CarriageReturn byte = 0x0D // CR, follows the end block
)

// DefaultMaxFrameSize is the payload limit when none is configured. HL7 v2
// messages are usually a few KiB; 16 MiB leaves room for embedded documents
// (ORU with base64 PDF) while bounding what one connection can make us hold.
const DefaultMaxFrameSize = 16 << 20

// Errors a caller may branch on. Framing problems come wrapped in a
// *FramingError carrying the stream offset.
var (
	// ErrFrameTooLarge: a payload longer than MaxFrameSize. The frame is
	// read to its end and discarded (its first bytes kept when
	// ReaderOptions.KeepHead is set), then reported; the Reader goes on with
	// the next frame.
	ErrFrameTooLarge = errors.New("mllp: frame too large")
	// ErrStartInFrame: a start block arrived before the end block of the frame
	// being read (a sender that restarted a message). The partial frame is
	// dropped and the new one is read.
	ErrStartInFrame = errors.New("mllp: start block inside a frame")
	// ErrMissingCR: an end block not followed by a carriage return while
	// ReaderOptions.AllowMissingCR is false. The frame is dropped.
	ErrMissingCR = errors.New("mllp: end block not followed by carriage return")
	// ErrInvalidPayload: a payload to be framed contains a start or end block
	// byte, which HL7 v2 forbids and which the receiver would split on.
	ErrInvalidPayload = errors.New("mllp: payload contains a framing byte (0x0B or 0x1C)")
	// ErrAckTimeout: no matching reply arrived within ClientConfig.AckTimeout.
	ErrAckTimeout = errors.New("mllp: timed out waiting for acknowledgement")
	// ErrClientClosed: Send on a closed Client.
	ErrClientClosed = errors.New("mllp: client closed")
)

// A FramingError is a frame the Reader had to drop. The Reader has already
// resynchronised: Next may be called again. Err is ErrFrameTooLarge,
// ErrStartInFrame, ErrMissingCR or io.ErrUnexpectedEOF (the stream ended
// inside a frame).
type FramingError struct {
	Offset int64 // stream offset of the frame's start block
	Size   int   // payload bytes received when the frame was dropped
	Err    error
	// Head holds the first payload bytes of a frame over the limit
	// (ReaderOptions.KeepHead of them), valid until the next Next.
	Head []byte
}

func (e *FramingError) Error() string {
	return fmt.Sprintf("%v (frame at offset %d, %d bytes received)", e.Err, e.Offset, e.Size)
}

func (e *FramingError) Unwrap() error { return e.Err }

// Encode appends msg, framed, to dst and returns the extended slice. msg must
// not contain StartBlock or EndBlock (see ValidPayload); Encode does not check
// so that callers who already know it pay nothing.
func Encode(dst, msg []byte) []byte {
	dst = append(dst, StartBlock)
	dst = append(dst, msg...)
	return append(dst, EndBlock, CarriageReturn)
}

// ValidPayload reports whether msg can be framed: it has no StartBlock or
// EndBlock byte.
func ValidPayload(msg []byte) bool {
	return bytes.IndexByte(msg, StartBlock) < 0 && bytes.IndexByte(msg, EndBlock) < 0
}
