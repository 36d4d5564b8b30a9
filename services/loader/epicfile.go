package loader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/supplierfile"
)

// EpicSFTPConfig is Epic's SFTP share, where a flow delivered by file
// (flows.yaml delivery.transport sftp) puts its files.
type EpicSFTPConfig struct {
	// Addr is host:port; empty: file-delivered commands are retried until
	// it is set (then dead-lettered, replayable).
	Addr     string `yaml:"addr"`
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// HostKeyFile holds the server's public key (authorized_keys format),
	// read at every connection: the server is never trusted on first use.
	HostKeyFile string `yaml:"host_key_file"`
	// Poll is how often the result file is looked for until AckTimeout.
	Poll time.Duration `yaml:"poll"`
}

// epicFiles puts files on Epic's SFTP share over one connection, redialled
// after any failure; sftp.Client is safe for concurrent use.
type epicFiles struct {
	cfg     EpicSFTPConfig
	timeout time.Duration
	mu      sync.Mutex
	client  *sftp.Client
	ssh     *ssh.Client
}

func (e *epicFiles) conn(ctx context.Context) (*sftp.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client != nil {
		return e.client, nil
	}
	if e.cfg.Addr == "" {
		return nil, errors.New("loader.epic.sftp.addr is not set: no Epic SFTP share to deliver files to")
	}
	pub, err := os.ReadFile(e.cfg.HostKeyFile)
	if err != nil {
		return nil, fmt.Errorf("epic sftp host key: %w", err)
	}
	want, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		return nil, fmt.Errorf("epic sftp host key file: %w", err)
	}
	cc := &ssh.ClientConfig{User: e.cfg.User, Auth: []ssh.AuthMethod{ssh.Password(e.cfg.Password)}, Timeout: 10 * time.Second,
		HostKeyCallback: ssh.FixedHostKey(want)}
	d := net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", e.cfg.Addr)
	if err != nil {
		return nil, err
	}
	c, chans, reqs, err := ssh.NewClientConn(nc, e.cfg.Addr, cc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("epic sftp %s: %w", e.cfg.Addr, err)
	}
	sc := ssh.NewClient(c, chans, reqs)
	cl, err := sftp.NewClient(sc)
	if err != nil {
		sc.Close()
		return nil, fmt.Errorf("epic sftp %s: %w", e.cfg.Addr, err)
	}
	e.client, e.ssh = cl, sc
	return cl, nil
}

// drop forgets a connection that failed.
func (e *epicFiles) drop(cl *sftp.Client) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client == cl && cl != nil {
		_ = e.client.Close()
		_ = e.ssh.Close()
		e.client, e.ssh = nil, nil
	}
}

func (e *epicFiles) close() { e.drop(e.client) }

// deliver puts one supplier file into the flow's directory and waits for
// Epic's result file. The file is written under .part and renamed: the
// rename is the delivery. A stale result of an earlier attempt is removed
// first, so only this attempt's answer counts. Errors are coded as the
// MLLP leg's: no result in time SINEW-EPIC-002, AE/AR SINEW-EPIC-001.
func (e *epicFiles) deliver(ctx context.Context, d *flows.Delivery, name string, data []byte) error {
	cl, err := e.conn(ctx)
	if err != nil {
		return reason.Wrap(reason.EpicNoAck, fmt.Errorf("epic file %s: %w", name, err))
	}
	fail := func(step string, err error) error {
		e.drop(cl)
		return reason.Wrap(reason.EpicNoAck, fmt.Errorf("epic file %s: %s: %w", name, step, err))
	}
	target := path.Join(d.Dir, name)
	result := path.Join(d.Dir, supplierfile.ResultName(name))
	if err := cl.Remove(result); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail("remove stale result", err)
	}
	f, err := cl.OpenFile(target+".part", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fail("create", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fail("write", err)
	}
	if err := f.Close(); err != nil {
		return fail("close", err)
	}
	if err := cl.PosixRename(target+".part", target); err != nil {
		return fail("rename", err)
	}
	poll := e.cfg.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	deadline := time.Now().Add(e.timeout)
	for {
		rf, err := cl.Open(result)
		if err == nil {
			b, rerr := io.ReadAll(io.LimitReader(rf, 64<<10))
			rf.Close()
			if rerr != nil {
				return fail("read result", rerr)
			}
			return answer(name, b)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fail("open result", err)
		}
		if time.Now().After(deadline) {
			return reason.Wrap(reason.EpicNoAck, fmt.Errorf("epic file %s: no result file within %s", name, e.timeout))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// answer reads Epic's result: nil for AA, else its code, place and text.
func answer(name string, b []byte) error {
	r, err := supplierfile.ParseResult(bytes.TrimSpace(b))
	if err != nil {
		return reason.Wrap(reason.EpicNoAck, fmt.Errorf("epic file %s: unreadable result: %w", name, err))
	}
	if r.Code == supplierfile.CodeAccepted {
		return nil
	}
	where := ""
	if r.Line > 0 {
		where = fmt.Sprintf(" at line %d field %d", r.Line, r.Field)
	}
	return reason.Wrap(reason.EpicRejected, fmt.Errorf("epic answered %s%s: %s", r.Code, where, clip(strings.TrimSpace(r.Text), 300)))
}
