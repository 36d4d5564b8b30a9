package e2e

import (
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// What an interrupted chaos run leaves behind, and how the next one clears
// it. Each run writes its test process's pid into its directory and tags
// its iptables rules with it; a run starting sweeps directories, processes
// and rules whose owner is dead (runs alive at the same time are left
// alone). Children also die with the test process (Pdeathsig), and an
// interrupt (SIGINT, SIGTERM) heals the partition before exiting.

const chaosDirPrefix = "sinew-chaos"

// chaosRuleTag is the iptables comment marking the rules of run pid.
func chaosRuleTag(pid int) string { return chaosDirPrefix + "-" + strconv.Itoa(pid) }

// alive reports whether process pid exists.
func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

// sweepChaos removes what dead chaos runs left: their processes (by
// executable under their directory), their iptables rules, their directories.
func sweepChaos(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), chaosDirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil && alive(pid) {
			continue
		}
		if n := killUnder(dir); n > 0 {
			t.Logf("chaos: killed %d processes an interrupted run left in %s", n, dir)
		}
		_ = os.RemoveAll(dir)
	}
	if os.Geteuid() != 0 {
		return
	}
	out, err := exec.Command("iptables", "-S", "OUTPUT").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "-A" {
			continue
		}
		for i, w := range f {
			tag, ok := strings.CutPrefix(strings.Trim(w, `"`), chaosDirPrefix+"-")
			if !ok || i == 0 || f[i-1] != "--comment" {
				continue
			}
			if pid, err := strconv.Atoi(tag); err == nil && !alive(pid) {
				f[0] = "-D"
				if err := exec.Command("iptables", f...).Run(); err == nil {
					t.Logf("chaos: removed an iptables rule an interrupted run left: %s", line)
				}
			}
		}
	}
}

// killUnder SIGKILLs every process whose executable lies under dir.
func killUnder(dir string) int {
	n := 0
	exes, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, e := range exes {
		exe, err := os.Readlink(e)
		if err != nil || !strings.HasPrefix(exe, dir+string(filepath.Separator)) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(e))); err == nil && syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// onInterrupt runs stop (heal, kill) when the test process is interrupted,
// then exits: t.Cleanup does not run on a signal.
func onInterrupt(t *testing.T, stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			stop()
			os.Stderr.WriteString("chaos: interrupted (" + s.String() + "): partition healed, processes killed\n")
			os.Exit(2)
		case <-done:
		}
	}()
	t.Cleanup(func() { signal.Stop(ch); close(done) })
}

// loadFactor is how much slower than idle this machine runs now: the
// one-minute load average per CPU, at least 1 and at most 10. Waits for
// readiness and catch-up are scaled by it.
func loadFactor() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 1
	}
	l, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 1
	}
	return min(10, max(1, l/float64(runtime.NumCPU())))
}

// scaled is d stretched by the machine's load.
func scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * loadFactor())
}

// TestChaosSweepClearsDeadRuns: what a killed chaos run leaves (a process
// running from its directory, its directory, a tagged iptables rule when
// root) is cleared by the next run's sweep; a live run's directory is not.
func TestChaosSweepClearsDeadRuns(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	deadPID := dead.Process.Pid

	left, err := os.MkdirTemp("", chaosDirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(left) })
	mustWrite(t, filepath.Join(left, "owner.pid"), strconv.Itoa(deadPID))
	sleepBin, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1):", err)
	}
	b, err := os.ReadFile(sleepBin)
	if err != nil {
		t.Fatal(err)
	}
	mustMkdir(t, filepath.Join(left, "bin"))
	orphanBin := filepath.Join(left, "bin", "nats-server")
	if err := os.WriteFile(orphanBin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	orphan := exec.Command(orphanBin, "600")
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = orphan.Wait(); close(exited) }()
	t.Cleanup(func() { _ = orphan.Process.Kill() })

	live, err := os.MkdirTemp("", chaosDirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(live) })
	mustWrite(t, filepath.Join(live, "owner.pid"), strconv.Itoa(os.Getpid()))

	rule := []string{"OUTPUT", "-p", "tcp", "--dport", "1", "-m", "comment", "--comment", chaosRuleTag(deadPID), "-j", "DROP"}
	root := os.Geteuid() == 0 && exec.Command("iptables", "-L", "OUTPUT", "-n").Run() == nil
	if root {
		if out, err := exec.Command("iptables", append([]string{"-I"}, rule...)...).CombinedOutput(); err != nil {
			t.Fatalf("iptables: %v: %s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("iptables", append([]string{"-D"}, rule...)...).Run() })
	} else {
		t.Log("iptables part skipped: needs root and iptables")
	}

	sweepChaos(t)

	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Error("the dead run's process still runs after the sweep")
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("the dead run's directory is still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the live run's directory was removed: %v", err)
	}
	if root {
		if exec.Command("iptables", append([]string{"-C"}, rule...)...).Run() == nil {
			t.Error("the dead run's iptables rule is still there after the sweep")
		}
	}
}
