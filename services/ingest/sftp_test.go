package ingest_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"

	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/epicsim"
	"github.com/sinewhq/sinew/services/ingest"
)

// startSFTP runs epicsim's SFTP server on a real loopback socket.
func startSFTP(t *testing.T) (*epicsim.SFTPServer, epicsim.SFTPConfig) {
	t.Helper()
	dir := t.TempDir()
	cfg := epicsim.SFTPConfig{Addr: "127.0.0.1:0", User: "epic", Password: "s3cret", Root: filepath.Join(dir, "root"),
		HostKeyFile: filepath.Join(dir, "host_key")}
	srv, err := epicsim.StartSFTP(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, cfg
}

func batchCount(t *testing.T, e *env) uint64 {
	t.Helper()
	s, err := e.js.Stream(context.Background(), streams.BatchIn)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// Each poll is a new SSH session: under the race detector on a loaded
	// 2-core machine two polls and a take have taken over 10 s.
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSFTPFileTakenOnceMovedToDone pulls from epicsim's SFTP server: a
// complete file is stored and announced once and moved to done/ on the
// server; a file still growing and a .part file are not taken.
func TestSFTPFileTakenOnceMovedToDone(t *testing.T) {
	srv, scfg := startSFTP(t)
	remote := filepath.Join(scfg.Root, "resolute")
	if err := os.MkdirAll(remote, 0o755); err != nil {
		t.Fatal(err)
	}
	e := start(t, streams.DefaultOptions(), func(c *ingest.Config) {
		c.Drops = map[string]string{}    // SFTP only
		c.FlowsFile = "../../flows.yaml" // the SFTP directories are the flows'
		c.SFTP.Addr = srv.Addr().String()
		c.SFTP.User, c.SFTP.Password = scfg.User, scfg.Password
		c.SFTP.HostKeyFile = scfg.HostKeyFile + ".pub" // what epicsim writes for clients
		c.SFTP.Poll = 50 * time.Millisecond
	})
	// A sender still writing: under .part, and a file that grows between polls.
	if err := os.WriteFile(filepath.Join(remote, "hb_next.txt.part"), []byte("H|"), 0o644); err != nil {
		t.Fatal(err)
	}
	growing, err := os.Create(filepath.Join(remote, "hb_growing.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer growing.Close()
	stop := make(chan struct{})
	grown := make(chan struct{})
	go func() {
		defer close(grown)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			growing.WriteString("D|partial line\n")
		}
	}()

	if err := os.WriteFile(filepath.Join(remote, "hb_20260115.txt"), []byte(resoluteFile), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the complete file in BATCH_IN", func() bool { return batchCount(t, e) == 1 })
	waitFor(t, "the file moved to done/ on the server", func() bool {
		done, _ := filepath.Glob(filepath.Join(remote, "done", "hb_20260115.txt.*"))
		_, err := os.Stat(filepath.Join(remote, "hb_20260115.txt"))
		return len(done) == 1 && os.IsNotExist(err)
	})
	time.Sleep(500 * time.Millisecond) // ten more polls
	close(stop)
	<-grown
	if n := batchCount(t, e); n != 1 {
		t.Fatalf("BATCH_IN holds %d manifests, want 1: a half-written file was taken", n)
	}
	if _, err := os.Stat(filepath.Join(remote, "hb_growing.txt")); err != nil {
		t.Errorf("the growing file was moved: %v", err)
	}
	if _, err := os.Stat(filepath.Join(remote, "hb_next.txt.part")); err != nil {
		t.Errorf("the .part file was moved: %v", err)
	}
	obj, err := e.js.ObjectStore(context.Background(), streams.ObjBatchFiles)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := obj.List(context.Background())
	if len(list) != 1 {
		t.Errorf("object store holds %d files", len(list))
	}
	// Once it settles, the (formerly growing) file is taken like any other.
	waitFor(t, "the settled file in BATCH_IN", func() bool { return batchCount(t, e) == 2 })
	// The same bytes again under another name: archived as a duplicate, not announced.
	if err := os.WriteFile(filepath.Join(remote, "hb_again.txt"), []byte(resoluteFile), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the duplicate archived", func() bool {
		d, _ := filepath.Glob(filepath.Join(remote, "done", "hb_again.txt.duplicate-*"))
		return len(d) == 1
	})
	if n := batchCount(t, e); n != 2 {
		t.Errorf("BATCH_IN holds %d manifests after a duplicate, want 2", n)
	}
}

// TestSFTPWrongHostKeyRefused: a server whose key is not the configured
// one is never logged into, so nothing is taken.
func TestSFTPWrongHostKeyRefused(t *testing.T) {
	srv, scfg := startSFTP(t)
	remote := filepath.Join(scfg.Root, "resolute")
	if err := os.MkdirAll(remote, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(remote, "hb_20260115.txt"), []byte(resoluteFile), 0o644); err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, hostKey := range []string{string(ssh.MarshalAuthorizedKey(other)), ssh.FingerprintSHA256(other)} {
		cfg := ingest.DefaultSFTPConfig()
		cfg.HostKey = hostKey
		cb, err := cfg.HostKeyCallback()
		if err != nil {
			t.Fatal(err)
		}
		_, err = ssh.Dial("tcp", srv.Addr().String(), &ssh.ClientConfig{User: scfg.User,
			Auth: []ssh.AuthMethod{ssh.Password(scfg.Password)}, HostKeyCallback: cb, Timeout: 5 * time.Second})
		if err == nil || !strings.Contains(err.Error(), "host key") {
			t.Errorf("host key %q: dial error %v, want a host key refusal", hostKey[:20], err)
		}
		// The right key, as a fingerprint, is accepted.
		cfg.HostKey = ssh.FingerprintSHA256(srv.PublicKey())
		cb, _ = cfg.HostKeyCallback()
		c, err := ssh.Dial("tcp", srv.Addr().String(), &ssh.ClientConfig{User: scfg.User,
			Auth: []ssh.AuthMethod{ssh.Password(scfg.Password)}, HostKeyCallback: cb, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("right fingerprint refused: %v", err)
		}
		c.Close()
	}
	e := start(t, streams.DefaultOptions(), func(c *ingest.Config) {
		c.Drops = map[string]string{}    // SFTP only
		c.FlowsFile = "../../flows.yaml" // the SFTP directories are the flows'
		c.SFTP.Addr = srv.Addr().String()
		c.SFTP.User, c.SFTP.Password = scfg.User, scfg.Password
		c.SFTP.HostKey = string(ssh.MarshalAuthorizedKey(other))
		c.SFTP.Poll = 50 * time.Millisecond
	})
	time.Sleep(500 * time.Millisecond)
	if n := batchCount(t, e); n != 0 {
		t.Fatalf("BATCH_IN holds %d manifests from a server with the wrong host key", n)
	}
	if _, err := os.Stat(filepath.Join(remote, "hb_20260115.txt")); err != nil {
		t.Errorf("file moved on an untrusted server: %v", err)
	}
	// No host key at all: no callback, so the puller cannot be configured.
	if _, err := ingest.DefaultSFTPConfig().HostKeyCallback(); err == nil || !strings.Contains(err.Error(), "host_key") {
		t.Errorf("no host key: %v", err)
	}
}
