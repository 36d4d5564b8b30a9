package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// SFTPConfig is an SFTP server ingest pulls batch files from. Each file of
// a configured remote directory goes through the same intake as the drop
// folder (object store, manifest, batch_seen) and is then moved to done/
// under that directory (or left in place when ReadOnly).
type SFTPConfig struct {
	// Addr is host:port; empty turns the puller off.
	Addr string `yaml:"addr"`
	User string `yaml:"user"`
	// Password or KeyFile (a private key, PEM/OpenSSH) authenticates.
	Password string `yaml:"password"`
	KeyFile  string `yaml:"key_file"`
	// HostKey is the server's public key ("ssh-ed25519 AAAA...", as in
	// authorized_keys or a known_hosts line) or its SHA256 fingerprint
	// ("SHA256:..."); HostKeyFile a file holding one. One is required: the
	// server is never trusted on first use.
	HostKey     string `yaml:"host_key"`
	HostKeyFile string `yaml:"host_key_file"`
	// Dirs maps a remote directory (relative to the login directory, or
	// absolute) to its flow. Default: resolute and clarity → resolute-gl.
	Dirs map[string]string `yaml:"dirs"`
	// Poll is how often the directories are listed. A file is taken only
	// when its size and modification time are the same in two consecutive
	// listings (and its name is not a dot-name or .part/.tmp).
	Poll time.Duration `yaml:"poll"`
	// ReadOnly leaves taken files on the server; batch_seen makes sure
	// each is processed once.
	ReadOnly bool `yaml:"read_only"`
	// Timeout bounds connecting and logging in.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultSFTPConfig returns the defaults (puller off until Addr is set).
func DefaultSFTPConfig() SFTPConfig {
	return SFTPConfig{
		Poll:    10 * time.Second,
		Timeout: 10 * time.Second,
	}
}

// HostKeyCallback checks the server's key against HostKey / HostKeyFile.
func (c SFTPConfig) HostKeyCallback() (ssh.HostKeyCallback, error) {
	spec := strings.TrimSpace(c.HostKey)
	if spec == "" && c.HostKeyFile != "" {
		b, err := os.ReadFile(c.HostKeyFile)
		if err != nil {
			return nil, fmt.Errorf("ingest: sftp.host_key_file: %w", err)
		}
		spec = strings.TrimSpace(string(b))
	}
	if spec == "" {
		return nil, errors.New("ingest: sftp needs host_key or host_key_file (the server's public key or SHA256 fingerprint); unknown hosts are never trusted")
	}
	if strings.HasPrefix(spec, "SHA256:") {
		want := strings.Fields(spec)[0]
		return func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if got := ssh.FingerprintSHA256(key); got != want {
				return fmt.Errorf("sftp host key %s does not match the configured %s", got, want)
			}
			return nil
		}, nil
	}
	var keys []ssh.PublicKey
	for _, line := range strings.Split(spec, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err == nil {
			keys = append(keys, k)
			continue
		}
		if _, _, k, _, _, err := ssh.ParseKnownHosts([]byte(line)); err == nil {
			keys = append(keys, k)
			continue
		}
		return nil, fmt.Errorf("ingest: sftp host key: %q is neither a public key nor a known_hosts line", truncate(line, 40))
	}
	if len(keys) == 0 {
		return nil, errors.New("ingest: sftp host key: no key found")
	}
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		for _, k := range keys {
			if bytes.Equal(k.Marshal(), key.Marshal()) {
				return nil
			}
		}
		return fmt.Errorf("sftp host key %s is not the configured one", ssh.FingerprintSHA256(key))
	}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

// clientConfig builds the SSH client configuration.
func (c SFTPConfig) clientConfig() (*ssh.ClientConfig, error) {
	hk, err := c.HostKeyCallback()
	if err != nil {
		return nil, err
	}
	var auth []ssh.AuthMethod
	if c.KeyFile != "" {
		pem, err := os.ReadFile(c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("ingest: sftp.key_file: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(pem)
		if err != nil {
			return nil, fmt.Errorf("ingest: sftp.key_file: %w", err)
		}
		auth = append(auth, ssh.PublicKeys(signer))
	}
	if c.Password != "" {
		auth = append(auth, ssh.Password(c.Password))
	}
	if len(auth) == 0 {
		return nil, errors.New("ingest: sftp needs password or key_file")
	}
	if c.User == "" {
		return nil, errors.New("ingest: sftp.user is empty")
	}
	return &ssh.ClientConfig{User: c.User, Auth: auth, HostKeyCallback: hk, Timeout: c.Timeout}, nil
}

// sftpPuller polls an SFTP server's directories.
type sftpPuller struct {
	cfg   SFTPConfig
	taker *batchTaker
	// last listing per remote path: a file is taken once it is unchanged
	// between two polls.
	last map[string]remoteStat
	// taken remembers files left in place (read-only servers) so they are
	// not downloaded again on every poll.
	taken map[string]remoteStat
}

type remoteStat struct {
	size  int64
	mtime time.Time
}

func newSFTPPuller(cfg SFTPConfig, t *batchTaker) (*sftpPuller, error) {
	// The host key file is read at every connection (its writer, epicsim
	// under sinew up, may start later), but one must be configured.
	if strings.TrimSpace(cfg.HostKey) == "" && cfg.HostKeyFile == "" {
		_, err := cfg.HostKeyCallback()
		return nil, err
	}
	if cfg.User == "" || cfg.Password == "" && cfg.KeyFile == "" {
		return nil, errors.New("ingest: sftp needs user, and password or key_file")
	}
	if cfg.HostKeyFile == "" {
		if _, err := cfg.clientConfig(); err != nil {
			return nil, err
		}
	}
	if len(cfg.Dirs) == 0 {
		return nil, errors.New("ingest: sftp.dirs is empty: no flow declares intake.sftp in flows.yaml")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultSFTPConfig().Poll
	}
	return &sftpPuller{cfg: cfg, taker: t, last: map[string]remoteStat{}, taken: map[string]remoteStat{}}, nil
}

// run polls until ctx ends. Each poll opens one connection and closes it.
func (p *sftpPuller) run(ctx context.Context) {
	t := time.NewTicker(p.cfg.Poll)
	defer t.Stop()
	for {
		if err := p.poll(ctx); err != nil && ctx.Err() == nil {
			p.taker.bus.Logger().Warn().Err(err).Str("sftp", p.cfg.Addr).Msg("sftp poll failed; will retry")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// dial connects and logs in; the host key is checked against the configured one.
func (p *sftpPuller) dial(ctx context.Context) (*sftp.Client, func(), error) {
	cc, err := p.cfg.clientConfig()
	if err != nil {
		return nil, nil, err
	}
	d := net.Dialer{Timeout: p.cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", p.cfg.Addr)
	if err != nil {
		return nil, nil, err
	}
	if p.cfg.Timeout > 0 {
		_ = conn.SetDeadline(time.Now().Add(p.cfg.Timeout))
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, p.cfg.Addr, cc)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("sftp %s: %w", p.cfg.Addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	sc := ssh.NewClient(c, chans, reqs)
	cl, err := sftp.NewClient(sc)
	if err != nil {
		sc.Close()
		return nil, nil, fmt.Errorf("sftp %s: %w", p.cfg.Addr, err)
	}
	stop := context.AfterFunc(ctx, func() { sc.Close() })
	return cl, func() { stop(); cl.Close(); sc.Close() }, nil
}

// poll lists every directory once and takes the files that have settled.
func (p *sftpPuller) poll(ctx context.Context) error {
	cl, closeFn, err := p.dial(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	dirs := make([]string, 0, len(p.cfg.Dirs))
	for d := range p.cfg.Dirs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	seen := map[string]bool{}
	for _, dir := range dirs {
		flow := p.cfg.Dirs[dir]
		entries, err := cl.ReadDir(dir)
		if err != nil {
			p.taker.bus.Logger().Warn().Err(err).Str("sftp", p.cfg.Addr).Str("dir", dir).Msg("sftp directory unreadable")
			continue
		}
		if !p.cfg.ReadOnly {
			_ = cl.MkdirAll(path.Join(dir, "done"))
		}
		for _, e := range entries {
			name := e.Name()
			if !e.Mode().IsRegular() || partial(name) {
				continue
			}
			full := path.Join(dir, name)
			st := remoteStat{size: e.Size(), mtime: e.ModTime()}
			seen[full] = true
			prev, known := p.last[full]
			p.last[full] = st
			if !known || prev != st {
				continue // new or still changing: look again next poll
			}
			if t, ok := p.taken[full]; ok && t == st {
				continue
			}
			err := p.taker.take(ctx, &remoteFile{cl: cl, dir: dir, name: name, readOnly: p.cfg.ReadOnly}, flow, "sftp:"+p.cfg.Addr+"/"+dir)
			switch {
			case err == nil, err == errDuplicate:
				if p.cfg.ReadOnly {
					p.taken[full] = st
				}
				delete(p.last, full)
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, errNotArchived):
				// Committed; the server refuses the move (read-only in
				// practice): leave it, batch_seen keeps it processed once.
				p.taken[full] = st
				delete(p.last, full)
				p.taker.bus.Logger().Warn().Err(err).Str("file", full).Msg("sftp batch file left on the server")
			default:
				p.taker.bus.Logger().Error().Err(err).Str("file", full).Str("flow", flow).Msg("sftp batch file not taken; will retry")
			}
		}
	}
	for k := range p.last {
		if !seen[k] {
			delete(p.last, k)
		}
	}
	for k := range p.taken {
		if !seen[k] {
			delete(p.taken, k)
		}
	}
	return nil
}

// remoteFile is a file on the SFTP server.
type remoteFile struct {
	cl       *sftp.Client
	dir      string
	name     string
	readOnly bool
}

func (f *remoteFile) Name() string { return f.name }

func (f *remoteFile) Open() (io.ReadSeekCloser, error) {
	return f.cl.Open(path.Join(f.dir, f.name))
}

// Archive moves the file to done/ on the server, or leaves it on a
// read-only server.
func (f *remoteFile) Archive(suffix string) error {
	if f.readOnly {
		return nil
	}
	return f.cl.Rename(path.Join(f.dir, f.name), path.Join(f.dir, "done", f.name+"."+suffix))
}
