package natstest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/streams"
)

// Readable is every stream g may read: those it reads or scans, those of
// the consumers it pulls (the originals of its dead letters), DLQ when it
// pulls anything, and the buckets it uses.
func Readable(topo streams.Topology, g streams.Grant) []string {
	out := slices.Clone(g.Read)
	for _, name := range g.Consume {
		if c, ok := topo.Consumer(name); ok {
			out = append(out, c.Stream, streams.DLQ)
		}
	}
	for _, b := range append(slices.Clone(g.KV), g.KVRead...) {
		out = append(out, "KV_"+b)
	}
	for _, b := range g.Objects {
		out = append(out, "OBJ_"+b)
	}
	return out
}

// ProbeReads connects to url as g's user (with its own inbox prefix, as
// the services do) and tries to read outside its grants: an ordered
// consumer, a message get and a direct get on every stream it may not
// read, a pull from every durable consumer it does not own, and core
// subscriptions to "_INBOX.>" (other users' replies), ">" and every
// stream's subjects. Each must fail, and a message admin publishes on
// another inbox may not arrive. name marks the probe's connection in
// server logs; opts are added to the connection's (a TLS CA). It returns
// how many reads were tried.
func ProbeReads(t *testing.T, url, name string, topo streams.Topology, g streams.Grant, password string, admin *nats.Conn, opts ...nats.Option) int {
	t.Helper()
	var mu sync.Mutex
	var violations []string
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name(name), nats.UserInfo(g.User, password),
		nats.CustomInboxPrefix(streams.InboxPrefix(g.User)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			mu.Lock()
			violations = append(violations, err.Error())
			mu.Unlock()
		})}, opts...)...)
	if err != nil {
		t.Fatalf("%s: %v", g.User, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	readable := Readable(topo, g)
	ctx := context.Background()
	tried := 0
	// Refused requests get no answer: they are tried at once, each waiting
	// out its own timeout.
	var wg sync.WaitGroup
	denied := func(what string, try func() error) {
		tried++
		wg.Go(func() {
			if try() == nil {
				t.Errorf("%s could %s", g.User, what)
			}
		})
	}
	request := func(subject, body string) func() error {
		return func() error { return requestErr(ctx, nc, subject, body) }
	}
	var subjects []string
	all := slices.Clone(topo.Streams)
	for _, kv := range topo.KV {
		all = append(all, jetstream.StreamConfig{Name: "KV_" + kv.Bucket, Subjects: []string{"$KV." + kv.Bucket + ".>"}})
	}
	for _, o := range topo.Objects {
		all = append(all, jetstream.StreamConfig{Name: "OBJ_" + o.Bucket, Subjects: []string{"$O." + o.Bucket + ".>"}})
	}
	for _, sc := range all {
		subjects = append(subjects, sc.Subjects...)
		if slices.Contains(readable, sc.Name) {
			continue
		}
		denied("create an ordered consumer on "+sc.Name, func() error {
			c, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err := js.OrderedConsumer(c, sc.Name, jetstream.OrderedConsumerConfig{})
			return err
		})
		denied("get a message of "+sc.Name, request("$JS.API.STREAM.MSG.GET."+sc.Name, `{"seq":1}`))
		denied("direct-get a message of "+sc.Name, request("$JS.API.DIRECT.GET."+sc.Name, `{"seq":1}`))
		denied("read "+sc.Name+"'s info", request("$JS.API.STREAM.INFO."+sc.Name, ""))
	}
	for _, c := range topo.Consumers {
		if slices.Contains(g.Consume, c.Name) {
			continue
		}
		denied("pull from "+c.Stream+"/"+c.Name, request("$JS.API.CONSUMER.MSG.NEXT."+c.Stream+"."+c.Name, `{"batch":1,"no_wait":true}`))
	}
	wg.Wait()
	// Core subscriptions: refused by the server (an async permissions
	// violation), and nothing published there reaches them.
	got := make(chan string, 16)
	subs := append([]string{"_INBOX.>", ">", "$JS.ACK.>"}, subjects...)
	for _, s := range subs {
		if _, err := nc.Subscribe(s, func(m *nats.Msg) {
			select {
			case got <- m.Subject:
			default:
			}
		}); err != nil {
			continue // refused locally: as good
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// Only on a subject no stream stores: the probe must not feed the
	// pipeline. The refusals above cover the stream subjects.
	_ = admin.Publish("_INBOX.probe-"+g.User, []byte("probe"))
	_ = admin.Flush()
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		n := 0
		for _, v := range violations {
			if strings.Contains(v, "Permissions Violation for Subscription") {
				n++
			}
		}
		mu.Unlock()
		if n >= len(subs) || time.Now().After(deadline) {
			tried += len(subs)
			if n < len(subs) {
				t.Errorf("%s: %d of %d outside subscriptions refused", g.User, n, len(subs))
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case s := <-got:
		t.Errorf("%s received a message on %s outside its grants", g.User, s)
	case <-time.After(300 * time.Millisecond):
	}
	return tried
}

// requestErr is a JetStream API request: an error unless it was answered
// with data and no error.
func requestErr(ctx context.Context, nc *nats.Conn, subject, body string) error {
	c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	m, err := nc.RequestWithContext(c, subject, []byte(body))
	if err != nil {
		return err
	}
	if strings.Contains(string(m.Data), `"error"`) || m.Header.Get("Status") != "" && m.Header.Get("Status") != "200" {
		return fmt.Errorf("%s: %s %s", subject, m.Header.Get("Status"), m.Data)
	}
	if len(m.Data) == 0 && m.Header.Get("Nats-Stream") == "" {
		return errors.New("empty answer")
	}
	return nil
}
