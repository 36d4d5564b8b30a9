// Package ingest is Sinew's front door: it accepts HL7 v2 over MLLP
// (hl7in.go) and batch files from drop folders and SFTP (batch.go,
// sftp.go), commits each message or file to JetStream and only then
// acknowledges the sender or archives the file. A message that cannot be
// stored is answered AE/CE so the sender resends; one that cannot be
// parsed is answered AR/CR with an ERR segment naming the problem, and
// kept. FHIR R4 resources are read from Epic by paged search and bulk
// export (fhir.go) and committed to FHIR_IN.
package ingest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/mllp"
)

// Config is the ingest service's configuration.
type Config struct {
	bus.ServiceConfig `yaml:",inline"`
	// MLLPAddr is the HL7 v2 listener.
	MLLPAddr string `yaml:"mllp_addr"`
	// DropDir holds one folder per batch source; Drops maps a folder name
	// to its flow (default: flows.yaml's intake.drops of every flow).
	DropDir string            `yaml:"drop_dir"`
	Drops   map[string]string `yaml:"drops"`
	// DropPoll is how often the folders are scanned; DropSettle how long a
	// file must be unmodified before it is taken.
	DropPoll   time.Duration `yaml:"drop_poll"`
	DropSettle time.Duration `yaml:"drop_settle"`
	// SFTP is a server batch files are pulled from (off while its addr is
	// empty); they take the same path as dropped files.
	SFTP SFTPConfig `yaml:"sftp"`
	MLLP MLLPConfig `yaml:"mllp"`
	HL7  HL7Config  `yaml:"hl7"`
	// FlowsFile is the integration inventory (flows.yaml): its HL7 flows'
	// sending applications route messages to the flows' own subjects
	// (streams.HL7FlowSubject), where a staged or paused flow's input waits.
	// Empty: every message takes the default subject.
	FlowsFile string `yaml:"flows_file"`
	// FHIR is FHIR R4 intake from Epic (fhir.go; off while its base_url is empty).
	FHIR FHIRConfig `yaml:"fhir"`
}

// MLLPConfig bounds the listener (see mllp.ServerConfig). Durations: 0
// means the default, negative no limit.
type MLLPConfig struct {
	// MaxFrameSize bounds one frame's payload (16 MiB).
	MaxFrameSize int `yaml:"max_frame_size"`
	// ReadTimeout bounds receiving one frame from its first byte on, so a
	// frame dripped slowly is cut (30 s); also the TLS handshake.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// IdleTimeout closes a connection that sends no frame for that long,
	// junk between frames included (1 minute).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxConns bounds open connections (256); MaxConnsPerPeer those from one
	// IP address (64), known peers exempt.
	MaxConns        int `yaml:"max_conns"`
	MaxConnsPerPeer int `yaml:"max_conns_per_peer"`
	// KnownPeers are addresses or CIDR prefixes of known senders: they may
	// use ReservedConns (default max_conns/8 when known_peers is set) and,
	// when the listener is full, close the unknown connection idle longest.
	// Mutual-TLS clients are known from their handshake on.
	KnownPeers     []string  `yaml:"known_peers"`
	ReservedConns  int       `yaml:"reserved_conns"`
	AllowMissingCR bool      `yaml:"allow_missing_cr"`
	TLS            TLSConfig `yaml:"tls"`
}

// TLSConfig turns the listener into TLS, or mutual TLS with ClientCAFile.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, requires a client certificate signed by it.
	ClientCAFile string `yaml:"client_ca_file"`
	// Facilities maps a client certificate's common name to the sending
	// facilities (MSH-4-1) it may send for. With mutual TLS and a non-empty
	// map, a certificate not listed may send for none.
	Facilities map[string][]string `yaml:"facilities"`
}

// HL7Config is how messages are read and answered.
type HL7Config struct {
	// Application and Facility name Sinew in ACKs when the inbound MSH-5/6
	// are empty.
	Application string `yaml:"application"`
	Facility    string `yaml:"facility"`
	// Charset overrides MSH-18 for every message; FallbackCharset decodes
	// undeclared non-UTF-8 text (windows-1252 when empty).
	Charset         string `yaml:"charset"`
	FallbackCharset string `yaml:"fallback_charset"`
	// Flows maps a sending application (MSH-3-1) to a flow id; others get
	// DefaultFlow.
	Flows       map[string]string `yaml:"flows"`
	DefaultFlow string            `yaml:"default_flow"`
	// CommitTimeout bounds storing one message (and its audit record)
	// before the sender is answered AE/CE instead.
	CommitTimeout time.Duration `yaml:"commit_timeout"`
	// SequenceNumbers says whose MSH-13 sequence numbers are tracked:
	// "mtls" (default: peers with a verified client certificate, state per
	// certificate common name), "all" (plain MLLP peers too, per IP address:
	// any client on that address can move the expected number) or "off".
	// MSH-13 of an untracked peer is ignored.
	SequenceNumbers string `yaml:"sequence_numbers"`
	// GroupCommit stores the messages of concurrent connections that
	// arrive while the previous ones are being written as one JetStream
	// atomic batch: one fsync for the group, each sender still answered
	// only once its own message is stored. On by default; off: true
	// writes each message on its own.
	GroupCommit bus.GroupConfig `yaml:"group_commit"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{
		ServiceConfig: bus.DefaultServiceConfig(),
		MLLPAddr:      "127.0.0.1:2575",
		DropDir:       "var/drop",
		SFTP:          DefaultSFTPConfig(),
		MLLP: MLLPConfig{
			MaxFrameSize: mllp.DefaultMaxFrameSize, ReadTimeout: mllp.DefaultReadTimeout, IdleTimeout: mllp.DefaultIdleTimeout,
			MaxConns: mllp.DefaultMaxConns, MaxConnsPerPeer: mllp.DefaultMaxConnsPerPeer,
		},
		DropPoll:   time.Second,
		DropSettle: 2 * time.Second,
		HL7:        HL7Config{Application: "SINEW", DefaultFlow: "hl7", CommitTimeout: 5 * time.Second, SequenceNumbers: SeqMTLS},
	}
	c.HTTPAddr = "127.0.0.1:9101"
	return c
}

// Service is the running ingest service.
type Service struct {
	cfg   Config
	bus   *bus.Bus
	srv   *mllp.Server
	recv  *receiver
	drops *dropWatcher
	sftp  *sftpPuller
	fhir  *FHIRSync
	ready atomic.Bool
	addr  atomic.Pointer[net.Addr]
}

// New returns the service on bus b.
func New(cfg Config, b *bus.Bus) (*Service, error) {
	tlsCfg, err := cfg.MLLP.TLS.load()
	if err != nil {
		return nil, err
	}
	switch cfg.HL7.SequenceNumbers {
	case "":
		cfg.HL7.SequenceNumbers = SeqMTLS
	case SeqMTLS, SeqAll, SeqOff:
	default:
		return nil, fmt.Errorf("ingest: hl7.sequence_numbers %q: want %s, %s or %s", cfg.HL7.SequenceNumbers, SeqMTLS, SeqAll, SeqOff)
	}
	known, err := mllp.ParsePeers(cfg.MLLP.KnownPeers)
	if err != nil {
		return nil, fmt.Errorf("ingest: mllp.known_peers: %w", err)
	}
	if cfg.FlowsFile != "" {
		inv, err := flows.Load(cfg.FlowsFile)
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		// Where a flow's files come from is the flow's declaration.
		if cfg.Drops == nil {
			cfg.Drops = inv.Drops()
		}
		if cfg.SFTP.Dirs == nil {
			cfg.SFTP.Dirs = inv.SFTPDirs()
		}
		if cfg.FHIR.BaseURL != "" && len(cfg.FHIR.Search) == 0 && len(cfg.FHIR.Export.Types) == 0 {
			cfg.FHIR.fromFlows(inv)
		}
	}
	r, err := newReceiver(cfg, b)
	if err != nil {
		return nil, err
	}
	srv, err := mllp.NewServer(mllp.ServerConfig{
		Addr:            cfg.MLLPAddr,
		TLS:             tlsCfg,
		MaxFrameSize:    cfg.MLLP.MaxFrameSize,
		AllowMissingCR:  cfg.MLLP.AllowMissingCR,
		ReadTimeout:     cfg.MLLP.ReadTimeout,
		IdleTimeout:     cfg.MLLP.IdleTimeout,
		MaxConns:        cfg.MLLP.MaxConns,
		MaxConnsPerPeer: cfg.MLLP.MaxConnsPerPeer,
		KnownPeers:      known,
		ReservedConns:   cfg.MLLP.ReservedConns,
		Logger:          *b.Logger(),
		Metrics:         b.Metrics(),
	}, r)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	s := &Service{cfg: cfg, bus: b, srv: srv, recv: r}
	if cfg.FHIR.BaseURL != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if s.fhir, err = NewFHIRSync(ctx, cfg.FHIR, b); err != nil {
			return nil, err
		}
	}
	dropOn, sftpOn := cfg.DropDir != "" && len(cfg.Drops) > 0, cfg.SFTP.Addr != ""
	if dropOn || sftpOn {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		taker, err := newBatchTaker(ctx, b)
		if err != nil {
			return nil, err
		}
		if dropOn {
			if s.drops, err = newDropWatcher(cfg, taker); err != nil {
				return nil, err
			}
		}
		if sftpOn {
			if s.sftp, err = newSFTPPuller(cfg.SFTP, taker); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// Run listens for MLLP until ctx ends, then lets open connections finish
// the message in hand.
func (s *Service) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.MLLPAddr)
	if err != nil {
		return fmt.Errorf("ingest: mllp listen: %w", err)
	}
	addr := ln.Addr()
	s.addr.Store(&addr)
	s.ready.Store(true)
	defer s.ready.Store(false)
	s.bus.Logger().Info().Str("mllp", addr.String()).Bool("tls", s.cfg.MLLP.TLS.CertFile != "").Msg("HL7 v2 listener started")
	if s.drops != nil {
		done := make(chan struct{})
		go func() { defer close(done); s.drops.run(ctx) }()
		defer func() { <-done }()
	}
	if s.sftp != nil {
		done := make(chan struct{})
		go func() { defer close(done); s.sftp.run(ctx) }()
		defer func() { <-done }()
	}
	if s.fhir != nil {
		done := make(chan struct{})
		go func() { defer close(done); _ = s.fhir.Run(ctx) }()
		defer func() { <-done }()
	}
	return s.srv.Serve(ctx, ln)
}

// Ready is nil while the listener accepts connections.
func (s *Service) Ready() error {
	if !s.ready.Load() {
		return errors.New("ingest: MLLP listener not started")
	}
	return nil
}

// MLLPAddr is the listener's address once Run has started it.
func (s *Service) MLLPAddr() net.Addr {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return nil
}

func (t TLSConfig) load() (*tls.Config, error) {
	if len(t.Facilities) > 0 && t.ClientCAFile == "" {
		return nil, errors.New("ingest: mllp.tls.facilities needs client_ca_file (mutual TLS); without client certificates it would allow every facility")
	}
	if t.CertFile == "" && t.KeyFile == "" {
		if t.ClientCAFile != "" {
			return nil, errors.New("ingest: mllp.tls.client_ca_file needs cert_file and key_file")
		}
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("ingest: mllp tls: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("ingest: mllp tls: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ingest: mllp tls: no certificate in %s", t.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
