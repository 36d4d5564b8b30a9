package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkStagedDrain measures the cutover drain: willow-inventory is
// staged, N dispenses (20,000, $SINEW_BENCH_DRAIN_N) are sent over 32 MLLP
// connections and kept, then `sinew flows activate` releases them.
// drain-msg/s is N over the time from activation to the last row in
// fusionsim; transform-msg/s is the rate the activate command reported for
// the flow's consumer (mapped and acknowledged). $SINEW_BENCH_UP_FLAGS
// passes sinew up flags (--sync-always=false). Run with -benchtime 1x.
func BenchmarkStagedDrain(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("SINEW_BENCH_DRAIN_N")); err == nil && v > 0 {
		n = v
	}
	fusion, a, sys := benchSystem(b)
	flowsFile := filepath.Join(repoRoot(b), "flows.yaml")
	cli := func(args ...string) string {
		cmd := exec.Command(sinewBin, append(args, "--nats", sys.natsURL, "--data-dir", sys.dataDir, "--flows", flowsFile)...)
		cmd.Env = append(os.Environ(), "SINEW_ACTOR=bench")
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("sinew %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	for run := range b.N {
		cli("flows", "stage", "willow-inventory", "--reason", "drain benchmark")
		before := fusion.count(b)
		start := time.Now()
		drive(b, a.mllp, n, 32, 0, "D"+strconv.Itoa(run)+"-")
		ingested := time.Since(start)
		time.Sleep(time.Second)
		if c := fusion.count(b); c != before {
			b.Fatalf("staged flow posted %d rows", c-before)
		}
		activated := time.Now()
		out := cli("flows", "activate", "willow-inventory", "--reason", "drain benchmark", "--json", "--every", "250ms")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var last struct {
			Event string  `json:"event"`
			Rate  float64 `json:"rate_per_sec"`
		}
		_ = json.Unmarshal([]byte(lines[len(lines)-1]), &last)
		for fusion.count(b) < before+n && time.Since(activated) < 10*time.Minute {
			time.Sleep(100 * time.Millisecond)
		}
		drained := time.Since(activated)
		if c := fusion.count(b); c != before+n {
			b.Fatalf("%d of %d rows in Fusion after the drain", c-before, n)
		}
		b.ReportMetric(float64(n)/ingested.Seconds(), "ingest-msg/s")
		b.ReportMetric(float64(n)/drained.Seconds(), "drain-msg/s")
		b.ReportMetric(last.Rate, "transform-msg/s")
	}
}
