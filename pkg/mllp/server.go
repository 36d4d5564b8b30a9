package mllp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Server defaults.
const (
	DefaultAddr            = ":2575" // the port IANA registered for HL7
	DefaultReadTimeout     = 30 * time.Second
	DefaultIdleTimeout     = time.Minute // idle (or junk only) between frames
	DefaultMaxConnsPerPeer = 64          // a large site's Epic sends on about 32 interfaces from one host
	DefaultKeepHead        = 64 << 10    // bytes of an oversize frame given to an OversizeHandler
	DefaultWriteTimeout    = 10 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
	DefaultMaxConns        = 256
)

// A Handler answers the messages a Server receives.
type Handler interface {
	// ServeMLLP handles msg, received on c, and returns the reply payload
	// (normally an ACK), or nil to send nothing. msg is only valid until
	// ServeMLLP returns. The next message of c is read only after the reply
	// is written. ctx is not cancelled when shutdown begins, only when the
	// server gives up waiting (ServerConfig.ShutdownTimeout), so that the
	// message in hand can still be committed and answered.
	ServeMLLP(ctx context.Context, c *Conn, msg []byte) []byte
}

// An OversizeHandler is a Handler that also answers frames over
// MaxFrameSize. The server reads such a frame to its end marker, discarding
// all but its first bytes (head: ServerConfig.KeepHead of them, valid only
// during the call), and then calls ServeMLLPOversize with the payload's
// size; the reply is written like any other. A frame cut by the read
// timeout before its end is answered too, then the connection is closed.
// Without an OversizeHandler such frames get no reply.
type OversizeHandler interface {
	Handler
	ServeMLLPOversize(ctx context.Context, c *Conn, head []byte, size int) []byte
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, c *Conn, msg []byte) []byte

// ServeMLLP calls f(ctx, c, msg).
func (f HandlerFunc) ServeMLLP(ctx context.Context, c *Conn, msg []byte) []byte {
	return f(ctx, c, msg)
}

// ServerConfig configures a Server. Durations: 0 means the default, a
// negative value means no limit.
type ServerConfig struct {
	// Addr is the host:port ListenAndServe listens on (DefaultAddr if empty).
	Addr string
	// TLS, when set, makes every connection TLS; set ClientAuth to
	// tls.RequireAndVerifyClientCert (and ClientCAs) for mutual TLS.
	TLS *tls.Config
	// MaxFrameSize bounds a message (DefaultMaxFrameSize if 0). A longer
	// frame is discarded, answered by an OversizeHandler (or not at all),
	// and the connection goes on.
	MaxFrameSize int
	// KeepHead is how many first bytes of an oversize frame are handed to
	// an OversizeHandler (DefaultKeepHead if 0).
	KeepHead int
	// AllowMissingCR accepts frames whose end block has no CR after it.
	AllowMissingCR bool
	// ReadTimeout bounds receiving one frame from its first byte on; also
	// the TLS handshake.
	ReadTimeout time.Duration
	// IdleTimeout closes a connection that sends no frame for that long.
	IdleTimeout time.Duration
	// WriteTimeout bounds writing one reply.
	WriteTimeout time.Duration
	// ShutdownTimeout bounds graceful shutdown; then connections are closed
	// and handler contexts cancelled.
	ShutdownTimeout time.Duration
	// MaxConns limits open connections (DefaultMaxConns if 0, negative for
	// no limit); one more is closed as soon as it is accepted, unless room
	// can be made for it (see KnownPeers).
	MaxConns int
	// MaxConnsPerPeer limits open connections from one remote IP address
	// (DefaultMaxConnsPerPeer if 0, negative for no limit), so that one
	// host cannot take every slot. Known peers are exempt.
	MaxConnsPerPeer int
	// KnownPeers are the addresses of known senders (one host is a /32 or
	// /128). Their connections are exempt from MaxConnsPerPeer, may use the
	// ReservedConns, and when the server is full one of them closes the
	// connection of an unknown peer that has been idle longest. A client
	// whose certificate was verified (mutual TLS) is known too, from its
	// handshake on: it is never closed to make room.
	KnownPeers []netip.Prefix
	// ReservedConns of MaxConns are kept for known peers: unknown peers are
	// refused once MaxConns-ReservedConns connections are open. 0 means
	// MaxConns/8 (at least 1) when KnownPeers is set, else none; negative
	// means none. Under TLS a new connection may also close the oldest one
	// still in its handshake, so unauthenticated clients that never finish
	// a handshake cannot hold mutual-TLS senders out.
	ReservedConns int
	// Logger receives connection events; never message content.
	Logger zerolog.Logger
	// Metrics registers the server's metrics; a private registry when nil.
	// Counters sinew_mllp_connections_total{result=accepted|rejected|tls_error|evicted},
	// sinew_mllp_frames_total, sinew_mllp_framing_errors_total{kind=junk|
	// too_large|start_in_frame|missing_cr|truncated|read_timeout},
	// sinew_mllp_handler_panics_total; gauge sinew_mllp_open_connections.
	// Servers sharing a registerer share these.
	Metrics prometheus.Registerer
}

// A Server receives MLLP messages and answers each with its Handler's reply.
type Server struct {
	cfg ServerConfig
	h   Handler
	log zerolog.Logger
	m   *metrics

	mu      sync.Mutex
	serving bool
	addr    net.Addr
	conns   map[*Conn]struct{}
	live    int                // tracked connections not being closed to make room
	perPeer map[netip.Addr]int // tracked connections per remote IP
	wg      sync.WaitGroup     // one per tracked connection
}

// NewServer checks cfg and returns a Server that answers with h.
func NewServer(cfg ServerConfig, h Handler) (*Server, error) {
	if h == nil {
		return nil, errors.New("mllp: nil handler")
	}
	if cfg.MaxFrameSize < 0 {
		return nil, fmt.Errorf("mllp: negative MaxFrameSize %d", cfg.MaxFrameSize)
	}
	if t := cfg.TLS; t != nil && len(t.Certificates) == 0 && t.GetCertificate == nil && t.GetConfigForClient == nil {
		return nil, errors.New("mllp: TLS config has no server certificate")
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.MaxFrameSize == 0 {
		cfg.MaxFrameSize = DefaultMaxFrameSize
	}
	if cfg.KeepHead <= 0 {
		cfg.KeepHead = DefaultKeepHead
	}
	cfg.ReadTimeout = orDefault(cfg.ReadTimeout, DefaultReadTimeout)
	cfg.IdleTimeout = orDefault(cfg.IdleTimeout, DefaultIdleTimeout)
	cfg.WriteTimeout = orDefault(cfg.WriteTimeout, DefaultWriteTimeout)
	cfg.ShutdownTimeout = orDefault(cfg.ShutdownTimeout, DefaultShutdownTimeout)
	switch {
	case cfg.MaxConns == 0:
		cfg.MaxConns = DefaultMaxConns
	case cfg.MaxConns < 0:
		cfg.MaxConns = 0 // no limit
	}
	switch {
	case cfg.MaxConnsPerPeer == 0:
		cfg.MaxConnsPerPeer = DefaultMaxConnsPerPeer
	case cfg.MaxConnsPerPeer < 0:
		cfg.MaxConnsPerPeer = 0
	}
	switch {
	case cfg.ReservedConns == 0 && len(cfg.KnownPeers) > 0:
		cfg.ReservedConns = max(cfg.MaxConns/8, 1)
	case cfg.ReservedConns < 0:
		cfg.ReservedConns = 0
	}
	if cfg.MaxConns == 0 {
		cfg.ReservedConns = 0
	}
	if cfg.MaxConns > 0 && cfg.ReservedConns >= cfg.MaxConns {
		return nil, fmt.Errorf("mllp: ReservedConns %d leaves no connection of MaxConns %d for other peers", cfg.ReservedConns, cfg.MaxConns)
	}
	for _, p := range cfg.KnownPeers {
		if !p.IsValid() {
			return nil, errors.New("mllp: invalid prefix in KnownPeers")
		}
	}
	reg := cfg.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, h: h, log: cfg.Logger, m: m, conns: make(map[*Conn]struct{}), perPeer: make(map[netip.Addr]int)}, nil
}

// orDefault maps 0 to def and a negative duration to 0 (no limit).
func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// ListenAndServe listens on the configured address and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("mllp: listen %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve accepts connections on ln (a plain listener: the server adds TLS
// when configured) until ctx ends, then shuts down gracefully: it stops
// accepting, lets each connection finish the message it is receiving or
// handling and write the reply, and closes it. It returns nil once every
// connection is closed; after ShutdownTimeout it closes the rest by force
// and cancels their handlers' contexts, and reports an error if a handler
// has still not returned a second later. Serve may be called once per Server.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return errors.New("mllp: Serve called twice")
	}
	s.serving, s.addr = true, ln.Addr()
	s.mu.Unlock()

	s.log.Info().Str("addr", ln.Addr().String()).Bool("tls", s.cfg.TLS != nil).Msg("mllp listening")
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	err := s.accept(ctx, ln)
	ln.Close()
	return errors.Join(err, s.drain())
}

// Addr returns the address the server listens on, or nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

func (s *Server) accept(ctx context.Context, ln net.Listener) error {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !temporary(err) {
				return fmt.Errorf("mllp: accept on %s: %w", ln.Addr(), err)
			}
			// Out of file descriptors and the like: wait rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn().Err(err).Int64("retry_in_ms", delay.Milliseconds()).Msg("mllp accept failed")
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		c := s.newConn(nc)
		if why := s.track(c); why != "" {
			nc.Close()
			s.m.rejected.Inc()
			s.log.Warn().Str("remote", nc.RemoteAddr().String()).Int("max_conns", s.cfg.MaxConns).
				Int("max_conns_per_peer", s.cfg.MaxConnsPerPeer).Msg("mllp connection refused: " + why)
			continue
		}
		go s.serveConn(ctx, c)
	}
}

func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// track admits c, or says why not: over the per-peer limit, or full with
// no connection that may be closed to make room.
func (s *Server) track(c *Conn) string {
	known := s.knownAddr(c.peerIP)
	c.known.Store(known)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !known && s.cfg.MaxConnsPerPeer > 0 && c.peerIP.IsValid() && s.perPeer[c.peerIP] >= s.cfg.MaxConnsPerPeer {
		return "too many connections from this address"
	}
	if s.cfg.MaxConns > 0 {
		limit := s.cfg.MaxConns
		if !known {
			limit -= s.cfg.ReservedConns
		}
		if s.live >= limit {
			v := s.victim(known)
			if v == nil {
				return "too many connections"
			}
			v.evicted.Store(true)
			s.live--
			s.m.evicted.Inc()
			v.log.Warn().Bool("for_known_peer", known).Msg("mllp connection closed to make room")
			v.shutdown()
		}
	}
	s.conns[c] = struct{}{}
	s.live++
	if c.peerIP.IsValid() {
		s.perPeer[c.peerIP]++
	}
	s.wg.Add(1)
	s.m.open.Inc()
	return ""
}

// victim picks the connection to close for a newcomer, with s.mu held: the
// oldest one still in its TLS handshake, else, for a known newcomer, the
// unknown one idle longest. Connections receiving or handling a frame are
// never picked; nor known ones.
func (s *Server) victim(forKnown bool) *Conn {
	var hs, idle *Conn
	var idleFrom int64
	for c := range s.conns {
		if c.known.Load() || c.evicted.Load() || c.isClosing() {
			continue
		}
		if c.handshaking.Load() {
			if hs == nil || c.opened.Before(hs.opened) {
				hs = c
			}
			continue
		}
		if t := c.idleSince.Load(); forKnown && t != 0 && (idle == nil || t < idleFrom) {
			idle, idleFrom = c, t
		}
	}
	if hs != nil {
		return hs
	}
	return idle
}

func (s *Server) knownAddr(ip netip.Addr) bool {
	for _, p := range s.cfg.KnownPeers {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (s *Server) untrack(c *Conn) {
	c.nc.Close()
	s.mu.Lock()
	delete(s.conns, c)
	if !c.evicted.Load() {
		s.live--
	}
	if c.peerIP.IsValid() {
		if s.perPeer[c.peerIP]--; s.perPeer[c.peerIP] <= 0 {
			delete(s.perPeer, c.peerIP)
		}
	}
	s.mu.Unlock()
	s.m.open.Dec()
	s.wg.Done()
}

// ParsePeers reads addresses and CIDR prefixes ("10.1.2.3", "10.1.0.0/16",
// "::1") for ServerConfig.KnownPeers.
func ParsePeers(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, v := range list {
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("mllp: known peer %q: not an address or CIDR prefix", v)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// drain runs once accepting has stopped, so no connection is added meanwhile.
func (s *Server) drain() error {
	s.mu.Lock()
	for c := range s.conns {
		c.shutdown()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	timer := time.NewTimer(s.cfg.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-timer.C:
	}

	s.mu.Lock()
	n := len(s.conns)
	for c := range s.conns {
		c.forceClose()
	}
	s.mu.Unlock()
	s.log.Warn().Int("connections", n).Int64("after_ms", s.cfg.ShutdownTimeout.Milliseconds()).Msg("mllp shutdown: closing connections by force")
	select {
	case <-done:
		return nil
	case <-time.After(time.Second):
	}
	s.mu.Lock()
	n = len(s.conns)
	s.mu.Unlock()
	return fmt.Errorf("mllp: shutdown: %d handlers still running after their connection was closed", n)
}

// A Conn is one accepted connection, as its handler sees it. Its methods
// may be called from any goroutine.
type Conn struct {
	id        string
	raw       net.Conn // the TCP connection
	nc        net.Conn // raw, or the TLS connection over it
	srv       *Server
	log       zerolog.Logger
	cancel    context.CancelFunc // cancels the handler context
	peerCerts []*x509.Certificate
	rd        *Reader
	opened    time.Time
	frames    int
	peerIP    netip.Addr // zero when the transport is not TCP/UDP

	// Read by the server when it must make room for a newcomer.
	known       atomic.Bool  // allowlisted address or verified client certificate
	handshaking atomic.Bool  // TLS handshake not finished
	evicted     atomic.Bool  // closed to make room
	idleSince   atomic.Int64 // unix ns since waiting between frames; 0 while a frame is received or handled

	// Deadline bookkeeping, owned by the connection's goroutine.
	idleFrom, frameFrom, lastRead time.Time

	mu      sync.Mutex // guards the fields below and cancel: shutdown runs on another goroutine
	closing bool
	dl      time.Time // read deadline currently set on nc
}

// ID returns a short id for the connection, unique enough for logs.
func (c *Conn) ID() string { return c.id }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

// LocalAddr returns the address the connection was accepted on.
func (c *Conn) LocalAddr() net.Addr { return c.raw.LocalAddr() }

// PeerCertificates returns the certificates the peer presented, leaf first,
// verified when the TLS config requires it; nil without TLS or client
// certificate.
func (c *Conn) PeerCertificates() []*x509.Certificate { return c.peerCerts }

func (s *Server) newConn(raw net.Conn) *Conn {
	var b [6]byte
	rand.Read(b[:])
	c := &Conn{id: hex.EncodeToString(b[:]), raw: raw, nc: raw, srv: s, cancel: func() {}, opened: time.Now()}
	if ap, err := netip.ParseAddrPort(raw.RemoteAddr().String()); err == nil {
		c.peerIP = ap.Addr().Unmap()
	}
	c.idleSince.Store(c.opened.UnixNano())
	if s.cfg.TLS != nil {
		c.nc = tls.Server(raw, s.cfg.TLS)
		c.handshaking.Store(true)
	}
	c.log = s.log.With().Str("conn", c.id).Str("remote", raw.RemoteAddr().String()).Logger()
	return c
}

// errClosing ends a connection's read between frames during shutdown.
var errClosing = errors.New("mllp: server shutting down")

// aLongTimeAgo is a deadline in the past, to interrupt a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

func (s *Server) serveConn(ctx context.Context, c *Conn) {
	defer s.untrack(c)
	// Handlers finish their message when shutdown begins: their context is
	// cancelled only by a forced close.
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	c.mu.Lock()
	c.cancel = cancel
	c.mu.Unlock()

	if tc, ok := c.nc.(*tls.Conn); ok && !s.handshake(ctx, c, tc) {
		return
	}
	s.m.accepted.Inc()
	ev := c.log.Info()
	if len(c.peerCerts) > 0 {
		ev = ev.Str("peer_cn", c.peerCerts[0].Subject.CommonName)
	}
	ev.Msg("mllp connection opened")

	ro := ReaderOptions{
		MaxFrameSize:   s.cfg.MaxFrameSize,
		AllowMissingCR: s.cfg.AllowMissingCR,
		OnJunk:         c.onJunk,
	}
	if _, ok := s.h.(OversizeHandler); ok {
		ro.KeepHead = s.cfg.KeepHead
	}
	c.rd = NewReader(connReader{c}, ro)
	reason := c.serve(hctx)
	c.log.Info().Str("reason", reason).Int("frames", c.frames).Int64("junk_bytes", c.rd.Skipped()).
		Int64("duration_ms", time.Since(c.opened).Milliseconds()).Msg("mllp connection closed")
}

func (s *Server) handshake(ctx context.Context, c *Conn, tc *tls.Conn) bool {
	hctx := ctx
	if s.cfg.ReadTimeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, s.cfg.ReadTimeout)
		defer cancel()
	}
	err := tc.HandshakeContext(hctx)
	c.handshaking.Store(false)
	if err != nil {
		if ctx.Err() != nil || c.evicted.Load() {
			return false // shutting down, or closed to make room
		}
		s.m.tlsError.Inc()
		c.log.Warn().Err(err).Msg("mllp TLS handshake failed")
		return false
	}
	st := tc.ConnectionState()
	c.peerCerts = st.PeerCertificates
	if len(st.VerifiedChains) > 0 {
		c.known.Store(true)
	}
	return true
}

// serve runs the read → handle → reply loop and says why it ended.
func (c *Conn) serve(ctx context.Context) string {
	s := c.srv
	var wbuf []byte
	for {
		if c.isClosing() {
			return c.closeReason()
		}
		c.idleFrom, c.frameFrom = time.Now(), time.Time{}
		c.idleSince.Store(c.idleFrom.UnixNano())
		msg, err := c.rd.Next()
		if err != nil {
			head, size, oversize := c.oversize(err)
			reason := c.readFailed(err)
			if oversize {
				oh, _ := s.h.(OversizeHandler)
				c.idleSince.Store(0)
				reply, ok := c.handle(func() []byte { return oh.ServeMLLPOversize(ctx, c, head, size) })
				if !ok {
					return "handler panic"
				}
				if !c.reply(&wbuf, reply) {
					return "write error"
				}
			}
			if reason != "" {
				return reason
			}
			continue
		}
		c.idleSince.Store(0)
		c.frames++
		s.m.frames.Inc()
		reply, ok := c.handle(func() []byte { return s.h.ServeMLLP(ctx, c, msg) })
		if !ok {
			return "handler panic"
		}
		if !c.reply(&wbuf, reply) {
			return "write error"
		}
	}
}

// oversize reports whether err ends a frame over the limit that an
// OversizeHandler should answer: read to its end, or cut by the read
// timeout.
func (c *Conn) oversize(err error) (head []byte, size int, ok bool) {
	if _, isOH := c.srv.h.(OversizeHandler); !isOH {
		return nil, 0, false
	}
	var fe *FramingError
	if errors.As(err, &fe) && errors.Is(fe.Err, ErrFrameTooLarge) {
		return fe.Head, fe.Size, true
	}
	if timeout(err) {
		return c.rd.discarding()
	}
	return nil, 0, false
}

// reply writes a handler's reply (nothing when nil); false when the
// connection must close.
func (c *Conn) reply(wbuf *[]byte, reply []byte) bool {
	if reply == nil {
		return true
	}
	if !ValidPayload(reply) {
		c.log.Error().Int("bytes", len(reply)).Msg("mllp handler reply contains a framing byte; not sent")
		return true
	}
	*wbuf = Encode((*wbuf)[:0], reply)
	if t := c.srv.cfg.WriteTimeout; t > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(t))
	}
	if _, err := c.nc.Write(*wbuf); err != nil {
		c.log.Warn().Err(err).Int("bytes", len(*wbuf)).Msg("mllp reply not written")
		return false
	}
	return true
}

// readFailed logs and counts a read error; it returns why the connection
// must close, or "" to read on.
func (c *Conn) readFailed(err error) string {
	s := c.srv
	var fe *FramingError
	switch {
	case errors.As(err, &fe):
		kind := framingKind(fe.Err)
		s.m.countFraming(kind)
		c.log.Warn().Str("kind", kind).Int64("offset", fe.Offset).Int("bytes", fe.Size).Msg("mllp frame dropped")
		if errors.Is(fe, io.ErrUnexpectedEOF) {
			return "closed by peer inside a frame"
		}
		return ""
	case err == io.EOF:
		return "closed by peer"
	case errors.Is(err, errClosing):
		return c.closeReason()
	case timeout(err) && c.rd.inFrame():
		s.m.countFraming(kindReadTimeout)
		c.log.Warn().Int64("offset", c.rd.frameOff).Int("bytes", c.rd.frameBytes()).Int64("read_timeout_ms", s.cfg.ReadTimeout.Milliseconds()).
			Msg("mllp frame not completed within the read timeout")
		return "read timeout"
	case timeout(err):
		return "idle timeout"
	}
	c.log.Warn().Err(err).Msg("mllp read failed")
	return "read error"
}

func timeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// handle calls the handler through serve; a panic closes this connection
// only.
func (c *Conn) handle(serve func() []byte) (reply []byte, ok bool) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		c.srv.m.panics.Inc()
		ev := c.log.Error().Str("stack", string(debug.Stack()))
		// A panic value may quote the message; a runtime error does not.
		if re, isRuntime := p.(runtime.Error); isRuntime {
			ev = ev.Str("panic", re.Error())
		} else {
			ev = ev.Str("panic_type", fmt.Sprintf("%T", p))
		}
		ev.Msg("mllp handler panicked; closing connection")
		reply, ok = nil, false
	}()
	return serve(), true
}

// onJunk logs bytes found between frames: NUL or whitespace padding at
// debug level, anything else as a warning. Only the first bytes, in hex.
func (c *Conn) onJunk(n int, first []byte) {
	c.srv.m.countFraming(kindJunk)
	ev := c.log.Warn()
	if n == len(first) && padding(first) {
		ev = c.log.Debug()
	}
	ev.Int64("offset", c.rd.Offset()-int64(n)).Int("bytes", n).Str("first_hex", hex.EncodeToString(first)).
		Msg("mllp bytes outside frames skipped")
}

func padding(b []byte) bool {
	for _, x := range b {
		switch x {
		case 0, ' ', '\t', '\r', '\n':
		default:
			return false
		}
	}
	return true
}

func (c *Conn) closeReason() string {
	if c.evicted.Load() {
		return "closed to make room"
	}
	return "shutdown"
}

func (c *Conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// shutdown asks the connection to close after the message in hand, and
// interrupts a read waiting for the next one.
func (c *Conn) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.closing = true
	c.dl = aLongTimeAgo
	c.nc.SetReadDeadline(aLongTimeAgo)
}

// connReader applies the read deadlines: the idle timeout between frames,
// the read timeout from a frame's first byte on. During shutdown it ends
// reading between frames but lets a frame being received complete.
type connReader struct{ c *Conn }

func (r connReader) Read(p []byte) (int, error) {
	c := r.c
	for {
		dl, ok := c.readDeadline()
		if !ok {
			return 0, errClosing
		}
		n, err := c.nc.Read(p)
		if n > 0 {
			c.lastRead = time.Now()
		}
		if n == 0 && err != nil && timeout(err) && c.interrupted(dl) {
			continue // woken by shutdown, not by our deadline
		}
		return n, err
	}
}

func (c *Conn) readDeadline() (time.Time, bool) {
	cfg := &c.srv.cfg
	var dl time.Time
	inFrame := c.rd.inFrame()
	if inFrame {
		c.idleSince.Store(0)
		if c.frameFrom.IsZero() {
			// The first byte came with the last read, unless that read was
			// before this Next (a frame already buffered).
			c.frameFrom = c.lastRead
			if c.frameFrom.Before(c.idleFrom) {
				c.frameFrom = c.idleFrom
			}
		}
		if cfg.ReadTimeout > 0 {
			dl = c.frameFrom.Add(cfg.ReadTimeout)
		}
	} else if cfg.IdleTimeout > 0 {
		dl = c.idleFrom.Add(cfg.IdleTimeout)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing && !inFrame {
		return dl, false
	}
	if !dl.Equal(c.dl) {
		c.nc.SetReadDeadline(dl)
		c.dl = dl
	}
	return dl, true
}

// forceClose cancels the handler and closes the TCP connection (not the TLS
// one: its Close may wait for a stuck write).
func (c *Conn) forceClose() {
	c.mu.Lock()
	cancel := c.cancel
	c.mu.Unlock()
	cancel()
	c.raw.Close()
}

func (c *Conn) interrupted(dl time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing && (dl.IsZero() || time.Now().Before(dl))
}
