package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/epicsim"
)

// TestAuthReadProbes: in `sinew up`, with the pipeline running, no
// service user can read outside its grants (natstest.ProbeReads: no
// consumer, get or direct get on a stream it does not read, no pull from
// another's durable, no subscription to another user's inbox, to ">" or to
// stream subjects), while the pipeline, each service its own user with its
// own inbox prefix, runs without a single permission violation.
func TestAuthReadProbes(t *testing.T) {
	dir := t.TempDir()
	a := newAddrs(t)
	s, _ := up(t, dir, a)
	js := s.js(t)
	sendDay(t, a.mllp, epicsim.NewGenerator(19, "STMARYS"), 30)
	waitFor(t, "results", 60*time.Second, func() (bool, string) {
		n := streamMsgs(t, js, streams.Results)
		return n >= 20, fmt.Sprint(n, " results")
	})
	b, err := os.ReadFile(filepath.Join(dir, "nats", "users.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pw map[string]string
	if err := json.Unmarshal(b, &pw); err != nil {
		t.Fatal(err)
	}
	admin, err := nats.Connect(s.natsURL, s.admin(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	topo := streams.New(streams.DefaultOptions())
	n := 0
	for _, g := range topo.Grants() {
		if !g.Admin {
			n += natstest.ProbeReads(t, s.natsURL, probeName, topo, g, pw[g.User], admin)
		}
	}
	t.Logf("%d reads outside the grants tried, all refused", n)
	s.stop(t)
	for _, line := range strings.Split(s.log.String(), "\n") {
		if strings.Contains(line, "Violation") && !strings.Contains(line, probeName) {
			t.Errorf("pipeline permission problem: %s", line)
		}
	}
}
