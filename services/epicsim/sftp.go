package epicsim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"
)

// SFTPConfig is epicsim's SFTP server: Epic's outbound file share, where
// Resolute files wait for Sinew's ingest to pull them.
type SFTPConfig struct {
	// Addr is the listener; empty turns the server off.
	Addr     string `yaml:"addr"`
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// Root is the directory served (the login directory is its top).
	Root string `yaml:"root"`
	// HostKeyFile holds the server's private key (OpenSSH PEM), generated
	// on first start; its public key is written next to it as
	// HostKeyFile+".pub" (authorized_keys format) for clients to trust.
	HostKeyFile string `yaml:"host_key_file"`
	// DailyFile writes the day's Resolute file to Root/resolute instead of
	// the drop folder.
	DailyFile bool `yaml:"daily_file"`
	// SupplierDir is where Sinew puts supplier reference files
	// (supplier-sync over SFTP, flows.yaml delivery.dir): Epic takes each
	// one renamed into it and answers with a result file (supplierfile.go).
	SupplierDir string `yaml:"supplier_dir"`
	// OnPut is told of every file renamed into place (dir relative to
	// Root, file name), after the rename.
	OnPut func(dir, name string) `yaml:"-"`
}

// SFTPServer serves a directory over SFTP (password login).
type SFTPServer struct {
	cfg  SFTPConfig
	ssh  *ssh.ServerConfig
	pub  ssh.PublicKey
	ln   net.Listener
	log  zerolog.Logger
	wg   sync.WaitGroup
	mu   sync.Mutex
	conn map[net.Conn]struct{}
	done bool
}

// StartSFTP listens on cfg.Addr and serves cfg.Root until Close.
func StartSFTP(cfg SFTPConfig, log zerolog.Logger) (*SFTPServer, error) {
	if cfg.Root == "" || cfg.User == "" || cfg.Password == "" || cfg.HostKeyFile == "" {
		return nil, errors.New("epicsim: sftp needs root, user, password and host_key_file")
	}
	// The extract folders exist from the start, as on Epic's server, so a
	// puller sees empty folders rather than missing ones.
	for _, dir := range []string{"resolute", "clarity", cfg.SupplierDir} {
		if dir == "" {
			continue
		}
		if err := os.MkdirAll(filepath.Join(cfg.Root, dir), 0o750); err != nil {
			return nil, fmt.Errorf("epicsim: sftp root: %w", err)
		}
	}
	signer, err := hostKey(cfg.HostKeyFile)
	if err != nil {
		return nil, fmt.Errorf("epicsim: sftp host key: %w", err)
	}
	sc := &ssh.ServerConfig{
		PasswordCallback: func(c ssh.ConnMetadata, pass []byte) (*ssh.Permissions, error) {
			userOK := subtle.ConstantTimeCompare([]byte(c.User()), []byte(cfg.User)) == 1
			passOK := subtle.ConstantTimeCompare(pass, []byte(cfg.Password)) == 1
			if userOK && passOK {
				return nil, nil
			}
			return nil, errors.New("wrong user or password")
		},
	}
	sc.AddHostKey(signer)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("epicsim: sftp listen: %w", err)
	}
	s := &SFTPServer{cfg: cfg, ssh: sc, pub: signer.PublicKey(), ln: ln, log: log, conn: map[net.Conn]struct{}{}}
	s.wg.Go(s.accept)
	return s, nil
}

// hostKey reads the private key at path, or generates an ed25519 key
// there (and its public half at path.pub) on first use.
func hostKey(p string) (ssh.Signer, error) {
	if b, err := os.ReadFile(p); err == nil {
		signer, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, err
		}
		return signer, writePublic(p, signer.PublicKey())
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "epicsim sftp host key")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	return signer, writePublic(p, signer.PublicKey())
}

// writePublic writes the public key next to the private one (renamed
// into place, so a reader never sees half of it).
func writePublic(p string, pub ssh.PublicKey) error {
	want := ssh.MarshalAuthorizedKey(pub)
	if b, err := os.ReadFile(p + ".pub"); err == nil && string(b) == string(want) {
		return nil
	}
	if err := os.WriteFile(p+".pub.tmp", want, 0o644); err != nil {
		return err
	}
	return os.Rename(p+".pub.tmp", p+".pub")
}

// Addr is the listener's address.
func (s *SFTPServer) Addr() net.Addr { return s.ln.Addr() }

// PublicKey is the host key clients must trust.
func (s *SFTPServer) PublicKey() ssh.PublicKey { return s.pub }

// Close stops listening and ends open sessions.
func (s *SFTPServer) Close() error {
	s.mu.Lock()
	s.done = true
	for c := range s.conn {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *SFTPServer) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conn[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conn, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serve(c)
		})
	}
}

func (s *SFTPServer) serve(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(c, s.ssh)
	if err != nil {
		s.log.Debug().Err(err).Str("remote", c.RemoteAddr().String()).Msg("sftp login refused")
		return
	}
	_ = c.SetDeadline(time.Time{})
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, in, err := nc.Accept()
		if err != nil {
			return
		}
		go func() {
			for r := range in {
				ok := r.Type == "subsystem" && len(r.Payload) >= 4 && string(r.Payload[4:]) == "sftp"
				_ = r.Reply(ok, nil)
			}
		}()
		srv := sftp.NewRequestServer(ch, rootHandlers(s.cfg.Root, s.cfg.OnPut))
		if err := srv.Serve(); err != nil && !errors.Is(err, io.EOF) {
			s.log.Debug().Err(err).Msg("sftp session ended")
		}
		srv.Close()
	}
}

// rooted serves one directory: every request path is cleaned and joined
// under root, so no path leaves it.
type rooted struct {
	root  string
	onPut func(dir, name string)
}

func rootHandlers(root string, onPut func(dir, name string)) sftp.Handlers {
	r := rooted{root: root, onPut: onPut}
	return sftp.Handlers{FileGet: r, FilePut: r, FileCmd: r, FileList: r}
}

func (r rooted) local(p string) string {
	return filepath.Join(r.root, filepath.FromSlash(path.Clean("/"+p)))
}

func (r rooted) Fileread(req *sftp.Request) (io.ReaderAt, error) {
	return os.Open(r.local(req.Filepath))
}

func (r rooted) Filewrite(req *sftp.Request) (io.WriterAt, error) {
	flags := os.O_WRONLY | os.O_CREATE
	pf := req.Pflags()
	if pf.Trunc {
		flags |= os.O_TRUNC
	}
	if pf.Excl {
		flags |= os.O_EXCL
	}
	return os.OpenFile(r.local(req.Filepath), flags, 0o644)
}

func (r rooted) Filecmd(req *sftp.Request) error {
	switch req.Method {
	case "Setstat":
		return nil
	case "Rename", "PosixRename":
		if err := os.Rename(r.local(req.Filepath), r.local(req.Target)); err != nil {
			return err
		}
		if r.onPut != nil {
			dir, name := path.Split(path.Clean("/" + req.Target))
			go r.onPut(strings.Trim(dir, "/"), name)
		}
		return nil
	case "Rmdir", "Remove":
		return os.Remove(r.local(req.Filepath))
	case "Mkdir":
		return os.Mkdir(r.local(req.Filepath), 0o750)
	}
	return sftp.ErrSSHFxOpUnsupported
}

type listerAt []os.FileInfo

func (l listerAt) ListAt(dst []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(dst, l[off:])
	if n < len(dst) || int(off)+n == len(l) {
		return n, io.EOF
	}
	return n, nil
}

func (r rooted) Filelist(req *sftp.Request) (sftp.ListerAt, error) {
	p := r.local(req.Filepath)
	switch req.Method {
	case "List":
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		out := make(listerAt, 0, len(entries))
		for _, e := range entries {
			if info, err := e.Info(); err == nil {
				out = append(out, info)
			}
		}
		return out, nil
	case "Stat", "Lstat":
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		return listerAt{info}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

// serveSFTP runs the server for the service until ctx ends; a listen
// failure is logged and the simulator goes on without it.
func (s *Service) serveSFTP(ctx context.Context) *SFTPServer {
	cfg := s.cfg.SFTP
	if s.providers != nil && cfg.SupplierDir != "" {
		cfg.OnPut = func(dir, name string) {
			if dir == cfg.SupplierDir {
				s.providers.receiveSupplierFile(filepath.Join(cfg.Root, filepath.FromSlash(dir)), name, *s.bus.Logger())
			}
		}
	}
	srv, err := StartSFTP(cfg, *s.bus.Logger())
	if err != nil {
		s.bus.Logger().Warn().Err(err).Msg("epicsim SFTP server not started")
		return nil
	}
	s.bus.Logger().Info().Str("sftp", srv.Addr().String()).Str("root", s.cfg.SFTP.Root).
		Str("host_key", ssh.FingerprintSHA256(srv.PublicKey())).Msg("epicsim SFTP server started")
	context.AfterFunc(ctx, func() { srv.Close() })
	return srv
}
