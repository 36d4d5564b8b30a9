package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

// TestListingsJSON: each listing prints one JSON object per line with --json.
func TestListingsJSON(t *testing.T) {
	srv, _, _ := natstest.StartWithTopology(t, streams.DefaultOptions())
	url := srv.ClientURL()
	dir := t.TempDir()
	items := filepath.Join(dir, "items.csv")
	data, err := os.ReadFile("../../deploy/demo/items.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(items, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := cli(t, "", "crosswalk", "load", "--kind", "item", items, "--nats", url); code != 0 {
		t.Fatalf("crosswalk load: %s", errOut)
	}
	tests := []struct {
		args []string
		key  string // every object has it
	}{
		{[]string{"streams", "ls", "--json"}, "messages"},
		{[]string{"crosswalk", "versions", "--kind", "item", "--json"}, "current"},
		{[]string{"crosswalk", "show", "--kind", "item", "--json"}, "line"},
		{[]string{"dlq", "list", "--json"}, "seq"},
		{[]string{"audit", "list", "--json"}, "stream_seq"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, code := cli(t, "", append(tt.args, "--nats", url)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if l == "" {
					continue
				}
				var obj map[string]any
				if err := json.Unmarshal([]byte(l), &obj); err != nil {
					t.Fatalf("not a JSON line: %v: %q", err, l)
				}
				if _, ok := obj[tt.key]; !ok {
					t.Errorf("no %q in %s", tt.key, l)
				}
			}
		})
	}
}

// TestChartShowShowsTheStoredChart: chart show names the KV revision and
// lists the combinations transform checks against.
func TestChartShowShowsTheStoredChart(t *testing.T) {
	srv, _, _ := natstest.StartWithTopology(t, streams.DefaultOptions())
	url := srv.ClientURL()
	if _, errOut, code := cli(t, "", "crosswalk", "chart", "show", "--nats", url); code != 1 || !strings.Contains(errOut, "no chart in KV") {
		t.Errorf("no chart: exit %d, %q", code, errOut)
	}
	csv := filepath.Join(t.TempDir(), "chart.csv")
	if err := os.WriteFile(csv, []byte("company,cost_center,account\n101,6010,40100\n101,6020,40200\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second load is revision 2
		if _, errOut, code := cli(t, "", "crosswalk", "chart", "load", csv, "--nats", url); code != 0 {
			t.Fatalf("chart load: %s", errOut)
		}
	}
	out, errOut, code := cli(t, "", "crosswalk", "chart", "show", "--nats", url)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"revision 2", "2 valid combinations of 3 segments (company.cost_center.account)", "\n101.6010.40100\n", "\n101.6020.40200\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = cli(t, "", "crosswalk", "chart", "show", "--json", "--nats", url)
	var got struct {
		Revision     uint64
		Combinations []string
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Revision != 2 || len(got.Combinations) != 2 {
		t.Errorf("--json: %v %+v\n%s", err, got, out)
	}
}
