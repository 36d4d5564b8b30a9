package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/epicsim"
)

// probeName marks the probes' connections in the server log, so their
// expected violations can be told from the pipeline's (there must be none).
const probeName = "auth-probe"

// TestAuthProbes repeats the security probe of issue 9 against `sinew up`:
// an unauthenticated client is refused; a service user (ingest) cannot
// forge a Fusion command or another writer's audit record, nor shorten or
// delete AUDIT or DLQ; the forged command never reaches the loader; `audit
// verify` fails when AUDIT is weakened or emptied. Meanwhile the pipeline,
// each service as its own user, runs without a single permission violation.
func TestAuthProbes(t *testing.T) {
	dir := t.TempDir()
	a := newAddrs(t)
	s, _ := up(t, dir, a)
	js := s.js(t)
	ctx := context.Background()

	// Traffic through every hop first: ingest → transform → loader → results.
	sendDay(t, a.mllp, epicsim.NewGenerator(9, "STMARYS"), 40)
	waitFor(t, "results", 60*time.Second, func() (bool, string) {
		n := streamMsgs(t, js, streams.Results)
		return n >= 30, fmt.Sprint(n, " results")
	})
	waitFor(t, "commands settled", 30*time.Second, func() (bool, string) {
		before := lastSeq(t, js, streams.FusionCmd)
		time.Sleep(time.Second)
		after := lastSeq(t, js, streams.FusionCmd)
		return before == after, fmt.Sprint(before, " then ", after)
	})

	// 1. No credentials, or wrong ones: refused.
	if nc, err := nats.Connect(s.natsURL, nats.Name(probeName)); err == nil {
		nc.Close()
		t.Fatal("an unauthenticated client was accepted")
	}
	if nc, err := nats.Connect(s.natsURL, nats.Name(probeName), nats.UserInfo("ingest", "guess")); err == nil {
		nc.Close()
		t.Fatal("a wrong password was accepted")
	}

	// 2. A service user (ingest) tries what the probe did.
	nc, err := nats.Connect(s.natsURL, nats.Name(probeName), s.natsUser(t, "ingest"),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ing, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cmdsBefore := lastSeq(t, js, streams.FusionCmd)
	denied := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("ingest could %s", what)
		}
	}
	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		t.Cleanup(cancel)
		return c
	}
	_, err = ing.Publish(short(), "fusion.cmd.willow-inventory.inventory", []byte("forged: -777 of RX-1003"), jetstream.WithMsgID("forged-1"))
	denied("publish a Fusion command", err)
	_, err = ing.Publish(short(), "audit.hl7.transform", []byte("forged record"), jetstream.WithMsgID("forged-2"))
	denied("publish transform's audit subject", err)
	_, err = ing.Publish(short(), "dlq.FUSION_CMD.loader-fusion.1", []byte("forged letter"), jetstream.WithMsgID("forged-3"))
	denied("publish a dead letter", err)
	cfg, _ := streams.New(streams.DefaultOptions()).Stream(streams.Audit)
	weak := cfg
	weak.MaxAge, weak.Duplicates = time.Second, time.Second
	_, err = ing.UpdateStream(short(), weak)
	denied("stream update AUDIT --max-age 1s", err)
	denied("delete AUDIT", ing.DeleteStream(short(), streams.Audit))
	denied("delete DLQ", ing.DeleteStream(short(), streams.DLQ))
	denied("purge AUDIT", apiRequest(short(), nc, "$JS.API.STREAM.PURGE."+streams.Audit, "{}"))
	denied("delete an AUDIT message", apiRequest(short(), nc, "$JS.API.STREAM.MSG.DELETE."+streams.Audit, `{"seq":1}`))
	denied("delete the loader's consumer", ing.DeleteConsumer(short(), streams.FusionCmd, streams.LoaderFusionFlow("willow-inventory")))

	// Nothing changed: no forged command for the loader to post, AUDIT
	// and DLQ as configured.
	time.Sleep(2 * time.Second)
	if after := lastSeq(t, js, streams.FusionCmd); after != cmdsBefore {
		t.Errorf("FUSION_CMD went from seq %d to %d during the probe", cmdsBefore, after)
	}
	st, err := js.Stream(ctx, streams.Audit)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil || info.Config.MaxAge != cfg.MaxAge || !info.Config.DenyDelete || !info.Config.DenyPurge {
		t.Errorf("AUDIT changed: %+v %v", info.Config, err)
	}
	if _, err := js.Stream(ctx, streams.DLQ); err != nil {
		t.Errorf("DLQ: %v", err)
	}

	// 3. audit verify: intact, then weakened, then emptied.
	if out, err := s.cli(t, "audit", "verify"); err != nil || !strings.Contains(out, "chains intact") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	// An admin (or anyone holding its credential) shortens AUDIT.
	if _, err := js.UpdateStream(ctx, weak); err != nil {
		t.Fatal(err)
	}
	out, err := s.cli(t, "audit", "verify")
	if exitCode(err) != 1 || !strings.Contains(out, "weak-config") || !strings.Contains(out, "max age") {
		t.Errorf("audit verify on a shortened AUDIT: %v\n%s", err, out)
	}
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	// ... and deletes it; provisioning re-creates it empty.
	if err := js.DeleteStream(ctx, streams.Audit); err != nil {
		t.Fatal(err)
	}
	if out, err := s.cli(t, "streams", "ensure"); err != nil {
		t.Fatalf("streams ensure: %v\n%s", err, out)
	}
	out, err = s.cli(t, "audit", "verify")
	if exitCode(err) != 1 || !strings.Contains(out, "missing") {
		t.Errorf("audit verify on an emptied AUDIT: %v\n%s", err, out)
	}

	s.stop(t)
	authErrors := 0
	for _, line := range strings.Split(s.log.String(), "\n") {
		switch {
		case strings.Contains(line, "authentication error"):
			authErrors++ // the server logs these before it knows the client's name
		case strings.Contains(line, "Violation") && !strings.Contains(line, probeName):
			t.Errorf("pipeline permission problem: %s", line)
		}
	}
	if authErrors != 2 {
		t.Errorf("%d authentication errors, want the 2 probes'", authErrors)
	}
}

func lastSeq(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// apiRequest sends a raw JetStream API request; a denied one gets no
// answer, a refused one an error.
func apiRequest(ctx context.Context, nc *nats.Conn, subject, body string) error {
	msg, err := nc.RequestWithContext(ctx, subject, []byte(body))
	if err != nil {
		return err
	}
	if strings.Contains(string(msg.Data), `"error"`) {
		return fmt.Errorf("%s: %s", subject, msg.Data)
	}
	return nil
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
