// Command sinew is Sinew's operator tool and its one-process runtime:
// `sinew up` starts an embedded NATS server and every service; the other
// verbs inspect and repair a running system (streams, dead letters, audit,
// batches, reconciliation, crosswalks, FBDI files, HL7).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(int(ee))
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0) // a verb's help, printed by parse
	default:
		fmt.Fprintln(os.Stderr, "sinew:", err)
		os.Exit(1)
	}
}

// exitError is a non-zero exit whose cause was already printed.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// run runs the command line args (without the program name).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, args, &env{stdin: os.Stdin, stdout: stdout, stderr: stderr})
}

// client is a CLI verb's connection.
type client struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// connFlags are the flags of every verb that talks to NATS.
type connFlags struct {
	url string
}

// addConnFlags defines the connection flags on fs.
func addConnFlags(fs *flag.FlagSet) *connFlags {
	c := &connFlags{}
	fs.StringVar(&c.url, "nats", natsURLDefault(), "NATS URL ($SINEW_NATS_URL)")
	return c
}

// dial connects as the flags say.
func (c *connFlags) dial() (*client, error) { return dial(c.url) }

func natsURLDefault() string {
	if u := os.Getenv("SINEW_NATS_URL"); u != "" {
		return u
	}
	return nats.DefaultURL
}

func dial(url string) (*client, error) {
	nc, err := nats.Connect(url, nats.Name("sinew-cli"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &client{nc: nc, js: js}, nil
}

func (c *client) Close() { c.nc.Close() }

// actor names the operator for audit records: $SINEW_ACTOR or user@host.
func actorDefault() string {
	if a := os.Getenv("SINEW_ACTOR"); a != "" {
		return a
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

// parse parses the flags of a verb that parses its own arguments (see
// verb.raw); flags may follow positional arguments. On -h it prints the
// flags and returns flag.ErrHelp; on a bad flag, a usageError.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, error) {
	fs.SetOutput(stderr)
	fs.Usage = func() { printDefaults(stderr, fs) }
	pos, err := parseAll(fs, args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return nil, usageError{err}
	}
	return pos, err
}
