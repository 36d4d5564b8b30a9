package streams_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/natsembed"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/track"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

// permServer starts an embedded server with every user of the table
// (password = user name) and the topology ensured by the admin.
func permServer(t *testing.T) (string, streams.Topology) {
	t.Helper()
	topo := streams.New(streams.DefaultOptions())
	var users []natsembed.User
	for _, g := range topo.Grants() {
		p, err := topo.Permissions(g)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, natsembed.User{Name: g.User, Password: g.User, Admin: g.Admin,
			PublishAllow: p.PublishAllow, PublishDeny: p.PublishDeny, SubscribeAllow: p.SubscribeAllow, Responses: p.Responses})
	}
	srv, err := natsembed.Start(natsembed.Options{Addr: "127.0.0.1:0", StoreDir: t.TempDir(), Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { natsembed.Stop(srv) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := topo.Ensure(ctx, connect(t, srv.ClientURL(), streams.UserAdmin)); err != nil {
		t.Fatal(err)
	}
	return srv.ClientURL(), topo
}

func connect(t *testing.T, url, user string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserInfo(user, user), nats.CustomInboxPrefix(streams.InboxPrefix(user)), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
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

func TestPermissionTableOnARealServer(t *testing.T) {
	url, topo := permServer(t)
	if _, err := nats.Connect(url); err == nil {
		t.Fatal("an unauthenticated client was accepted")
	}
	// who may publish what: only transform commands, only a writer its
	// own audit hop, only ingest the intake subjects
	subjects := map[string]string{
		"fusion.cmd.willow-inventory.inventory": streams.UserTransform,
		"epic.cmd.worker-sync.mfn":              streams.UserTransform,
		"hl7.in.STMARYS.RDS.O13":                streams.UserIngest,
		"batch.in.resolute-gl":                  streams.UserIngest,
		"audit.hl7.ingest":                      streams.UserIngest,
		"audit.hl7.transform":                   streams.UserTransform,
		"audit.resolute-gl.load":                streams.UserLoader,
		"result.resolute-gl.accepted":           streams.UserLoader,
		"recon.resolute-gl.totals":              streams.UserReconciler,
		"dlq.FUSION_CMD.loader-fusion.7":        streams.UserLoader,
	}
	ctx := context.Background()
	t.Run("users", func(t *testing.T) {
		for _, g := range topo.Grants() {
			if g.Admin {
				continue
			}
			t.Run(g.User, func(t *testing.T) {
				t.Parallel()
				js := connect(t, url, g.User)
				for subj, owner := range subjects {
					short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
					_, err := js.Publish(short, subj, []byte("probe"), jetstream.WithMsgID(g.User+subj))
					cancel()
					// the console replays dead letters onto their original subjects
					replay := g.User == streams.UserConsole && slices.ContainsFunc(streams.ReplaySubjects, func(f string) bool { return dlq.SubjectMatches(f, subj) })
					allowed := g.User == owner || (g.User == streams.UserDeadletter && subj[:4] == "dlq.") || replay
					if allowed && err != nil {
						t.Errorf("%s cannot publish %s: %v", g.User, subj, err)
					}
					if !allowed && err == nil {
						t.Errorf("%s could publish %s", g.User, subj)
					}
				}
				// nobody but the admin edits or deletes streams, purges or deletes messages
				short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				cfg, _ := topo.Stream(streams.Audit)
				cfg.MaxAge, cfg.Duplicates = time.Second, time.Second
				if _, err := js.UpdateStream(short, cfg); err == nil {
					t.Errorf("%s could shorten AUDIT", g.User)
				}
				for _, s := range []string{streams.Audit, streams.DLQ, streams.FusionCmd} {
					if err := js.DeleteStream(short, s); err == nil {
						t.Errorf("%s could delete %s", g.User, s)
					}
				}
				if err := js.DeleteConsumer(short, streams.FusionCmd, streams.LoaderFusion); err == nil {
					t.Errorf("%s could delete a durable consumer", g.User)
				}
				cancel()
			})
		}
	})
	admin := connect(t, url, streams.UserAdmin)
	for _, s := range []string{streams.Audit, streams.DLQ, streams.FusionCmd} {
		if _, err := admin.Stream(ctx, s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	if _, err := admin.Consumer(ctx, streams.FusionCmd, streams.LoaderFusion); err != nil {
		t.Errorf("loader-fusion: %v", err)
	}
}

func TestPermissionsNameKnownStreamsAndBuckets(t *testing.T) {
	topo := streams.New(streams.DefaultOptions())
	for _, g := range topo.Grants() {
		if _, err := topo.Permissions(g); err != nil {
			t.Error(err)
		}
	}
	hops := topo.HopUsers()
	if len(hops["transform"]) != 1 || hops["transform"][0] != streams.UserTransform || hops["ingest"][0] != streams.UserIngest {
		t.Errorf("hop owners %v", hops)
	}
}

// TestConsoleReplaysAndChangesFlowState: the console's operators replay
// dead letters (their replay record and audit hop), stage and activate
// flows (flow_state, the consumer pause) — and still cannot delete a
// durable consumer or write another service's audit hop.
func TestConsoleReplaysAndChangesFlowState(t *testing.T) {
	url, _ := permServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js := connect(t, url, streams.UserConsole)
	for _, subj := range []string{"hl7.in.W.RDS.O13", "fusion.cmd.resolute-gl.import", streams.AuditSubject("willow-inventory", streams.HopReplay),
		streams.AuditSubject("willow-inventory", streams.HopFlows)} {
		if _, err := js.Publish(ctx, subj, []byte("probe"), jetstream.WithMsgID("console-"+subj)); err != nil {
			t.Errorf("console cannot publish %s: %v", subj, err)
		}
	}
	for _, b := range []string{streams.KVReplays, streams.KVFlowState} {
		kv, err := js.KeyValue(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, "probe", []byte("x")); err != nil {
			t.Errorf("console cannot write %s: %v", b, err)
		}
	}
	c := streams.TransformHL7
	if _, err := js.PauseConsumer(ctx, streams.HL7In, c, time.Now().Add(time.Hour)); err != nil {
		t.Errorf("console cannot pause %s: %v", c, err)
	}
	if _, err := js.ResumeConsumer(ctx, streams.HL7In, c); err != nil {
		t.Errorf("console cannot resume %s: %v", c, err)
	}
	short, cancel2 := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel2()
	if _, err := js.Publish(short, streams.AuditSubject("x", "load"), []byte("probe")); err == nil {
		t.Error("console could write the loader's audit hop")
	}
}

// TestConsoleBuildsAndServesTheTrackingIndex: as the console user, the
// indexer reads AUDIT (an ordered consumer) and the index answers
// lookups and status requests; the admin (the CLI) asks, by key. Another
// service may not ask.
func TestConsoleBuildsAndServesTheTrackingIndex(t *testing.T) {
	url, _ := permServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := connect(t, url, streams.UserAdmin)
	if err := audit.NewWriter(admin, "cli:test").Write(ctx, &sinewv1.AuditEvent{Flow: "resolute-gl", Hop: "load", Outcome: "ok",
		BusinessKeys: sinewv1.KeysOf("batch_id", "HB-1")}); err != nil {
		t.Fatal(err)
	}
	js := connect(t, url, streams.UserConsole)
	idx, err := track.OpenIndex(t.TempDir(), track.IndexConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	go func() { _ = track.NewIndexer(js, idx, track.IndexerConfig{}).Run(ctx, nil) }()
	if err := track.Serve(ctx, js.Conn(), js, idx); err != nil {
		t.Fatal(err)
	}
	for {
		st, err := track.AskStatus(ctx, admin.Conn())
		if err != nil {
			t.Fatal(err)
		}
		if st.Watermark > 0 && st.Lag() == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if hops, err := track.Ask(ctx, admin.Conn(), track.Key("HB-1")); err != nil || len(hops) != 1 {
		t.Fatalf("admin lookup: %d hops (%v)", len(hops), err)
	}
	ingest := connect(t, url, streams.UserIngest)
	short, cancel2 := context.WithTimeout(ctx, time.Second)
	defer cancel2()
	if _, err := track.Ask(short, ingest.Conn(), track.Key("HB-1")); err == nil {
		t.Error("ingest could ask the tracking index")
	}
}
