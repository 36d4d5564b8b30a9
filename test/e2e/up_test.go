package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/streams"
)

// sinewBin is the binary under test and fusionsimBin the Fusion
// simulator, built once by TestMain.
var sinewBin, fusionsimBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sinew-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// $SINEW_E2E_SINEW_BIN and $SINEW_E2E_FUSIONSIM_BIN run prebuilt
	// binaries instead: two builds compared side by side in one benchmark run.
	sinewBin, err = binary(dir, "SINEW_E2E_SINEW_BIN", "sinew", "github.com/sinewhq/sinew/cmd/sinew")
	if err == nil {
		fusionsimBin, err = binary(dir, "SINEW_E2E_FUSIONSIM_BIN", "fusionsim", "github.com/sinewhq/sinew/services/fusionsim/cmd/fusionsim")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary is $env when set, else pkg built into dir.
func binary(dir, env, name, pkg string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return filepath.Abs(p)
	}
	out := filepath.Join(dir, name)
	build := exec.Command("go", "build", "-o", out, pkg)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("building %s: %w", name, err)
	}
	return out, nil
}

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// freeAddr returns a free loopback address for a process the test starts,
// and may restart on the same address. The port comes from below the kernel's
// ephemeral range: a port from ":0" is ephemeral, and once the first process
// lets it go any outgoing connection on the machine can take it, which made a
// restart fail with "address already in use".
func freeAddr(t testing.TB) string {
	t.Helper()
	lo, hi := 20000, ephemeralLow()-1
	if hi <= lo {
		lo, hi = 10000, 19999
	}
	handedMu.Lock()
	defer handedMu.Unlock()
	for range 1000 {
		port := lo + rand.IntN(hi-lo+1)
		if handed[port] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		handed[port] = true
		return ln.Addr().String()
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

var (
	handedMu sync.Mutex
	handed   = map[int]bool{} // ports given out by this test binary
)

// ephemeralLow is the first port of the kernel's ephemeral range (Linux;
// 32768 elsewhere, the common default).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// system is one `sinew up` process.
type system struct {
	// bin is the sinew binary (sinewBin unless upFrom was given another).
	bin      string
	cmd      *exec.Cmd
	natsURL  string
	dataDir  string
	httpAddr string
	log      *bytes.Buffer
	exited   chan error
}

type addrs struct{ nats, http, mllp, fusion string }

func newAddrs(t *testing.T) addrs {
	return addrs{nats: freeAddr(t), http: freeAddr(t), mllp: freeAddr(t)}
}

// up starts `sinew up --no-traffic` and waits for /readyz = 200; it fails
// the test if that takes longer than 20 s.
func up(t *testing.T, dataDir string, a addrs) (*system, time.Duration) {
	t.Helper()
	return upWith(t, dataDir, a, nil, nil)
}

// upWith is up with more flags and environment variables.
func upWith(t testing.TB, dataDir string, a addrs, flags, env []string) (*system, time.Duration) {
	t.Helper()
	return upFrom(t, sinewBin, repoRoot(t), dataDir, a, flags, env)
}

// upFrom is upWith running binary bin in directory root (a built copy of
// the repository).
func upFrom(t testing.TB, bin, root, dataDir string, a addrs, flags, env []string) (*system, time.Duration) {
	t.Helper()
	s := &system{bin: bin, natsURL: "nats://" + a.nats, dataDir: dataDir, httpAddr: a.http, log: &bytes.Buffer{}, exited: make(chan error, 1)}
	if a.fusion == "" {
		a.fusion = freeAddr(t)
	}
	s.cmd = exec.Command(bin, append([]string{"up", "--no-traffic", "--data-dir", dataDir,
		"--nats-addr", a.nats, "--http-addr", a.http, "--mllp-addr", a.mllp, "--fusion-addr", a.fusion}, flags...)...)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.Dir = root // as make run: flows.yaml and deploy/demo are found there
	start := time.Now()
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			t.Logf("sinew up log:\n%s", s.log.String())
		}
	})
	for {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("not ready within 20 s")
		}
		select {
		case err := <-s.exited:
			t.Fatalf("sinew up exited before ready: %v", err)
		default:
		}
		resp, err := http.Get("http://" + a.http + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, time.Since(start)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGINT and expects a clean exit.
func (s *system) stop(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		if err != nil {
			t.Fatalf("sinew up exited with %v after SIGINT", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("sinew up did not stop within 40 s of SIGINT")
	}
}

// cli runs a sinew verb against the system, as its admin (the CLI reads
// the credential sinew up keeps in the data dir).
func (s *system) cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := s.bin
	if bin == "" {
		bin = sinewBin
	}
	cmd := exec.Command(bin, append(args, "--nats", s.natsURL, "--data-dir", s.dataDir)...)
	cmd.Env = append(os.Environ(), "SINEW_ACTOR=e2e-operator")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// natsUser is the nats.Option that authenticates as user (admin, ingest,
// ...) with the password sinew up keeps in <data dir>/nats/users.json.
func (s *system) natsUser(t testing.TB, user string) nats.Option {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dataDir, "nats", "users.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pw map[string]string
	if err := json.Unmarshal(b, &pw); err != nil {
		t.Fatal(err)
	}
	if pw[user] == "" {
		t.Fatalf("no NATS user %s in users.json", user)
	}
	// A service user subscribes only under its own inbox prefix.
	return func(o *nats.Options) error {
		o.User, o.Password = user, pw[user]
		if user != streams.UserAdmin {
			o.InboxPrefix = streams.InboxPrefix(user)
		}
		return nil
	}
}

// admin is natsUser(t, "admin").
func (s *system) admin(t testing.TB) nats.Option { return s.natsUser(t, "admin") }

func (s *system) js(t *testing.T) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(s.natsURL, s.admin(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

var designStreams = []string{"HL7_IN", "FHIR_IN", "BATCH_IN", "FUSION_CMD", "EPIC_CMD", "RESULTS", "RECON", "AUDIT", "ADVISORIES", "DLQ"}

func TestUpBecomesReadyListsStreamsAndResumes(t *testing.T) {
	dir := t.TempDir()
	a := newAddrs(t)
	s, took := up(t, dir, a)
	t.Logf("ready after %v", took)
	ctx := context.Background()
	js := s.js(t)

	var names []string
	for n := range js.StreamNames(ctx).Name() {
		names = append(names, n)
	}
	for _, want := range designStreams {
		if !slices.Contains(names, want) {
			t.Errorf("stream %s missing from %v", want, names)
		}
	}
	out, err := s.cli(t, "streams", "ls")
	if err != nil {
		t.Fatalf("sinew streams ls: %v\n%s", err, out)
	}
	for _, want := range designStreams {
		if !strings.Contains(out, want) {
			t.Errorf("sinew streams ls lacks %s:\n%s", want, out)
		}
	}
	if _, err := js.Publish(ctx, "recon.resolute-gl.tier1", []byte("row-1"), jetstream.WithMsgID("row-1")); err != nil {
		t.Fatal(err)
	}
	s.stop(t)

	// A second run on the same data dir resumes: the data is there and the
	// duplicate window still holds.
	s2, _ := up(t, dir, a)
	js2 := s2.js(t)
	ack, err := js2.Publish(ctx, "recon.resolute-gl.tier1", []byte("row-1"), jetstream.WithMsgID("row-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !ack.Duplicate || ack.Sequence != 1 {
		t.Errorf("after restart: %+v, want a duplicate of seq 1", ack)
	}
	st, err := js2.Stream(ctx, "RECON")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("RECON holds %d messages after restart, want 1", info.State.Msgs)
	}
	s2.stop(t)
}

func TestCrashedConsumerDeadLetteredReplayedOnceAndAudited(t *testing.T) {
	s, _ := up(t, t.TempDir(), newAddrs(t))
	ctx := context.Background()
	js := s.js(t)
	ack, err := js.Publish(ctx, "epic.cmd.worker-sync.mfn", []byte("MFN^M02 worker 4711"), jetstream.WithMsgID("mfn-4711"))
	if err != nil {
		t.Fatal(err)
	}
	// A consumer whose handler keeps dying: three deliveries, never acknowledged.
	cons, err := js.CreateOrUpdateConsumer(ctx, "EPIC_CMD", jetstream.ConsumerConfig{
		Durable: "crashy", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 300 * time.Millisecond, MaxDeliver: 3,
		FilterSubject: "epic.cmd.worker-sync.>",
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if b, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second)); err == nil {
			for range b.Messages() {
			}
		}
	}

	type letter struct {
		Seq       uint64 `json:"seq"`
		Kind      string `json:"kind"`
		Subject   string `json:"subject"`
		StreamSeq uint64 `json:"stream_seq"`
		Replay    *struct {
			Actor string `json:"actor"`
		} `json:"replay"`
	}
	list := func() []letter {
		out, err := s.cli(t, "dlq", "list", "--json")
		if err != nil {
			t.Fatalf("dlq list: %v\n%s", err, out)
		}
		var ls []letter
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line == "" {
				continue
			}
			var l letter
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("dlq list line %q: %v", line, err)
			}
			ls = append(ls, l)
		}
		return ls
	}
	var ls []letter
	deadline := time.Now().Add(15 * time.Second)
	for ls = list(); len(ls) == 0; ls = list() {
		if time.Now().After(deadline) {
			t.Fatal("no dead letter after the consumer gave up")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(ls) != 1 || ls[0].Kind != "max-deliveries" || ls[0].Subject != "epic.cmd.worker-sync.mfn" || ls[0].StreamSeq != ack.Sequence {
		t.Fatalf("dead letters %+v", ls)
	}
	seq := fmt.Sprint(ls[0].Seq)
	if out, err := s.cli(t, "dlq", "show", seq); err != nil || !strings.Contains(out, "max deliveries") {
		t.Errorf("dlq show: %v\n%s", err, out)
	}

	// A healthy consumer now; replay delivers the message to it once.
	healthy, err := js.CreateOrUpdateConsumer(ctx, "EPIC_CMD", jetstream.ConsumerConfig{
		Durable: "healthy", AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverNewPolicy,
		FilterSubject: "epic.cmd.worker-sync.>",
	})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := s.cli(t, "dlq", "replay", seq, "--reason", "worker fixed in Fusion"); err != nil {
		t.Fatalf("dlq replay: %v\n%s", err, out)
	}
	if out, err := s.cli(t, "dlq", "replay", seq, "--reason", "again"); err == nil || !strings.Contains(out, "already replayed") {
		t.Errorf("second replay succeeded:\n%s", out)
	}
	got := 0
	b, err := healthy.Fetch(10, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		got++
		if string(m.Data()) != "MFN^M02 worker 4711" || m.Headers().Get("sinew-replay-of") != seq {
			t.Errorf("replayed %q headers %v", m.Data(), m.Headers())
		}
		_ = m.Ack()
	}
	if got != 1 {
		t.Errorf("replay delivered %d messages, want 1", got)
	}
	if ls = list(); ls[0].Replay == nil || ls[0].Replay.Actor != "e2e-operator" {
		t.Errorf("replay not recorded: %+v", ls[0])
	}

	out, err := s.cli(t, "audit", "verify")
	if err != nil || !strings.Contains(out, "chains intact") {
		t.Errorf("audit verify: %v\n%s", err, out)
	}
	out, err = s.cli(t, "audit", "list")
	if err != nil || !strings.Contains(out, `"actor":"e2e-operator"`) || !strings.Contains(out, `"action":"replay"`) {
		t.Errorf("audit list lacks the replay: %v\n%s", err, out)
	}
	s.stop(t)
}
