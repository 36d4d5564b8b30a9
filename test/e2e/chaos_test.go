package e2e

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/epicsim"
)

// The chaos run: three nats-server processes (R3 streams), every Sinew
// service its own process and NATS user, epicsim and fusionsim processes,
// a mixed HL7 load and two Resolute batches while a fault schedule runs.
// The verdict is computed from what the load generator sent and what
// fusionsim holds (/sim/), not from Sinew's counters. docs/reliability.md
// explains why this is equivalent to the compose system for what it tests.
//
// Short run in make test (3,000 messages); `make chaos` sets
// SINEW_CHAOS_MESSAGES=50000 (and SINEW_CHAOS_RATE).

// chaosServices are the Sinew services run as their own processes, each
// killed with SIGKILL once per round of the schedule.
var chaosServices = []string{"ingest", "transform", "loader", "reconciler", "deadletter", "epicsim"}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run: not with -short")
	}
	if os.Getenv("SINEW_CHAOS") == "0" {
		t.Skip("chaos run: SINEW_CHAOS=0")
	}
	c := newChaos(t)
	c.run(envInt("SINEW_CHAOS_MESSAGES", 3000), envInt("SINEW_CHAOS_RATE", 40))
}

// proc is one process of the chaos system, restartable on the same
// addresses; its output accumulates in one log file across restarts.
type proc struct {
	name, bin string
	args, env []string
	uid       int // run as this uid when > 0 (the partitioned node)
	ready     string
	logPath   string
	mu        sync.Mutex
	cmd       *exec.Cmd
	exited    chan struct{}
}

func (p *proc) start(t *testing.T) {
	t.Helper()
	// Errors, not Fatal: restarts run on the fault goroutine.
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Error(err)
		return
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = repoRoot(t) // flows.yaml and deploy/demo, as in the image's WORKDIR
	// Children die with the test process, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if p.uid > 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(p.uid), Gid: uint32(p.uid)}
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Errorf("%s: %v", p.name, err)
		return
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	p.mu.Lock()
	p.cmd, p.exited = cmd, done
	p.mu.Unlock()
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// waitReady polls the process's /readyz (or /healthz of a NATS node). It
// reports with Errorf (faults run on their own goroutine): callers on the
// test's goroutine stop when it failed.
func (p *proc) waitReady(t *testing.T, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		resp, err := http.Get(p.ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		select {
		case <-p.exited:
			b, _ := os.ReadFile(p.logPath)
			t.Errorf("%s exited before ready:\n%s", p.name, tail(string(b), 3000))
			return time.Since(start)
		default:
		}
		if time.Since(start) > d {
			b, _ := os.ReadFile(p.logPath)
			t.Errorf("%s not ready within %v:\n%s", p.name, d, tail(string(b), 3000))
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

type chaos struct {
	t          *testing.T
	dir        string
	nodes      []*proc
	routePorts []string
	svcs       map[string]*proc
	fusion     *fusionProc
	sys        *system // the CLI's view: admin context in dir/nats
	mllpAddr   string
	partition  string // how the partition is made
	ca         string // the cluster's CA (PEM file) when clients and routes speak TLS
	pw         map[string]string
	mu         sync.Mutex
	faults     map[string]int
	recovery   map[string][]time.Duration
}

const partitionUID = 65534 // nobody: the partitioned node's packets are matched by owner

func buildInto(t *testing.T, dir string, pkgs ...string) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
}

func newChaos(t *testing.T) *chaos {
	sweepChaos(t)
	base, err := os.MkdirTemp("", chaosDirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(base, 0o755) // the partitioned node runs as nobody
	mustWrite(t, filepath.Join(base, "owner.pid"), strconv.Itoa(os.Getpid()))
	t.Cleanup(func() {
		if !t.Failed() || os.Getenv("SINEW_CHAOS_KEEP") == "" {
			os.RemoveAll(base)
		} else {
			t.Logf("chaos dir kept: %s", base)
		}
	})
	c := &chaos{t: t, dir: base, svcs: map[string]*proc{}, faults: map[string]int{}, recovery: map[string][]time.Duration{}}
	bin := filepath.Join(base, "bin")
	// nats-server at the version pkg/go.mod pins, through the module proxy.
	buildInto(t, bin, "github.com/nats-io/nats-server/v2",
		"github.com/sinewhq/sinew/services/ingest/cmd/ingest", "github.com/sinewhq/sinew/services/transform/cmd/transform",
		"github.com/sinewhq/sinew/services/loader/cmd/loader", "github.com/sinewhq/sinew/services/reconciler/cmd/reconciler",
		"github.com/sinewhq/sinew/services/deadletter/cmd/deadletter", "github.com/sinewhq/sinew/services/epicsim/cmd/epicsim")
	_ = os.Chmod(filepath.Join(bin, "nats-server"), 0o755)

	// One password per user of the permission table; the CLI's admin
	// context and users.json as sinew up writes them.
	grants := streams.New(streams.DefaultOptions()).Grants()
	pw := map[string]string{}
	var natsEnv []string
	for _, g := range grants {
		var k [12]byte
		_, _ = rand.Read(k[:])
		pw[g.User] = hex.EncodeToString(k[:])
		natsEnv = append(natsEnv, "SINEW_"+strings.ToUpper(g.User)+"_PASSWORD="+pw[g.User])
	}
	natsEnv = append(natsEnv, "SINEW_SYS_PASSWORD=sys-"+pw[streams.UserAdmin])
	conf, err := streams.New(streams.DefaultOptions()).AccountsConf()
	if err != nil {
		t.Fatal(err)
	}
	ndir := filepath.Join(base, "nats")
	mustMkdir(t, ndir)
	mustWrite(t, filepath.Join(ndir, "accounts.conf"), conf)

	// TLS for clients and routes as in deploy/compose, with the certificates
	// its make target generates (deploy/compose/gen-certs.sh, openssl).
	certs := filepath.Join(base, "certs")
	scheme, tlsConf, routeTLS := "nats", "", ""
	if out, err := exec.Command(filepath.Join(repoRoot(t), "deploy", "compose", "gen-certs.sh"), certs).CombinedOutput(); err != nil {
		if os.Getenv("SINEW_REQUIRE_CHAOS_TLS") == "1" {
			t.Fatalf("gen-certs.sh: %v\n%s", err, out)
		}
		t.Logf("chaos: clients and routes in plain text: deploy/compose/gen-certs.sh failed (openssl?): %v\n%s", err, out)
	} else {
		c.ca = filepath.Join(certs, "ca.pem")
		scheme = "tls"
		tlsConf = fmt.Sprintf("tls { cert_file: %q, key_file: %q, ca_file: %q, timeout: 5 }",
			filepath.Join(certs, "server.pem"), filepath.Join(certs, "server-key.pem"), c.ca)
		// Routes authenticate each other by certificate, both sides.
		routeTLS = fmt.Sprintf("tls { cert_file: %q, key_file: %q, ca_file: %q, verify: true, timeout: 5 }",
			filepath.Join(certs, "server.pem"), filepath.Join(certs, "server-key.pem"), c.ca)
	}

	// Three nodes, as deploy/compose/nats/nats-N.conf, on loopback ports.
	var clients, monitors []string
	for range 3 {
		clients, monitors = append(clients, freeAddr(t)), append(monitors, freeAddr(t))
		c.routePorts = append(c.routePorts, portOf(freeAddr(t)))
	}
	var routes []string
	for _, p := range c.routePorts {
		routes = append(routes, "nats-route://127.0.0.1:"+p)
	}
	uid := 0
	c.partition = "none (needs root and iptables)"
	if os.Geteuid() == 0 && exec.Command("iptables", "-L", "OUTPUT", "-n").Run() == nil {
		uid, c.partition = partitionUID, "iptables DROP of node 3's route traffic (owner match on its uid)"
	} else if os.Getenv("SINEW_REQUIRE_CHAOS_PARTITION") == "1" {
		t.Fatal("chaos: the partition fault needs root and iptables, and SINEW_REQUIRE_CHAOS_PARTITION=1")
	} else {
		t.Log("chaos: the partition fault will be SKIPPED: it needs root and iptables (CI runs as root)")
	}
	for i := range 3 {
		name := fmt.Sprintf("n%d", i+1)
		store := filepath.Join(ndir, name)
		mustMkdir(t, store)
		cfg := fmt.Sprintf(`server_name: %s
listen: %s
http: %s
ping_interval: "2s"
ping_max: 3
%s
jetstream { store_dir: %q, max_file_store: 200GB }
cluster {
  name: chaos
  listen: 127.0.0.1:%s
  %s
  routes: [ %s ]
}
include ./accounts.conf
`, name, clients[i], monitors[i], tlsConf, store, c.routePorts[i], routeTLS, strings.Join(routes, "\n    "))
		path := filepath.Join(ndir, name+".conf")
		mustWrite(t, path, cfg)
		n := &proc{name: name, bin: filepath.Join(bin, "nats-server"), args: []string{"-c", path}, env: natsEnv,
			ready: "http://" + monitors[i] + "/healthz", logPath: filepath.Join(base, name+".log")}
		if i == 2 && uid > 0 {
			n.uid = uid
			_ = os.Chown(store, uid, uid)
		}
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		n.start(t)
	}
	t.Cleanup(func() {
		c.heal()
		for _, n := range c.nodes {
			n.kill()
		}
	})
	onInterrupt(t, func() { c.heal(); killUnder(base) })
	for _, n := range c.nodes {
		if n.waitReady(t, scaled(30*time.Second)); t.Failed() {
			t.FailNow()
		}
	}
	var urls []string
	for _, a := range clients {
		urls = append(urls, scheme+"://"+a)
	}
	url := strings.Join(urls, ",")
	b, _ := json.Marshal(pw)
	mustWrite(t, filepath.Join(ndir, "users.json"), string(b))
	ctxJSON, _ := json.Marshal(map[string]string{"url": url, "user": streams.UserAdmin, "password": pw[streams.UserAdmin], "ca": c.ca})
	mustWrite(t, filepath.Join(ndir, streams.UserAdmin+".json"), string(ctxJSON))
	c.sys = &system{natsURL: url, dataDir: base}
	c.pw = pw

	// Provisioning retries until the cluster has a JetStream leader.
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, err := c.sys.cli(t, "streams", "ensure", "--replicas", "3", "--flows", filepath.Join(repoRoot(t), "flows.yaml"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("streams ensure: %v\n%s", err, out)
		}
		time.Sleep(time.Second)
	}

	c.fusion = startFusion(t, "-step", "50ms", "-seed", "14")
	c.mllpAddr = freeAddr(t)
	secret := "chaos-audit-secret-" + pw[streams.UserAdmin]
	drop := filepath.Join(base, "drop")
	for _, name := range chaosServices {
		http := freeAddr(t)
		pre := "SINEW_" + strings.ToUpper(name) + "_"
		env := []string{pre + "NATS_URL=" + url, pre + "NATS_USER=" + name, pre + "NATS_PASSWORD=" + pw[name],
			pre + "HTTP_ADDR=" + http, pre + "TOPOLOGY_REPLICAS=3", pre + "TOPOLOGY_RETRY_BASE=500ms",
			pre + "TOPOLOGY_LOAD_RETRY_BASE=1s", "SINEW_AUDIT_SECRET=" + secret}
		if c.ca != "" {
			env = append(env, pre+"NATS_TLS_CA_FILE="+c.ca)
		}
		switch name {
		case "ingest":
			env = append(env, pre+"MLLP_ADDR="+c.mllpAddr, pre+"DROP_DIR="+drop, pre+"FLOWS_FILE=flows.yaml")
		case "loader":
			cb := freeAddr(t)
			env = append(env, pre+"FUSION_URL="+c.fusion.url, pre+"FUSION_TIMEOUT=5s", pre+"CALLBACK_ADDR="+cb,
				pre+"CALLBACK_URL=http://"+cb+"/fusion/callback", pre+"POLL_INTERVAL=100ms", pre+"MAX_POLL_INTERVAL=500ms",
				pre+"SETTLE_TIME=3s", pre+"READ_LAG=5s")
		case "reconciler":
			env = append(env, pre+"FUSION_URL="+c.fusion.url, pre+"INVENTORY_EVERY=2s", pre+"READ_LAG=10s", pre+"POLL_INTERVAL=200ms")
		case "epicsim":
			// epicsim's own synthetic feed, beside the counted load.
			env = append(env, pre+"MLLP_TARGET="+c.mllpAddr, pre+"TRAFFIC_ENABLED=true", pre+"TRAFFIC_RATE=5",
				pre+"TRAFFIC_FACILITY=STMARYS", pre+"TRAFFIC_SEED=77", pre+"MICRO_INTERVAL=0s")
		}
		p := &proc{name: name, bin: filepath.Join(bin, name), env: env, ready: "http://" + http + "/readyz",
			logPath: filepath.Join(base, name+".log")}
		c.svcs[name] = p
		p.start(t)
		t.Cleanup(p.kill)
	}
	for _, name := range chaosServices {
		if c.svcs[name].waitReady(t, scaled(60*time.Second)); t.Failed() {
			t.FailNow()
		}
	}
	return c
}

// tlsOpts verify the cluster's servers when they speak TLS.
func (c *chaos) tlsOpts() []nats.Option {
	if c.ca == "" {
		return nil
	}
	return []nats.Option{nats.RootCAs(c.ca)}
}

// js is the admin's JetStream on the cluster (over TLS when it speaks it).
func (c *chaos) js() jetstream.JetStream {
	nc, err := nats.Connect(c.sys.natsURL, append(c.tlsOpts(), c.sys.admin(c.t))...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	return js
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func mustMkdir(t *testing.T, d string) {
	t.Helper()
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// partitionRules cut node 3 from the other two: packets to its route
// port, from its route port, and from its uid to theirs are dropped.
func (c *chaos) partitionRules() [][]string {
	r1, r2, r3 := c.routePorts[0], c.routePorts[1], c.routePorts[2]
	// Tagged with this process's pid: a later run removes them if this one
	// dies before healing (sweepChaos).
	tag := []string{"-m", "comment", "--comment", chaosRuleTag(os.Getpid()), "-j", "DROP"}
	return [][]string{
		append([]string{"OUTPUT", "-p", "tcp", "--dport", r3}, tag...),
		append([]string{"OUTPUT", "-p", "tcp", "--sport", r3}, tag...),
		append([]string{"OUTPUT", "-p", "tcp", "-m", "owner", "--uid-owner", fmt.Sprint(partitionUID), "-m", "multiport", "--dports", r1 + "," + r2}, tag...),
	}
}

func (c *chaos) cut() error {
	for _, r := range c.partitionRules() {
		if out, err := exec.Command("iptables", append([]string{"-I"}, r...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("iptables: %v: %s", err, out)
		}
	}
	return nil
}

func (c *chaos) heal() {
	if c.nodes == nil || c.nodes[2].uid == 0 {
		return
	}
	for _, r := range c.partitionRules() {
		for exec.Command("iptables", append([]string{"-D"}, r...)...).Run() == nil {
		}
	}
}

func (c *chaos) count(kind string, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults[kind]++
	if d > 0 {
		c.recovery[kind] = append(c.recovery[kind], d)
	}
}

// clusterCurrent waits until every stream's replicas are current: the
// recovery time of a node that was stopped or cut off.
func (c *chaos) clusterCurrent(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c.allCurrent() {
			return true
		}
		time.Sleep(500 * time.Millisecond)
	}
	return false
}

// routes is node i's route count (its /routez); -1 when it cannot say.
func (c *chaos) routes(i int) int {
	resp, err := http.Get(strings.TrimSuffix(c.nodes[i].ready, "/healthz") + "/routez")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var rz struct {
		NumRoutes int `json:"num_routes"`
	}
	if json.NewDecoder(resp.Body).Decode(&rz) != nil {
		return -1
	}
	return rz.NumRoutes
}

// allCurrent asks each node's /healthz, which (without js-enabled-only)
// answers 200 only when the node sees a meta leader and every stream and
// consumer replica it holds is current.
func (c *chaos) allCurrent() bool {
	for _, n := range c.nodes {
		resp, err := http.Get(n.ready)
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
	}
	return true
}

// fault runs one fault to its end (synchronously: node faults never
// overlap, so the cluster keeps its quorum of two).
func (c *chaos) fault(kind string, rnd *mrand.Rand) {
	t := c.t
	switch {
	case strings.HasPrefix(kind, "kill:"):
		p := c.svcs[strings.TrimPrefix(kind, "kill:")]
		p.kill()
		time.Sleep(time.Duration(200+rnd.IntN(1800)) * time.Millisecond)
		p.start(t)
		c.count("kill -9 service (to ready)", p.waitReady(t, scaled(60*time.Second)))
	case kind == "node-stop":
		n := c.nodes[1]
		n.kill()
		time.Sleep(5 * time.Second)
		start := time.Now()
		n.start(t)
		n.waitReady(t, scaled(60*time.Second))
		if d := scaled(120 * time.Second); !c.clusterCurrent(d) {
			t.Errorf("cluster not current within %v of node %s's restart", d, n.name)
		}
		c.count("NATS node stopped (SIGKILL) and restarted", time.Since(start))
	case kind == "partition":
		if c.nodes[2].uid == 0 {
			t.Log("partition skipped: " + c.partition)
			return
		}
		if err := c.cut(); err != nil {
			t.Errorf("partition: %v", err)
			return
		}
		time.Sleep(10 * time.Second)
		// The cut took: node 3 holds no route to the others.
		if n := c.routes(2); n != 0 {
			t.Errorf("partition not effective: node 3 still has %d routes", n)
		}
		start := time.Now()
		c.heal()
		for d := scaled(120 * time.Second); time.Since(start) < d && c.routes(2) == 0; {
			time.Sleep(100 * time.Millisecond)
		}
		if d := scaled(120 * time.Second); !c.clusterCurrent(d) {
			t.Errorf("cluster not current within %v of healing the partition", d)
		}
		c.count("NATS node partitioned (10 s) and healed", time.Since(start))
	case kind == "mllp-midframe":
		// A sender that dies mid-frame: half a message, then the socket closes.
		conn, err := net.DialTimeout("tcp", c.mllpAddr, 2*time.Second)
		if err == nil {
			msg := dispense(fmt.Sprintf("HALF%06d", rnd.IntN(1e6)))
			_, _ = conn.Write(append([]byte{0x0b}, msg[:len(msg)/2]...))
			time.Sleep(100 * time.Millisecond)
			conn.Close()
		}
		c.count("MLLP connection dropped mid-frame", 0)
	default: // fusionsim faults: count-limited bursts, so each clears itself
		body := map[string]string{
			"fusion-5xx":     `{"http":[{"status":503,"method":"POST","count":3},{"status":500,"after":true,"method":"POST","count":2}]}`,
			"fusion-429":     `{"http":[{"status":429,"retryAfter":"1s","count":4}]}`,
			"fusion-timeout": `{"http":[{"timeout":true,"hang":"7s","method":"POST","count":1}]}`,
			"fusion-slow":    `{"step":"1500ms"}`,
			"fusion-lost-cb": `{"loseCallbacks":2}`,
		}[kind]
		c.fusion.faults(t, body)
		time.Sleep(8 * time.Second)
		c.fusion.faults(t, `{}`)
		c.count(map[string]string{
			"fusion-5xx": "fusionsim 503 ×3 + 500-after-taking ×2", "fusion-429": "fusionsim 429 ×4",
			"fusion-timeout": "fusionsim timeout (hang 7 s)", "fusion-slow": "fusionsim slow ESS jobs (1.5 s steps, 8 s)",
			"fusion-lost-cb": "fusionsim lost callbacks ×2",
		}[kind], c.fusionResumes(60*time.Second))
	}
}

// fusionResumes is how long after a fusionsim fault is cleared Fusion takes
// a new inventory row; 0 when none arrives within d (no load left). Only a
// figure, not a verdict: d is not stretched by the load, so a quiet end of
// the run costs at most d per fault.
func (c *chaos) fusionResumes(d time.Duration) time.Duration {
	start := time.Now()
	first := -1
	for time.Since(start) < d {
		var n struct{ Rows int }
		if getJSON(c.fusion.url+"/sim/inventory/count", &n) == nil {
			if first < 0 {
				first = n.Rows
			} else if n.Rows > first {
				return time.Since(start)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0
}

// getJSON decodes url's answer into out (for the fault goroutine, which
// may not call t.Fatal).
func getJSON(url string, out any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

// load is the counted feed: dispenses with known references and epicsim's
// generator (every HL7 flow), each resent until answered AA.
type load struct {
	msgs     [][]byte
	refs     map[string]bool // RDS references that must be in Fusion once
	poisoned int             // dispenses with an NDC no crosswalk maps
	mrns     map[string]bool
	dobs     map[string]bool
}

func makeLoad(t *testing.T, n int) *load {
	g := epicsim.NewGenerator(1414, "STMARYS")
	g.UnmappedRate = 0.02
	l := &load{refs: map[string]bool{}, mrns: map[string]bool{}, dobs: map[string]bool{}}
	now := time.Now()
	for i := range n {
		var msg []byte
		if i%2 == 1 {
			rx := fmt.Sprintf("CH%08d", i)
			msg = dispense(rx)
			l.refs[rx] = true
		} else {
			msg, _ = g.Next(now)
		}
		m, err := hl7.Parse(msg)
		if err != nil {
			t.Fatal(err)
		}
		if mrn := m.Get("PID-3-1"); mrn != "" {
			l.mrns[mrn], l.dobs[m.Get("PID-7")] = true, true
		}
		if strings.HasPrefix(m.Get("MSH-9"), "RDS") && i%2 == 0 {
			if strings.Contains(m.Get("RXD-2-1"), "0000-0000-00") {
				l.poisoned++
			} else {
				l.refs[m.Get("ORC-2")] = true
			}
		}
		l.msgs = append(l.msgs, msg)
	}
	return l
}

// send delivers every message, resending until AA over a new connection
// when the old one fails (ingest killed, NATS away): at-least-once from
// the sender, exactly-once is Sinew's job.
func (c *chaos) send(l *load, rate int, senders int) (resent int64) {
	var next atomic.Int64
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	tokens := make(chan struct{}, senders)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-tick.C:
				select {
				case tokens <- struct{}{}:
				default:
				}
			case <-stop:
				return
			}
		}
	}()
	defer close(stop)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			ctx := context.Background()
			var cl *mllp.Client
			for {
				i := next.Add(1) - 1
				if int(i) >= len(l.msgs) {
					break
				}
				<-tokens
				for try := 0; ; try++ {
					if cl == nil {
						var err error
						cl, err = mllp.Dial(ctx, mllp.ClientConfig{Addr: c.mllpAddr, Match: hl7.AckMatches, AckTimeout: 10 * time.Second})
						if err != nil {
							time.Sleep(200 * time.Millisecond)
							continue
						}
					}
					ack, err := cl.Send(ctx, l.msgs[i])
					if err == nil {
						if a, perr := hl7.Parse(ack); perr == nil && a.Get("MSA-1") == hl7.AA {
							break
						}
					}
					atomic.AddInt64(&resent, 1)
					cl.Close()
					cl = nil
					time.Sleep(200 * time.Millisecond)
				}
			}
			if cl != nil {
				cl.Close()
			}
		})
	}
	wg.Wait()
	return resent
}

func (c *chaos) run(n, rate int) {
	t := c.t
	l := makeLoad(t, n)
	loadTime := time.Duration(n/rate) * time.Second
	rnd := mrand.New(mrand.NewPCG(14, uint64(n)))
	var kinds []string
	rounds := 1 + n/25000 // the long run repeats the schedule
	for range rounds {
		for _, s := range chaosServices {
			kinds = append(kinds, "kill:"+s)
		}
		kinds = append(kinds, "node-stop", "partition", "fusion-5xx", "fusion-5xx", "fusion-429", "fusion-429",
			"fusion-timeout", "fusion-slow", "fusion-lost-cb", "fusion-lost-cb", "mllp-midframe", "mllp-midframe")
	}
	rnd.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	t.Logf("chaos: %d messages at %d/s (~%v), %d faults, partition by %s", n, rate, loadTime, len(kinds), c.partition)

	start := time.Now()
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		gap := loadTime / time.Duration(len(kinds)+1)
		for i, k := range kinds {
			time.Sleep(time.Duration(float64(gap) * (0.5 + rnd.Float64())))
			t.Logf("%6.1fs fault %d/%d: %s", time.Since(start).Seconds(), i+1, len(kinds), k)
			c.fault(k, rnd)
		}
	}()
	// Two Resolute batches, dropped while the faults run.
	batches := []string{"HB-CHAOS-1", "HB-CHAOS-2"}
	go func() {
		time.Sleep(loadTime / 3)
		drop(t, c.dir, "hb_chaos_1.txt", genDay(t, batches[0], 31))
		time.Sleep(loadTime / 3)
		drop(t, c.dir, "hb_chaos_2.txt", genDay(t, batches[1], 32))
	}()
	resent := c.send(l, rate, envInt("SINEW_CHAOS_SENDERS", 4))
	sendTime := time.Since(start)
	<-faultsDone
	c.fusion.faults(t, `{}`)
	// Epic stops sending (epicsim's own feed would keep each day's
	// report pending on the commands of its last seconds).
	c.svcs["epicsim"].kill()
	resp, err := http.Post(c.fusion.url+"/sim/release", "application/json", nil)
	if err == nil {
		resp.Body.Close()
	}
	t.Logf("load sent in %v (%d resends), faults done at %v", sendTime, resent, time.Since(start))

	// The verdict, from fusionsim's side.
	var lost, doubled int
	var missing []string
	// Waits while Fusion keeps taking the references (progress), and gives
	// up only after a stall as long as the machine's load makes 3 minutes.
	settle := time.Now()
	lastProgress, best, lastLog := time.Now(), -1, time.Now()
	for {
		held := map[string]int{}
		var rows []struct{ TransactionReference string }
		c.fusion.get(t, "/sim/inventory", &rows)
		for _, r := range rows {
			held[r.TransactionReference]++
		}
		lost, doubled, missing = 0, 0, missing[:0]
		for ref := range l.refs {
			switch held[ref] {
			case 0:
				lost++
				if len(missing) < 10 {
					missing = append(missing, ref)
				}
			case 1:
			default:
				doubled++
			}
		}
		if best < 0 || lost < best {
			best, lastProgress = lost, time.Now()
		}
		if lost == 0 || time.Since(lastProgress) > scaled(3*time.Minute) {
			break
		}
		if time.Since(lastLog) > 30*time.Second {
			t.Logf("settling: %d of %d counted references not yet in Fusion", lost, len(l.refs))
			lastLog = time.Now()
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("fusion holds the counted references after %v of settling", time.Since(settle))
	var dups []json.RawMessage
	c.fusion.get(t, "/sim/inventory/duplicates", &dups)
	if lost > 0 || doubled > 0 || len(dups) > 0 {
		t.Errorf("lost %d (e.g. %v), doubled %d, fusion duplicates %d", lost, missing, doubled, len(dups))
	}
	for _, b := range batches {
		waitReconFor(t, c.sys, b, scaled(5*time.Minute))
	}
	for _, g := range c.fusion.imports(t) {
		if g.Posted != 1 {
			t.Errorf("GL group %d posted %d times", g.GroupID, g.Posted)
			doubled++
		}
	}
	waitFor(t, "every inventory flow reconciled", scaled(5*time.Minute), func() (bool, string) { return reconPasses(t, c.sys) })

	// Every poisoned message in the DLQ with its reason, nothing else there.
	out, err := c.sys.cli(t, "dlq", "list", "--json")
	if err != nil {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	unmapped, other := 0, 0
	codes := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var dl struct {
			Reason     string
			ReasonCode string `json:"reason_code"`
		}
		if json.Unmarshal([]byte(line), &dl) != nil {
			continue
		}
		codes[cmp.Or(dl.ReasonCode, "(no code)")]++
		switch {
		case strings.Contains(dl.Reason, "unmapped item code"):
			unmapped++
		default:
			other++
			t.Logf("dead letter: %s", line)
		}
	}
	if unmapped < l.poisoned || other > 0 {
		t.Errorf("DLQ: %d unmapped (sent %d poisoned, epicsim's own feed adds none), %d others", unmapped, l.poisoned, other)
	}

	// The PHI scan over everything Sinew left outside the message stores.
	hits := c.phiScan(l)
	if hits > 0 {
		t.Errorf("PHI scan: %d hits", hits)
	}

	// No service user reads outside its grants on the cluster either.
	tlsOpts := c.tlsOpts()
	admin, err := nats.Connect(c.sys.natsURL, append(tlsOpts, nats.UserInfo(streams.UserAdmin, c.pw[streams.UserAdmin]))...)
	if err != nil {
		t.Fatal(err)
	}
	topo := streams.New(streams.DefaultOptions())
	probes := 0
	for _, g := range topo.Grants() {
		if !g.Admin {
			probes += natstest.ProbeReads(t, c.sys.natsURL, "read-probe", topo, g, c.pw[g.User], admin, tlsOpts...)
		}
	}
	admin.Close()
	t.Logf("read probes on the cluster: %d reads outside the grants, all refused", probes)

	c.mu.Lock()
	defer c.mu.Unlock()
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nmessages sent (counted)  %d (%d RDS references checked in Fusion, %d poisoned), %d resends\n", n, len(l.refs), l.poisoned, resent)
	fmt.Fprintf(&sb, "resolute batches         %d\nlost %d, doubled %d, DLQ unmapped %d, PHI hits %d\n", len(batches), lost, doubled, unmapped, hits)
	fmt.Fprintf(&sb, "reconciled               %v, every inventory flow's day: %v\n", batches, !t.Failed())
	fmt.Fprintf(&sb, "partition                %s\n", c.partition)
	fmt.Fprintf(&sb, "tls                      %v (clients and routes)\n", c.ca != "")
	for _, code := range slices.Sorted(maps.Keys(codes)) {
		fmt.Fprintf(&sb, "DLQ reason %-35s %d\n", code, codes[code])
	}
	fmt.Fprintf(&sb, "machine load factor at the end %.1f (1-minute load average per CPU)\n", loadFactor())
	for _, k := range slices.Sorted(maps.Keys(c.faults)) {
		fmt.Fprintf(&sb, "fault %-50s ×%-3d recovery %s\n", k, c.faults[k], recoveryStats(c.recovery[k]))
	}
	fmt.Fprintf(&sb, "total %v\n", time.Since(start).Round(time.Second))
	t.Log(sb.String())
	if p := os.Getenv("SINEW_CHAOS_REPORT"); p != "" {
		_ = os.WriteFile(p, []byte(sb.String()), 0o644)
	}
}

// recoveryStats is "median M max X (n measured)" of ds.
func recoveryStats(ds []time.Duration) string {
	if len(ds) == 0 {
		return "not measured"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
	return fmt.Sprintf("median %v max %v (%d measured)", r(s[len(s)/2]), r(s[len(s)-1]), len(s))
}

func waitReconFor(t *testing.T, s *system, batch string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		out, err := s.cli(t, "recon", "report", "--flow", "resolute-gl", "--batch", batch)
		if err == nil && strings.Contains(out, "batch "+batch+": PASS ") {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("batch %s not reconciled within %v (err %v):\n%s", batch, d, err, out)
			return
		}
		time.Sleep(time.Second)
	}
}

// TestChaosRescan reruns the verdict's DLQ check, the PHI scan and the read
// probes on a chaos system left running (SINEW_CHAOS_RESCAN_DIR: its
// directory; SINEW_CHAOS_MESSAGES: the run's size, for the patients sent).
func TestChaosRescan(t *testing.T) {
	dir := os.Getenv("SINEW_CHAOS_RESCAN_DIR")
	if dir == "" {
		t.Skip("SINEW_CHAOS_RESCAN_DIR not set")
	}
	var ctxJSON struct{ URL, CA string }
	b, err := os.ReadFile(filepath.Join(dir, "nats", "admin.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ctxJSON); err != nil {
		t.Fatal(err)
	}
	pw := map[string]string{}
	b, err = os.ReadFile(filepath.Join(dir, "nats", "users.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &pw); err != nil {
		t.Fatal(err)
	}
	c := &chaos{t: t, dir: dir, svcs: map[string]*proc{}, sys: &system{natsURL: ctxJSON.URL, dataDir: dir}, pw: pw, ca: ctxJSON.CA}
	// The services' metrics addresses, from their environment.
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, e := range procs {
		exe, _ := os.Readlink(filepath.Join(filepath.Dir(e), "exe"))
		env, err := os.ReadFile(e)
		if err != nil || !strings.HasPrefix(exe, dir) {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			k, v, _ := strings.Cut(kv, "=")
			if strings.HasPrefix(k, "SINEW_") && strings.HasSuffix(k, "_HTTP_ADDR") {
				name := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(k, "SINEW_"), "_HTTP_ADDR"))
				c.svcs[name] = &proc{name: name, ready: "http://" + v + "/readyz"}
			}
		}
	}
	l := makeLoad(t, envInt("SINEW_CHAOS_MESSAGES", 3000))
	out, err := c.sys.cli(t, "dlq", "list", "--json")
	if err != nil {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	unmapped, other := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var dl struct{ Reason string }
		if json.Unmarshal([]byte(line), &dl) != nil {
			continue
		}
		if strings.Contains(dl.Reason, "unmapped item code") {
			unmapped++
		} else {
			other++
			t.Logf("dead letter: %s", line)
		}
	}
	t.Logf("DLQ: %d unmapped (%d poisoned sent), %d others", unmapped, l.poisoned, other)
	if unmapped < l.poisoned || other > 0 {
		t.Errorf("DLQ: %d unmapped, %d poisoned sent, %d others", unmapped, l.poisoned, other)
	}
	if hits := c.phiScan(l); hits > 0 {
		t.Errorf("PHI scan: %d hits", hits)
	}
	admin, err := nats.Connect(c.sys.natsURL, append(c.tlsOpts(), nats.UserInfo(streams.UserAdmin, pw[streams.UserAdmin]))...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	topo := streams.New(streams.DefaultOptions())
	n := 0
	for _, g := range topo.Grants() {
		if !g.Admin {
			n += natstest.ProbeReads(t, c.sys.natsURL, "read-probe", topo, g, pw[g.User], admin, c.tlsOpts()...)
		}
	}
	t.Logf("read probes on the cluster: %d reads outside the grants, all refused", n)
}
