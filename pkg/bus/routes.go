package bus

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/sinewhq/sinew/pkg/reason"
)

// Route is one entry of a route table: deliveries whose subject matches
// Pattern (NATS wildcards: * one token, > the rest) go to Handler.
type Route struct {
	Pattern string
	Handler Handler
}

// On is a typed route: the payload is decoded once into a new T (as
// Proto does) before h runs.
func On[T proto.Message](pattern string, h func(ctx context.Context, d *Delivery, ev T) error) Route {
	return Route{Pattern: pattern, Handler: Proto(h)}
}

// Routes is a handler that sends each delivery to the first route whose
// pattern matches its subject; a subject no route matches is a permanent
// error (dead-lettered: the topology delivered something the service does
// not handle). The table is fixed when made and safe for concurrent use.
func Routes(routes ...Route) Handler {
	table := make([]struct {
		tokens []string
		h      Handler
	}, len(routes))
	for i, r := range routes {
		table[i].tokens, table[i].h = strings.Split(r.Pattern, "."), r.Handler
	}
	return func(ctx context.Context, d *Delivery) error {
		for _, r := range table {
			if subjectMatches(r.tokens, d.Subject) {
				return r.h(ctx, d)
			}
		}
		return Permanent(reason.Wrap(reason.BusNoRoute, fmt.Errorf("no route for subject %s", d.Subject)))
	}
}

// subjectMatches reports whether subject matches the pattern's tokens.
func subjectMatches(pattern []string, subject string) bool {
	for i, p := range pattern {
		if p == ">" {
			return subject != "" && i < len(pattern)
		}
		tok, rest, more := strings.Cut(subject, ".")
		if tok == "" || (p != "*" && p != tok) {
			return false
		}
		if !more {
			return i == len(pattern)-1
		}
		subject = rest
	}
	return false
}

// Loop is one of a service's long-running loops (a Consume call, a
// timer); it calls ready once it is serving and returns when ctx ends.
type Loop func(ctx context.Context, ready func()) error

// RunLoops runs a service's loops until ctx ends and joins them: started
// is marked once every loop is ready (at once when there is none), and the
// first error any loop returns is returned after all have stopped. A loop
// that fails does not stop the others: ctx does.
func RunLoops(ctx context.Context, started *Started, loops ...Loop) error {
	if len(loops) == 0 {
		started.Mark()
		<-ctx.Done()
		return nil
	}
	var pending atomic.Int32
	pending.Store(int32(len(loops)))
	ready := func() {
		if pending.Add(-1) == 0 {
			started.Mark()
		}
	}
	errs := make(chan error, len(loops))
	for _, loop := range loops {
		go func() { errs <- loop(ctx, ready) }()
	}
	var first error
	for range loops {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
