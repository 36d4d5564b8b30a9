package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/streams"
)

const composeDir = "../../deploy/compose"

// composeEnv sets the passwords the NATS configuration reads: one per
// user of the permission table, and the system account's.
func composeEnv(t *testing.T) {
	for _, g := range streams.New(streams.DefaultOptions()).Grants() {
		t.Setenv("SINEW_"+strings.ToUpper(g.User)+"_PASSWORD", "pw-"+g.User)
	}
	t.Setenv("SINEW_SYS_PASSWORD", "pw-sys")
	t.Setenv("SINEW_JETSTREAM_KEY", "test-jetstream-key")
}

// TestAccountsConfIsGenerated: accounts.conf is the permission table of
// pkg/streams (`sinew streams accounts`), so production and sinew up
// cannot drift apart.
func TestAccountsConfIsGenerated(t *testing.T) {
	want, err := streams.New(streams.DefaultOptions()).AccountsConf()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(composeDir, "nats", "accounts.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("deploy/compose/nats/accounts.conf is stale: run `go run ./cmd/sinew streams accounts > deploy/compose/nats/accounts.conf`")
	}
	env, err := os.ReadFile(filepath.Join(composeDir, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range streams.New(streams.DefaultOptions()).Grants() {
		if v := "SINEW_" + strings.ToUpper(g.User) + "_PASSWORD="; !strings.Contains(string(env), v) {
			t.Errorf(".env.example lacks %s", v)
		}
	}
}

func TestComposeClusterConfigParses(t *testing.T) {
	composeEnv(t)
	for _, n := range []string{"nats-1.conf", "nats-2.conf", "nats-3.conf"} {
		opts, err := server.ProcessConfigFile(composeConfCopy(t, n))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if !opts.JetStream || opts.Cluster.Name != "sinew" || len(opts.Routes) != 3 || len(opts.Accounts) < 2 {
			t.Errorf("%s: jetstream %v cluster %q routes %d accounts %d", n, opts.JetStream, opts.Cluster.Name, len(opts.Routes), len(opts.Accounts))
		}
		// TLS for clients and for routes (both sides verified), encryption at rest.
		if opts.TLSConfig == nil || opts.Cluster.TLSConfig == nil || opts.Cluster.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert {
			t.Errorf("%s: client TLS %v, route TLS %v", n, opts.TLSConfig != nil, opts.Cluster.TLSConfig != nil)
		}
		if opts.JetStreamCipher != server.ChaCha || opts.JetStreamKey != "test-jetstream-key" {
			t.Errorf("%s: JetStream cipher %v, key from $SINEW_JETSTREAM_KEY %v", n, opts.JetStreamCipher, opts.JetStreamKey != "")
		}
	}
}

// TestServiceUsersCannotTouchAudit starts a real nats-server with the
// deployment's accounts and permissions: the admin user creates the
// topology; a service user can publish, consume and use buckets, but can
// neither purge, shorten nor delete AUDIT.
func TestServiceUsersCannotTouchAudit(t *testing.T) {
	composeEnv(t)
	t.Setenv("SINEW_TEST_STORE_DIR", t.TempDir())
	opts, err := server.ProcessConfigFile(filepath.Join(composeDir, "nats", "standalone.conf"))
	if err != nil {
		t.Fatal(err)
	}
	opts.NoSigs, opts.NoLog = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	ctx := context.Background()
	connect := func(user string) jetstream.JetStream {
		nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(user, os.Getenv("SINEW_"+strings.ToUpper(user)+"_PASSWORD")),
			nats.CustomInboxPrefix(streams.InboxPrefix(user))) // the only subjects a service user may subscribe to
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	admin := connect("admin")
	if err := streams.Ensure(ctx, admin); err != nil {
		t.Fatalf("admin: %v", err)
	}
	js := connect("ingest")
	if _, err := js.Publish(ctx, "hl7.in.STMARYS.ADT.A01", []byte("MSH|..."), jetstream.WithMsgID("x")); err != nil {
		t.Errorf("ingest cannot publish to HL7_IN: %v", err)
	}
	if _, err := js.Publish(ctx, "audit.hl7.ingest", []byte("record")); err != nil {
		t.Errorf("ingest cannot write audit records: %v", err)
	}
	kv, err := js.KeyValue(ctx, streams.KVSequences)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("1")); err != nil {
		t.Errorf("ingest cannot use its bucket: %v", err)
	}
	// A writer may not even read AUDIT's configuration; the admin's copy
	// is what the probes send.
	if _, err := js.Stream(ctx, streams.Audit); err == nil {
		t.Error("ingest could read AUDIT's stream info")
	}
	audit, err := admin.Stream(ctx, streams.Audit)
	if err != nil {
		t.Fatal(err)
	}
	cfg := audit.CachedInfo().Config
	cfg.MaxAge = time.Hour
	cfg.DenyPurge = false
	// A denied API request gets no answer: each attempt ends at its deadline.
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	denied := map[string]error{
		"delete stream": js.DeleteStream(short, streams.Audit),
		"purge":         request(short, js, "$JS.API.STREAM.PURGE."+streams.Audit, "{}"),
		"delete msg":    request(short, js, "$JS.API.STREAM.MSG.DELETE."+streams.Audit, `{"seq":1}`),
	}
	_, denied["update"] = js.UpdateStream(short, cfg)
	for what, err := range denied {
		if err == nil {
			t.Errorf("a service user could %s on AUDIT", what)
		}
	}
	if info, err := audit.Info(ctx); err != nil || info.Config.MaxAge != 6*365*24*time.Hour {
		t.Errorf("AUDIT changed: %v %v", info.Config.MaxAge, err)
	}
}

// request sends a raw JetStream API request as js's user; a denied one
// gets no answer, an allowed one an answer without an error.
func request(ctx context.Context, js jetstream.JetStream, subject, body string) error {
	msg, err := js.Conn().RequestWithContext(ctx, subject, []byte(body))
	if err != nil {
		return err
	}
	if strings.Contains(string(msg.Data), `"error"`) {
		return fmt.Errorf("%s: %s", subject, msg.Data)
	}
	return nil
}
