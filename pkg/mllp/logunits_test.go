package mllp_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/mllp"
)

// TestConnectionClosedLogsDurationMs: the connection's lifetime is logged
// as duration_ms, an integer of milliseconds, not a unitless "duration".
func TestConnectionClosedLogsDurationMs(t *testing.T) {
	ts := startServer(t, mllp.ServerConfig{}, echo)
	rc := dialRaw(t, ts.addr)
	rc.write(string(mllp.Encode(nil, msg(1))))
	if _, err := rc.next(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	rc.nc.Close()
	eventually(t, "close logged", func() bool { return strings.Contains(ts.logs.String(), "mllp connection closed") })
	for _, l := range strings.Split(ts.logs.String(), "\n") {
		if !strings.Contains(l, "mllp connection closed") {
			continue
		}
		var line map[string]any
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		ms, ok := line["duration_ms"].(float64)
		if !ok || ms != float64(int64(ms)) || ms < 0 {
			t.Errorf("duration_ms = %v, want whole milliseconds: %s", line["duration_ms"], l)
		}
		if _, ok := line["duration"]; ok {
			t.Errorf("unitless duration logged: %s", l)
		}
		return
	}
}
