package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/streams"
)

// composeSys is one compose project of deploy/compose/docker-compose.yml.
type composeSys struct {
	t       *testing.T
	cmd     []string // docker compose or docker-compose, with -f and -p
	env     []string
	natsURL string // tls://admin:pw@127.0.0.1:port
	ca      string
}

// composeCommand is `docker compose` or `docker-compose` when a Docker
// engine answers; the test skips (fails with SINEW_REQUIRE_DOCKER=1) when
// there is none.
func composeCommand(t *testing.T) []string {
	t.Helper()
	need := os.Getenv("SINEW_REQUIRE_DOCKER") == "1"
	skip := func(why string) {
		if need {
			t.Fatalf("SINEW_REQUIRE_DOCKER=1 but %s", why)
		}
		t.Skipf("no Docker engine (%s): the compose system is not tested; SINEW_REQUIRE_DOCKER=1 makes this fail", why)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		skip("no docker client")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		skip("docker info: " + strings.TrimSpace(string(out)))
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	skip("neither docker compose nor docker-compose")
	return nil
}

// upCompose builds the images (make images certs compose-env, reusing the
// Go and Docker caches), starts a uniquely named project with random host
// ports and takes it down with its volumes when the test ends, pass or fail.
func upCompose(t *testing.T, extraEnv ...string) *composeSys {
	t.Helper()
	cmd := composeCommand(t)
	root := repoRoot(t)
	dir := filepath.Join(root, "deploy", "compose")
	// One image tag per checkout: worktrees side by side on one engine do
	// not overwrite each other's images; a rerun reuses its build cache.
	h := fnv.New32a()
	h.Write([]byte(root))
	env := append(os.Environ(), fmt.Sprintf("SINEW_IMAGE_TAG=e2e-%08x", h.Sum32()),
		// 127.0.0.1::PORT: the engine picks free host ports (helpers and CI run side by side).
		"SINEW_PUBLISH_NATS=127.0.0.1:", "SINEW_PUBLISH_MLLP=127.0.0.1:", "SINEW_PUBLISH_FUSION=127.0.0.1:", "SINEW_PUBLISH_CONSOLE=127.0.0.1:")
	env = append(env, extraEnv...)
	start := time.Now()
	mk := exec.Command("make", "-C", root, "images", "certs", "compose-env")
	mk.Env = env
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make images certs compose-env: %v\n%s", err, out)
	}
	t.Logf("images built in %s", time.Since(start).Round(time.Second))
	project := fmt.Sprintf("sinewe2e%d", os.Getpid())
	c := &composeSys{t: t, cmd: append(cmd, "-f", filepath.Join(dir, "docker-compose.yml"), "-p", project), env: env,
		ca: filepath.Join(dir, "certs", "ca.pem")}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.run(2*time.Minute, "logs", "--no-color", "--tail", "40")
			t.Logf("compose logs:\n%s", out)
		}
		if out, err := c.run(3*time.Minute, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
	})
	start = time.Now()
	if out, err := c.run(5*time.Minute, "up", "-d"); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}
	t.Logf("compose up (every container healthy, in health order) in %s", time.Since(start).Round(time.Second))
	pw := envFileValue(t, filepath.Join(dir, ".env"), "SINEW_ADMIN_PASSWORD")
	c.natsURL = "tls://admin:" + pw + "@" + c.port("nats-1", 4222)
	return c
}

func (c *composeSys) run(timeout time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.cmd[0], append(c.cmd[1:], args...)...)
	cmd.Env = c.env
	return cmd.CombinedOutput()
}

// port is the host address a service's container port is published on.
func (c *composeSys) port(service string, port int) string {
	c.t.Helper()
	out, err := c.run(time.Minute, "port", service, strconv.Itoa(port))
	if err != nil {
		c.t.Fatalf("compose port %s %d: %v\n%s", service, port, err, out)
	}
	return strings.TrimSpace(string(out))
}

// cli runs the sinew CLI on the host against the cluster, as admin over TLS.
func (c *composeSys) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sinewBin, append(args, "--nats", c.natsURL, "--tls-ca", c.ca)...)
	cmd.Env = append(os.Environ(), "SINEW_DATA_DIR="+c.t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// containers are the ids of a service's replicas.
func (c *composeSys) containers(service string) []string {
	c.t.Helper()
	out, err := c.run(time.Minute, "ps", "-q", service)
	if err != nil {
		c.t.Fatalf("compose ps %s: %v\n%s", service, err, out)
	}
	return strings.Fields(string(out))
}

var deliveriesOK = regexp.MustCompile(`(?m)^sinew_bus_deliveries_total\{consumer="([^"]+)",outcome="ok"[^}]*\} (\d+)`)

// deliveries reads a container's /metrics through `docker exec … sinew
// health --print` (no shell in the image): ok deliveries per consumer.
func (c *composeSys) deliveries(id string, httpPort int) map[string]int {
	c.t.Helper()
	out, err := exec.Command("docker", "exec", id, "sinew", "health", "--print", "--url",
		fmt.Sprintf("http://127.0.0.1:%d/metrics", httpPort)).CombinedOutput()
	if err != nil {
		c.t.Fatalf("metrics of %s: %v\n%s", id, err, out)
	}
	m := map[string]int{}
	for _, g := range deliveriesOK.FindAllStringSubmatch(string(out), -1) {
		n, _ := strconv.Atoi(g[2])
		m[g[1]] += n
	}
	return m
}

func envFileValue(t *testing.T, path, key string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+"="); ok {
			return v
		}
	}
	t.Fatalf("%s: no %s", path, key)
	return ""
}

// waitReconciled runs `sinew recon report` until it exits 0 (every batch
// reconciled, nothing pending) with the day's Resolute batch in it.
func (c *composeSys) waitReconciled(within time.Duration) string {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		out, err := c.cli("recon", "report")
		if err == nil && strings.Contains(out, "resolute-gl batch") && strings.Contains(out, "PASS") {
			return out
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("not reconciled within %s: %v\n%s", within, err, out)
		}
		time.Sleep(2 * time.Second)
	}
}

// TestComposeSystem runs the whole system as `docker compose up` does: a
// three-node NATS cluster over TLS, one container per service, epicsim's
// day over MLLP and the drop volume, fusionsim over HTTP. The day
// reconciles; with transform scaled to 3 and loader to 2, every replica
// takes a share of the same durable consumers and the new traffic
// reconciles too.
func TestComposeSystem(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the compose system takes minutes")
	}
	c := upCompose(t, "SINEW_EPICSIM_RATE=20")

	// R3 streams on three nodes, created by the provisioning container.
	nc, err := nats.Connect(c.natsURL, nats.RootCAs(c.ca))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range []string{streams.HL7In, streams.FusionCmd, streams.Audit} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info := s.CachedInfo()
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Errorf("%s: replicas %d, cluster %+v", name, info.Config.Replicas, info.Cluster)
		}
	}

	out := c.waitReconciled(3 * time.Minute)
	t.Logf("recon report:\n%s", firstLines(out, 3))
	hl7 := streamMsgs(t, js, streams.HL7In)
	if hl7 == 0 {
		t.Fatal("no HL7 message reached HL7_IN from epicsim over MLLP")
	}

	// Scale out while traffic runs; each replica must take a share.
	if out, err := c.run(3*time.Minute, "up", "-d", "--no-recreate", "--scale", "transform=3", "--scale", "loader=2"); err != nil {
		t.Fatalf("compose up --scale: %v\n%s", err, out)
	}
	tr, ld := c.containers("transform"), c.containers("loader")
	if len(tr) != 3 || len(ld) != 2 {
		t.Fatalf("%d transform and %d loader containers, want 3 and 2", len(tr), len(ld))
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		idle := 0
		var got []string
		for _, id := range tr {
			n := c.deliveries(id, 9102)["transform-hl7"]
			got = append(got, fmt.Sprintf("transform %.12s: %d", id, n))
			if n == 0 {
				idle++
			}
		}
		for _, id := range ld {
			n := 0 // the shared loader-fusion and the flows' own loader-fusion-<flow>
			for name, k := range c.deliveries(id, 9103) {
				if strings.HasPrefix(name, streams.LoaderFusion) {
					n += k
				}
			}
			got = append(got, fmt.Sprintf("loader %.12s: %d", id, n))
			if n == 0 {
				idle++
			}
		}
		if idle == 0 {
			t.Logf("deliveries per replica: %s", strings.Join(got, ", "))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d replicas took no work: %s", idle, strings.Join(got, ", "))
		}
		time.Sleep(3 * time.Second)
	}

	// Stop Epic's traffic: what was sent drains through the scaled
	// pipeline and the whole day reconciles; nothing is dead-lettered.
	if out, err := c.run(2*time.Minute, "stop", "-t", "5", "epicsim"); err != nil {
		t.Fatalf("compose stop epicsim: %v\n%s", err, out)
	}
	c.waitReconciled(3 * time.Minute)
	if n := streamMsgs(t, js, streams.HL7In); n <= hl7 {
		t.Errorf("HL7_IN %d messages after scaling, %d before", n, hl7)
	}
	waitDrained(t, js, "transform-hl7", streams.HL7In)
	if n := streamMsgs(t, js, streams.DLQ); n != 0 {
		t.Errorf("%d messages dead-lettered", n)
	}
	// Every container ran within its NATS user's permissions.
	logs, err := c.run(2*time.Minute, "logs", "--no-color")
	if err != nil {
		t.Fatalf("compose logs: %v", err)
	}
	if n := bytes.Count(logs, []byte("Permissions Violation")); n > 0 {
		t.Errorf("%d permission violations in the cluster's logs", n)
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// waitDrained waits until the durable consumer has nothing pending or
// unacknowledged.
func waitDrained(t *testing.T, js jetstream.JetStream, consumer, stream string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c, err := js.Consumer(context.Background(), stream, consumer)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d pending, %d unacknowledged", consumer, info.NumPending, info.NumAckPending)
		}
		time.Sleep(time.Second)
	}
}
