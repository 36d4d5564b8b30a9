// Command sinew is Sinew's operator tool and its one-process runtime:
// `sinew up` starts an embedded NATS server and every service; the other
// verbs inspect and repair a running system (streams, dead letters, audit,
// batches, reconciliation, crosswalks, FBDI files, HL7).
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strings"
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

func natsURLDefault() string {
	if u := os.Getenv("SINEW_NATS_URL"); u != "" {
		return u
	}
	return nats.DefaultURL
}

// connFlags are the connection flags of every verb that talks to NATS.
type connFlags struct {
	url, creds, context, dataDir, ca string
	fs                               *flag.FlagSet
}

// addConnFlags registers --nats, --creds, --context and --data-dir on fs.
func addConnFlags(fs *flag.FlagSet) *connFlags {
	c := &connFlags{fs: fs}
	fs.StringVar(&c.url, "nats", natsURLDefault(), "NATS URL (default: the context's, else $SINEW_NATS_URL or nats://127.0.0.1:4222)")
	fs.StringVar(&c.creds, "creds", os.Getenv("SINEW_NATS_CREDS"), "NATS credentials file (JWT + nkey); default $SINEW_NATS_CREDS")
	fs.StringVar(&c.context, "context", os.Getenv("SINEW_NATS_CONTEXT"), "nats CLI context: a name in ~/.config/nats/context or a .json path")
	fs.StringVar(&c.ca, "tls-ca", os.Getenv("SINEW_NATS_CA"), "CA certificate (PEM) verifying tls:// servers; default the context's, else $SINEW_NATS_CA")
	fs.StringVar(&c.dataDir, "data-dir", dataDirDefault(), "sinew up's data dir: its admin credential (nats/admin.json) is used when no --creds or --context is given")
	return c
}

// dataDirDefault is sinew up's data dir: $SINEW_DATA_DIR, else ./var.
func dataDirDefault() string {
	if d := os.Getenv("SINEW_DATA_DIR"); d != "" {
		return d
	}
	return "./var"
}

// dial connects as the flags say: --creds, else --context, else sinew up's
// admin context in the data dir (when present), else unauthenticated.
func (cf *connFlags) dial() (*client, error) {
	url := cf.url
	urlSet := false
	cf.fs.Visit(func(f *flag.Flag) { urlSet = urlSet || f.Name == "nats" })
	urlSet = urlSet || os.Getenv("SINEW_NATS_URL") != ""
	opts := []nats.Option{nats.Name("sinew-cli"), nats.Timeout(5 * time.Second)}
	var ctx natsContext
	switch {
	case cf.creds != "":
		opts = append(opts, nats.UserCredentials(expandHome(cf.creds)))
	case cf.context != "":
		c, err := readContext(expandHome(cf.context))
		if err != nil {
			return nil, err
		}
		ctx = c
	default:
		c, err := readContext(filepath.Join(natsDir(cf.dataDir), "admin.json"))
		if err == nil {
			ctx = c
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	switch {
	case ctx.Creds != "":
		opts = append(opts, nats.UserCredentials(expandHome(ctx.Creds)))
	case ctx.NKey != "":
		o, err := nats.NkeyOptionFromSeed(expandHome(ctx.NKey))
		if err != nil {
			return nil, fmt.Errorf("nats context nkey: %w", err)
		}
		opts = append(opts, o)
	case ctx.User != "":
		opts = append(opts, nats.UserInfo(ctx.User, ctx.Password), nats.CustomInboxPrefix(inboxPrefix(ctx)))
	case ctx.Token != "":
		opts = append(opts, nats.Token(ctx.Token))
	}
	if ctx.URL != "" && !urlSet {
		url = ctx.URL
	}
	if ca := cmp.Or(cf.ca, ctx.CA); ca != "" {
		opts = append(opts, nats.RootCAs(expandHome(ca)))
	}
	if ctx.Cert != "" {
		opts = append(opts, nats.ClientCert(expandHome(ctx.Cert), expandHome(ctx.Key)))
	}
	nc, err := nats.Connect(url, opts...)
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

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
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
