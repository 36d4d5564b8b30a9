package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
// and returns its node_modules.
func npmPackage(t *testing.T, pkg string) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			// CI sets SINEW_REQUIRE_NODE: there, a missing Node is a failure.
			if os.Getenv("SINEW_REQUIRE_NODE") != "" {
				t.Fatalf("%s is needed for the third-party client test: %v", tool, err)
			}
			t.Skipf("%s not installed: the third-party MLLP client test needs Node and npm", tool)
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
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("npm", "install", "--prefix", dir, "--no-audit", "--no-fund", "--loglevel=error", pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install %s: %v\n%s", pkg, err, out)
	}
	return modules
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
	files := []string{"ADT_A01__hapi_cr.hl7", "ORU_R01__mirth_small_cr.hl7", "RDS_O13__fhirconv_01_rxd_ft1.hl7"}
	args := []string{script, a.mllp}
	if exec.Command("node", "--experimental-websocket", "-e", "0").Run() == nil {
		args = append([]string{"--experimental-websocket"}, args...) // @medplum/core 5 on Node 20
	}
	for _, f := range files {
		args = append(args, filepath.Join(corpusDir, f))
	}
	cmd := exec.Command("node", args...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node client: %v\n%s", err, out)
	}
	want := "AA 22139243\nCA 12345678\nAA MSG00001"
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("Medplum client got:\n%s\nwant:\n%s", got, want)
	}
	s.stop(t)
}
