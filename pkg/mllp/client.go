package mllp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Client defaults.
const (
	DefaultDialTimeout = 5 * time.Second
	DefaultAckTimeout  = 30 * time.Second
	DefaultRetries     = 2
	DefaultRetryDelay  = 100 * time.Millisecond
	maxRetryDelay      = 5 * time.Second
)

// ClientConfig configures a Client. Durations: 0 means the default, a
// negative value means no limit (no delay for RetryDelay).
type ClientConfig struct {
	// Addr is the receiver's host:port.
	Addr string
	// TLS, when set, makes the connection TLS (ServerName defaults to the
	// host of Addr); add Certificates for mutual TLS.
	TLS *tls.Config
	// LocalAddr, when set, is the local IP (or host:port) to connect from,
	// for multi-homed senders.
	LocalAddr string
	// DialTimeout bounds connecting, TLS handshake included.
	DialTimeout time.Duration
	// AckTimeout bounds the wait for the reply to one message, from the
	// moment it is written.
	AckTimeout time.Duration
	// Retries is how many times a message is sent again, on a new
	// connection, after a connection failure or an ack timeout
	// (DefaultRetries if 0, none if negative).
	Retries int
	// RetryDelay is the pause before the first resend, doubled for each
	// further one up to 5s.
	RetryDelay time.Duration
	// Match reports whether reply is the acknowledgement of sent (for HL7:
	// MSA-2 equals MSH-10). Frames that do not match, such as a late ACK of
	// an earlier message, are skipped and counted (Unmatched). nil accepts
	// the next frame.
	Match func(sent, reply []byte) bool
	// MaxFrameSize bounds a reply (DefaultMaxFrameSize if 0).
	MaxFrameSize int
	// AllowMissingCR accepts replies whose end block has no CR after it.
	AllowMissingCR bool
}

// A Client sends messages to one MLLP receiver over one connection and waits
// for each acknowledgement. It is safe for concurrent use: sends are
// serialised, as MLLP has no way to tell which reply answers which message
// other than order and Match.
type Client struct {
	cfg       ClientConfig
	sem       chan struct{} // held by the Send using the connection
	rd        *Reader       // owned by the holder of sem
	wbuf      []byte        // likewise
	unmatched atomic.Int64

	mu     sync.Mutex // guards nc and closed, which Close changes
	nc     net.Conn
	closed bool
}

// Dial connects to cfg.Addr and returns a Client.
func Dial(ctx context.Context, cfg ClientConfig) (*Client, error) {
	if cfg.Addr == "" {
		return nil, errors.New("mllp: dial: no address")
	}
	if cfg.MaxFrameSize < 0 {
		return nil, fmt.Errorf("mllp: negative MaxFrameSize %d", cfg.MaxFrameSize)
	}
	cfg.DialTimeout = orDefault(cfg.DialTimeout, DefaultDialTimeout)
	cfg.AckTimeout = orDefault(cfg.AckTimeout, DefaultAckTimeout)
	cfg.RetryDelay = orDefault(cfg.RetryDelay, DefaultRetryDelay)
	switch {
	case cfg.Retries == 0:
		cfg.Retries = DefaultRetries
	case cfg.Retries < 0:
		cfg.Retries = 0
	}
	c := &Client{cfg: cfg, sem: make(chan struct{}, 1)}
	nc, err := c.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("mllp: dial %s: %w", cfg.Addr, err)
	}
	c.nc = nc
	c.rd = NewReader(nc, ReaderOptions{MaxFrameSize: cfg.MaxFrameSize, AllowMissingCR: cfg.AllowMissingCR})
	return c, nil
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{Timeout: c.cfg.DialTimeout}
	if la := c.cfg.LocalAddr; la != "" {
		if _, _, err := net.SplitHostPort(la); err != nil {
			la = net.JoinHostPort(la, "0")
		}
		addr, err := net.ResolveTCPAddr("tcp", la)
		if err != nil {
			return nil, fmt.Errorf("mllp: local address: %w", err)
		}
		d.LocalAddr = addr
	}
	var nc net.Conn
	var err error
	if c.cfg.TLS != nil {
		nc, err = (&tls.Dialer{NetDialer: d, Config: c.cfg.TLS}).DialContext(ctx, "tcp", c.cfg.Addr)
	} else {
		nc, err = d.DialContext(ctx, "tcp", c.cfg.Addr)
	}
	if err != nil {
		return nil, err // a *net.OpError names the address; callers add it otherwise
	}
	return nc, nil
}

// Send frames msg, writes it and returns the payload of the reply that
// Match accepts. On a broken connection or an ack timeout it reconnects and
// sends the same bytes again, up to Retries times; the receiver must
// therefore treat a resend as a duplicate (HL7: same MSH-10). ctx bounds the
// whole exchange, retries included. The reply is the caller's to keep.
func (c *Client) Send(ctx context.Context, msg []byte) ([]byte, error) {
	if !ValidPayload(msg) {
		return nil, ErrInvalidPayload
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("mllp: send to %s: %w", c.cfg.Addr, ctx.Err())
	}
	defer func() { <-c.sem }()
	c.wbuf = Encode(c.wbuf[:0], msg)

	var err error
	n := 0 // attempts made
	for n <= c.cfg.Retries {
		if n > 0 && !c.pause(ctx, n) {
			break
		}
		n++
		var reply []byte
		if reply, err = c.attempt(ctx, msg); err == nil {
			return reply, nil
		}
		if ctx.Err() != nil || c.isClosed() {
			break
		}
	}
	switch {
	case c.isClosed():
		err = ErrClientClosed
	case ctx.Err() != nil:
		err = ctx.Err()
	}
	return nil, fmt.Errorf("mllp: send to %s, attempt %d of %d: %w", c.cfg.Addr, n, c.cfg.Retries+1, err)
}

// pause waits before resend n; false if ctx ended first.
func (c *Client) pause(ctx context.Context, n int) bool {
	if c.cfg.RetryDelay <= 0 {
		return ctx.Err() == nil
	}
	d := c.cfg.RetryDelay << min(n-1, 16)
	t := time.NewTimer(min(d, maxRetryDelay))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// attempt sends the framed message once on the current connection (dialled
// if there is none) and waits for its reply. On any error the connection is
// dropped: a late reply on it must not answer the next message.
func (c *Client) attempt(ctx context.Context, msg []byte) ([]byte, error) {
	nc, err := c.conn(ctx)
	if err != nil {
		return nil, err
	}
	var dl time.Time
	if c.cfg.AckTimeout > 0 {
		dl = time.Now().Add(c.cfg.AckTimeout)
	}
	nc.SetDeadline(dl)
	// Set after our deadline, so that the context's always wins.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(aLongTimeAgo) })
	reply, err := c.exchange(nc, msg)
	if !stop() {
		// ctx ended and poisoned the deadlines: the connection is unusable
		// even if the reply made it.
		c.drop(nc)
		if err != nil {
			return nil, ctx.Err()
		}
		return reply, nil
	}
	if err != nil {
		c.drop(nc)
	}
	return reply, err
}

func (c *Client) exchange(nc net.Conn, msg []byte) ([]byte, error) {
	if _, err := nc.Write(c.wbuf); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	for {
		reply, err := c.rd.Next()
		var fe *FramingError
		switch {
		case err == nil:
		case errors.As(err, &fe) && !errors.Is(err, io.ErrUnexpectedEOF):
			continue // a garbled frame is not our answer; ours may follow
		case timeout(err):
			return nil, ErrAckTimeout
		case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
			return nil, errors.New("connection closed by the receiver before the reply")
		default:
			return nil, err
		}
		if c.cfg.Match == nil || c.cfg.Match(msg, reply) {
			return bytes.Clone(reply), nil
		}
		c.unmatched.Add(1)
	}
}

// conn returns the connection, dialling one if the last was dropped.
func (c *Client) conn(ctx context.Context) (net.Conn, error) {
	c.mu.Lock()
	nc, closed := c.nc, c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClientClosed
	}
	if nc != nil {
		return nc, nil
	}
	nc, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		nc.Close()
		return nil, ErrClientClosed
	}
	c.nc = nc
	c.rd.reset(nc)
	return nc, nil
}

func (c *Client) drop(nc net.Conn) {
	c.mu.Lock()
	if c.nc == nc {
		c.nc = nil
	}
	c.mu.Unlock()
	nc.Close()
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Unmatched returns how many received frames Match has rejected.
func (c *Client) Unmatched() int64 { return c.unmatched.Load() }

// Close closes the connection; a Send in progress fails with ErrClientClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	nc := c.nc
	c.nc, c.closed = nil, true
	c.mu.Unlock()
	if nc == nil {
		return nil
	}
	if err := nc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("mllp: close connection to %s: %w", c.cfg.Addr, err)
	}
	return nil
}
