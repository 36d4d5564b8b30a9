package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/config"
	"github.com/sinewhq/sinew/pkg/streams"
)

func auditVerbs() []verb {
	return []verb{
		{name: "audit verify", summary: "check AUDIT's configuration and every writer's chain against the checkpoint kept outside the stream; exits 1 on a problem", setup: func(fs *flag.FlagSet) runFunc {
			conn := addConnFlags(fs)
			var f auditVerifyFlags
			fs.StringVar(&f.checkpoint, "checkpoint", "", "checkpoint file kept outside AUDIT (default <data-dir>/audit/checkpoint.json)")
			fs.IntVar(&f.replicas, "replicas", 0, "AUDIT's configured replicas (default the topology's, $SINEW_TOPOLOGY_REPLICAS)")
			fs.Uint64Var(&f.accept, "accept", 0, "mark the problem of this AUDIT stream sequence as reviewed (needs --reason)")
			fs.StringVar(&f.reason, "reason", "", "with --accept: why the record's problem is accepted")
			fs.BoolVar(&f.noMAC, "no-mac", false, "without the audit secret, check hashes and links only")
			fs.Uint64Var(&f.unsignedBefore, "unsigned-before", 0, "records below this AUDIT stream sequence predate MACs (kept in the checkpoint)")
			return func(ctx context.Context, e *env, _ []string) error {
				c, err := conn.dial()
				if err != nil {
					return err
				}
				defer c.Close()
				return auditVerify(ctx, c, conn.dataDir, f, e.stdout)
			}
		}},
		{name: "audit list", aliases: []string{"ls"}, summary: "audit records as JSON lines (stream seq, subject, writer, chain seq, event)", setup: func(fs *flag.FlagSet) runFunc {
			conn := addConnFlags(fs)
			filter := fs.String("subject", "audit.>", "subject filter, e.g. audit.<flow>.> for one flow's trail")
			limit := fs.Int("limit", 0, "at most this many records (0 = all)")
			_ = fs.Bool("json", true, "JSON lines (the only format)")
			return func(ctx context.Context, e *env, _ []string) error {
				c, err := conn.dial()
				if err != nil {
					return err
				}
				defer c.Close()
				return auditList(ctx, c, *filter, *limit, e.stdout)
			}
		}},
	}
}

// auditList prints records on filter as JSON lines, at most limit (0: all).
func auditList(ctx context.Context, c *client, filter string, limit int, stdout io.Writer) error {
	n := 0
	stop := fmt.Errorf("limit")
	err := audit.Read(ctx, c.js, filter, func(e audit.Entry) error {
		if e.DecodeErr != nil {
			fmt.Fprintf(stdout, "{\"stream_seq\":%d,\"error\":%q}\n", e.StreamSeq, e.DecodeErr.Error())
			return nil
		}
		for _, event := range e.Events {
			ev, err := protojson.Marshal(event)
			if err != nil {
				return err
			}
			line, _ := json.Marshal(struct {
				StreamSeq uint64          `json:"stream_seq"`
				Subject   string          `json:"subject"`
				Writer    string          `json:"writer"`
				Seq       uint64          `json:"seq"`
				Event     json.RawMessage `json:"event"`
			}{e.StreamSeq, e.Subject, e.Record.Writer, e.Record.Seq, ev})
			fmt.Fprintln(stdout, string(line))
			n++
			if limit > 0 && n >= limit {
				return stop
			}
		}
		return nil
	})
	if err == stop {
		return nil
	}
	return err
}

type auditVerifyFlags struct {
	checkpoint     string
	replicas       int
	accept         uint64
	reason         string
	noMAC          bool
	unsignedBefore uint64
}

// auditVerify checks AUDIT's configuration, state and every chain against
// the checkpoint in the data dir, which it advances when all is well.
func auditVerify(ctx context.Context, c *client, dataDir string, f auditVerifyFlags, stdout io.Writer) error {
	opts := streams.DefaultOptions()
	if err := config.LoadEnv("SINEW_TOPOLOGY", &opts, nil); err != nil {
		return err
	}
	if f.replicas > 0 {
		opts.Replicas = f.replicas
	}
	topo := streams.New(opts)
	want, _ := topo.Stream(streams.Audit)
	if f.checkpoint == "" {
		f.checkpoint = filepath.Join(dataDir, "audit", "checkpoint.json")
	}
	cp, found, err := audit.LoadCheckpoint(f.checkpoint)
	if err != nil {
		return err
	}
	if f.accept > 0 {
		if f.reason == "" {
			return errors.New("audit verify --accept: --reason is required")
		}
		if cp.Accepted == nil {
			cp.Accepted = map[string]string{}
		}
		cp.Accepted[strconv.FormatUint(f.accept, 10)] = actorDefault() + " " + time.Now().UTC().Format(time.RFC3339) + ": " + f.reason
	}
	if f.unsignedBefore > 0 {
		cp.UnsignedBefore = f.unsignedBefore
	}
	var secret []byte
	if !f.noMAC {
		if secret, err = cliAuditSecret(dataDir); err != nil {
			return err
		}
	}
	v, next, err := audit.Verify(ctx, c.js, audit.VerifyOptions{Secret: secret, Want: want, Checkpoint: cp, HopWriters: topo.HopUsers()})
	if err != nil {
		return err
	}
	for _, p := range v.Problems {
		fmt.Fprintln(stdout, p)
	}
	fmt.Fprintf(stdout, "%d records from %d writers: ", v.Records, v.Writers())
	if !v.OK() {
		n := 0
		for _, p := range v.Problems {
			if p.Accepted == "" {
				n++
			}
		}
		fmt.Fprintf(stdout, "%d problems (checkpoint %s kept)\n", n, f.checkpoint)
		return exitError(1)
	}
	if err := next.Save(f.checkpoint); err != nil {
		return err
	}
	if !found {
		fmt.Fprintf(stdout, "chains intact (first checkpoint: %s)\n", f.checkpoint)
	} else {
		fmt.Fprintln(stdout, "chains intact")
	}
	if len(secret) == 0 {
		fmt.Fprintln(stdout, "warning: --no-mac: records' MACs not checked")
	}
	return nil
}

// cliAuditSecret is $SINEW_AUDIT_SECRET or sinew up's <data dir>/audit.secret.
func cliAuditSecret(dataDir string) ([]byte, error) {
	if s := os.Getenv("SINEW_AUDIT_SECRET"); s != "" {
		return []byte(s), nil
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "audit.secret"))
	if err != nil {
		return nil, fmt.Errorf("audit secret (set SINEW_AUDIT_SECRET or --data-dir; --no-mac skips the MAC check): %w", err)
	}
	return []byte(strings.TrimSpace(string(b))), nil
}

// cliAuditKey is cliAuditSecret, nil when there is none: the CLI's own
// records then carry no MAC, and verify names them.
func cliAuditKey(dataDir string) []byte {
	s, err := cliAuditSecret(dataDir)
	if err != nil {
		return nil
	}
	return s
}
