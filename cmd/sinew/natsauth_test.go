package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/natsembed"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

// authServer is an embedded server with the table's users and passwords
// kept in dataDir, as sinew up makes them.
func authServer(t *testing.T, dataDir string) string {
	t.Helper()
	topo := streams.New(streams.DefaultOptions())
	pw, err := natsPasswords(dataDir, topo.Grants())
	if err != nil {
		t.Fatal(err)
	}
	users, err := embeddedUsers(topo, pw)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := natsembed.Start(natsembed.Options{Addr: "127.0.0.1:0", StoreDir: t.TempDir(), Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { natsembed.Stop(srv) })
	if err := writeContexts(dataDir, srv.ClientURL(), pw); err != nil {
		t.Fatal(err)
	}
	return srv.ClientURL()
}

func TestCLIConnectsAsTheDataDirsAdmin(t *testing.T) {
	dir := t.TempDir()
	url := authServer(t, dir)
	t.Setenv("SINEW_NATS_URL", "")
	t.Setenv("SINEW_NATS_CREDS", "")
	t.Setenv("SINEW_NATS_CONTEXT", "")
	t.Setenv("SINEW_DATA_DIR", "")
	cli := func(args ...string) (string, error) {
		var out, errw bytes.Buffer
		err := run(context.Background(), args, &out, &errw)
		return out.String() + errw.String(), err
	}
	// The data dir's admin context: its URL and user, no flag needed.
	if out, err := cli("streams", "ensure", "--data-dir", dir); err != nil {
		t.Fatalf("data dir admin: %v\n%s", err, out)
	}
	// No credentials: refused.
	if _, err := cli("streams", "ls", "--data-dir", t.TempDir(), "--nats", url); err == nil || !strings.Contains(err.Error(), "Authorization") {
		t.Errorf("without credentials: %v", err)
	}
	// A nats CLI context by path, and by name under $XDG_CONFIG_HOME.
	admin := filepath.Join(dir, "nats", "admin.json")
	if out, err := cli("streams", "ls", "--data-dir", t.TempDir(), "--context", admin); err != nil || !strings.Contains(out, "AUDIT") {
		t.Errorf("--context path: %v\n%s", err, out)
	}
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	if err := os.MkdirAll(filepath.Join(cfg, "nats", "context"), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(admin)
	if err := os.WriteFile(filepath.Join(cfg, "nats", "context", "sinew.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SINEW_NATS_CONTEXT", "sinew")
	if out, err := cli("streams", "ls", "--data-dir", t.TempDir()); err != nil || !strings.Contains(out, "AUDIT") {
		t.Errorf("SINEW_NATS_CONTEXT: %v\n%s", err, out)
	}
	// A service's context does not carry the admin's rights.
	t.Setenv("SINEW_NATS_CONTEXT", filepath.Join(dir, "nats", "ingest.json"))
	if _, err := cli("streams", "ensure", "--data-dir", t.TempDir()); err == nil {
		t.Error("ingest could ensure the topology")
	}
}

func TestCredentialsKept0600AndReused(t *testing.T) {
	dir := t.TempDir()
	grants := streams.New(streams.DefaultOptions()).Grants()
	first, err := natsPasswords(dir, grants)
	if err != nil {
		t.Fatal(err)
	}
	again, err := natsPasswords(dir, grants)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range grants {
		if first[g.User] == "" || first[g.User] != again[g.User] {
			t.Errorf("%s: %q then %q", g.User, first[g.User], again[g.User])
		}
	}
	if err := writeContexts(dir, "nats://127.0.0.1:4222", first); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "nats", "*"))
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	var ctx natsContext
	b, _ := os.ReadFile(filepath.Join(dir, "nats", "admin.json"))
	if err := json.Unmarshal(b, &ctx); err != nil || ctx.User != "admin" || ctx.Password != first["admin"] || ctx.URL == "" {
		t.Errorf("admin context %+v %v", ctx, err)
	}
	// A credentials file others can read is refused.
	if err := os.Chmod(filepath.Join(dir, "nats", "users.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := natsPasswords(dir, grants); err == nil {
		t.Error("a world-readable users.json was used")
	}
}

// TestCLIConnectsWithACredsFile: a NATS credentials file (JWT + nkey, a
// server in operator mode) is used from --creds or $SINEW_NATS_CREDS, as
// the nats CLI does, and wins over the data dir's admin context.
func TestCLIConnectsWithACredsFile(t *testing.T) {
	srv, creds := natstest.StartWithCreds(t, t.TempDir())
	url := srv.ClientURL()
	dataDir := t.TempDir()
	authServer(t, dataDir) // a data dir admin.json for another server
	t.Setenv("SINEW_NATS_URL", "")
	t.Setenv("SINEW_NATS_CREDS", "")
	t.Setenv("SINEW_NATS_CONTEXT", "")
	t.Setenv("SINEW_DATA_DIR", dataDir)
	cli := func(args ...string) (string, error) {
		var out, errw bytes.Buffer
		err := run(context.Background(), args, &out, &errw)
		return out.String() + errw.String(), err
	}
	if _, err := cli("streams", "ls", "--nats", url); err == nil || !strings.Contains(err.Error(), "Authorization") {
		t.Errorf("the data dir's admin on the operator-mode server: %v", err)
	}
	if out, err := cli("streams", "ensure", "--nats", url, "--creds", creds); err != nil {
		t.Fatalf("--creds: %v\n%s", err, out)
	}
	t.Setenv("SINEW_NATS_CREDS", creds)
	if out, err := cli("streams", "ls", "--nats", url); err != nil || !strings.Contains(out, "AUDIT") {
		t.Errorf("SINEW_NATS_CREDS: %v\n%s", err, out)
	}
	if _, err := cli("streams", "ls", "--nats", url, "--creds", filepath.Join(t.TempDir(), "none.creds")); err == nil {
		t.Error("--creds of a missing file connected (the environment's was used)")
	}
}
