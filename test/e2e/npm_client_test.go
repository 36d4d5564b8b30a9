package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// medplumHL7 is the third-party MLLP client driven against our listener.
const medplumHL7 = "@medplum/hl7@5.0.10"

const medplumScript = `'use strict';
const fs = require('node:fs');
const { Hl7Client } = require('@medplum/hl7');
const { Hl7Message } = require('@medplum/core');
(async () => {
  const [host, port] = process.argv[2].split(':');
  const client = new Hl7Client({ host, port: Number(port) });
  for (const file of process.argv.slice(3)) {
    const text = fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '').replace(/\r\n|\n/g, '\r').replace(/\r+$/, '');
    // 'first': in enhanced mode (MSH-15 AL) our commit ACK (CA) is the answer.
    const ack = await client.sendAndWait(Hl7Message.parse(text), { returnAck: 'first', timeoutMs: 10000 });
    const msa = ack.getSegment('MSA');
    console.log(msa.getField(1).toString() + ' ' + msa.getField(2).toString());
  }
  client.close().catch(() => {});
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
`

// npmPackage installs pkg once into a cache folder outside the repository
// and returns its node_modules. Without Node, npm or a reachable npm
// registry the test skips, saying so (CI machines have no npm registry:
// there the third-party client is python3-hl7's mllp_send, see
// mllp_send_test.go); SINEW_REQUIRE_NODE=1 makes that a failure.
func npmPackage(t *testing.T, pkg string) string {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("SINEW_REQUIRE_NODE") != "" {
			t.Fatalf("%s; SINEW_REQUIRE_NODE is set, so the Medplum Hl7Client test must run", msg)
		}
		t.Skipf("%s: skipping the Medplum Hl7Client test (set SINEW_REQUIRE_NODE=1 to require it)", msg)
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable("%s not installed", tool)
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "sinew-e2e", strings.NewReplacer("@", "", "/", "-").Replace(pkg))
	modules := filepath.Join(dir, "node_modules")
	name := pkg[:strings.LastIndex(pkg, "@")]
	if _, err := os.Stat(filepath.Join(modules, name, "package.json")); err == nil {
		return modules
	}
	// A quick probe first: without a registry, npm install retries for minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "npm", "ping", "--fetch-timeout=5000", "--fetch-retries=0").CombinedOutput(); err != nil {
		unavailable("npm cannot reach its registry (npm ping: %v: %s)", err, firstLine(out))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--prefix", dir, "--no-audit", "--no-fund", "--loglevel=error",
		"--fetch-timeout=30000", "--fetch-retries=1", pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir) // no half-installed package for the next run
		unavailable("npm cannot install %s (%v: %s)", pkg, err, firstLine(out))
	}
	return modules
}

// firstLine is npm's first error line (else its first line) of out.
func firstLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, l := range lines {
		if strings.Contains(strings.ToLower(l), "error") {
			return l
		}
	}
	return lines[0]
}

// TestThirdPartyMLLPClient drives our listener with Medplum's Hl7Client.
func TestThirdPartyMLLPClient(t *testing.T) {
	modules := npmPackage(t, medplumHL7)
	script := filepath.Join(t.TempDir(), "send.js")
	if err := os.WriteFile(script, []byte(medplumScript), 0o644); err != nil {
		t.Fatal(err)
	}
	a := newAddrs(t)
	s, _ := up(t, t.TempDir(), a)
	files := []string{"ADT_A01__synthetic_cr.hl7", "MFN_M03__synthetic_enhanced_mode.hl7", "RDS_O13__synthetic_rxd_ft1.hl7"}
	args := []string{script, a.mllp}
	if exec.Command("node", "--experimental-websocket", "-e", "0").Run() == nil {
		args = append([]string{"--experimental-websocket"}, args...) // @medplum/core 5 on Node 20
	}
	for _, f := range files {
		args = append(args, filepath.Join(syntheticDir, f))
	}
	cmd := exec.Command("node", args...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node client: %v\n%s", err, out)
	}
	want := "AA SYN-ADT-0001\nCA SYN-MFN-0013\nAA SYN-RDS-0004"
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("Medplum client got:\n%s\nwant:\n%s", got, want)
	}
	s.stop(t)
}
