package streams_test

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/sinewhq/sinew/pkg/natstest"
	"github.com/sinewhq/sinew/pkg/streams"
)

// TestPermissionTableDeniesReads: no service user can read outside its
// grants on a real server with the table's permissions — no consumer,
// message get or direct get on a stream it does not read, no pull from
// another's durable, no subscription to another user's inbox, to ">" or to
// a stream's subjects.
func TestPermissionTableDeniesReads(t *testing.T) {
	url, topo := permServer(t)
	admin, err := nats.Connect(url, nats.UserInfo(streams.UserAdmin, streams.UserAdmin))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, g := range topo.Grants() {
		if g.Admin {
			continue
		}
		t.Run(g.User, func(t *testing.T) {
			t.Parallel()
			n := natstest.ProbeReads(t, url, "read-probe", topo, g, g.User, admin)
			t.Logf("%d reads outside the grants tried, all refused", n)
		})
	}
}
