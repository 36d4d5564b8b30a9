package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/streams"
)

const composeDir = "../../deploy/compose"

// composeEnv sets the passwords the NATS configuration reads.
func composeEnv(t *testing.T) {
	for _, u := range []string{"PROVISION", "INGEST", "TRANSFORM", "LOADER", "RECONCILER", "DEADLETTER", "CONSOLE", "SYS"} {
		t.Setenv("SINEW_"+u+"_PASSWORD", "pw-"+u)
	}
}

func TestComposeClusterConfigParses(t *testing.T) {
	composeEnv(t)
	for _, n := range []string{"nats-1.conf", "nats-2.conf", "nats-3.conf"} {
		opts, err := server.ProcessConfigFile(filepath.Join(composeDir, "nats", n))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if !opts.JetStream || opts.Cluster.Name != "sinew" || len(opts.Routes) != 3 || len(opts.Accounts) < 2 {
			t.Errorf("%s: jetstream %v cluster %q routes %d accounts %d", n, opts.JetStream, opts.Cluster.Name, len(opts.Routes), len(opts.Accounts))
		}
	}
}

// TestServiceUsersCannotTouchAudit starts a real nats-server with the
// deployment's accounts and permissions: the provision user creates the
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
		nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(user, os.Getenv("SINEW_"+map[string]string{
			"provision": "PROVISION", "ingest": "INGEST"}[user]+"_PASSWORD")))
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
	if err := streams.Ensure(ctx, connect("provision")); err != nil {
		t.Fatalf("provision: %v", err)
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
	audit, err := js.Stream(ctx, streams.Audit)
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
		"purge":         audit.Purge(short),
		"delete msg":    audit.DeleteMsg(short, 1),
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
