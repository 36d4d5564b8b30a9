// Command sinew is Sinew's operator tool and its one-process runtime:
// `sinew up` starts an embedded NATS server and every service; the other
// verbs inspect and repair a running system (dead letters, audit, streams).
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
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const usage = `sinew — Epic ⇄ Oracle Fusion integration

usage:
  sinew up [flags]                 start NATS, every service and the simulators in one process
  sinew dlq list [--json]          dead letters, oldest first
  sinew dlq show SEQ [--payload]   one dead letter (--payload prints the message: audited)
  sinew dlq replay SEQ [--force]   republish a dead letter to its original subject
  sinew audit verify               check every writer's hash chain
  sinew audit list [--limit N]     audit records as JSON lines
  sinew streams ensure|ls          create/update the topology, or list streams
  sinew streams accounts           the NATS users and permissions (deploy/compose/nats/accounts.conf)
  sinew hl7 parse [FILE...]        one JSON object per message (type, event, control id, charset, warnings)
  sinew hl7 get FILE PATH...       decoded values (PID-5-1, PID-3(1)-4-2, OBX(2)-5)
  sinew hl7 ack [--code C] FILE    the ACK Sinew would send
  sinew hl7 send --addr H:P FILE.. send over MLLP; prints MSA-1 MSA-2 per message
  sinew fbdi build --resolute F --crosswalk F [--out GlInterface.zip]
                                   validate, map and write a Journal Import file (rejects bad batches whole)
  sinew fbdi check FILE            columns, dates, amounts and balance of a GlInterface.csv or zip
  sinew resolute generate > FILE   a synthetic, balanced Resolute journal file
  sinew crosswalk load [--kind K] FILE
                                   check and store a crosswalk version, make it current
  sinew crosswalk show|versions|diff V1 [V2]  (--kind coa|item|department|uom)
  sinew crosswalk chart pull --fusion-url URL | load FILE | show
                                   Fusion's valid account combinations, checked before any GL file is built
  sinew batches [--flow F] [--json]
                                   every batch's step (received → reconciled), groups and Fusion load request
  sinew batches show ID [--flow F] one batch's state: upload, groups, Fusion's line errors, history
  sinew recon report [--flow F] [--batch ID] [--json]
                                   reconciliation verdicts; exits 1 on a variance, a rejection, pending or nothing

Verbs other than up talk to NATS at --nats (default $SINEW_NATS_URL or nats://127.0.0.1:4222)
as --creds FILE ($SINEW_NATS_CREDS), --context NAME|FILE ($SINEW_NATS_CONTEXT) or, by default,
sinew up's admin in --data-dir ($SINEW_DATA_DIR, ./var): var/nats/admin.json.
`

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
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "sinew:", err)
		os.Exit(1)
	}
}

// exitError is a non-zero exit whose cause was already printed.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError(2)
	}
	switch args[0] {
	case "up":
		return cmdUp(ctx, args[1:], stderr)
	case "batches":
		return cmdBatches(ctx, args[1:], stdout, stderr)
	case "dlq":
		return cmdDLQ(ctx, args[1:], stdout, stderr)
	case "audit":
		return cmdAudit(ctx, args[1:], stdout, stderr)
	case "streams":
		return cmdStreams(ctx, args[1:], stdout, stderr)
	case "hl7":
		return cmdHL7(ctx, args[1:], stdout, stderr)
	case "fbdi":
		return cmdFBDI(ctx, args[1:], stdout, stderr)
	case "crosswalk":
		return cmdCrosswalk(ctx, args[1:], stdout, stderr)
	case "resolute":
		return cmdResolute(ctx, args[1:], stdout, stderr)
	case "recon":
		return cmdRecon(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "sinew: unknown command %q\n\n%s", args[0], usage)
		return exitError(2)
	}
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
	url, creds, context, dataDir string
	fs                           *flag.FlagSet
}

// natsFlags registers --nats, --creds, --context and --data-dir on fs.
func natsFlags(fs *flag.FlagSet) *connFlags {
	c := &connFlags{fs: fs}
	fs.StringVar(&c.url, "nats", natsURLDefault(), "NATS URL (default: the context's, else $SINEW_NATS_URL or nats://127.0.0.1:4222)")
	fs.StringVar(&c.creds, "creds", os.Getenv("SINEW_NATS_CREDS"), "NATS credentials file (JWT + nkey); default $SINEW_NATS_CREDS")
	fs.StringVar(&c.context, "context", os.Getenv("SINEW_NATS_CONTEXT"), "nats CLI context: a name in ~/.config/nats/context or a .json path")
	fs.StringVar(&c.dataDir, "data-dir", dataDirDefault(), "sinew up's data dir: its admin credential (nats/admin.json) is used when no --creds or --context is given")
	return c
}

func dataDirDefault() string {
	if d := os.Getenv("SINEW_DATA_DIR"); d != "" {
		return d
	}
	return "./var"
}

// dial connects as the flags say: --creds, else --context, else sinew up's
// admin context in the data dir (when present), else unauthenticated.
func dial(cf *connFlags) (*client, error) {
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
		opts = append(opts, nats.UserInfo(ctx.User, ctx.Password))
	case ctx.Token != "":
		opts = append(opts, nats.Token(ctx.Token))
	}
	if ctx.URL != "" && !urlSet {
		url = ctx.URL
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

// parse parses flags that may follow positional arguments (sinew dlq show 5 --payload).
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, error) {
	fs.SetOutput(stderr)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
