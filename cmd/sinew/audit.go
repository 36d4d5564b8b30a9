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

func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: sinew audit verify|list")
		return exitError(2)
	}
	fs := flag.NewFlagSet("sinew audit "+args[0], flag.ContinueOnError)
	url := natsFlags(fs)
	filter := fs.String("subject", "audit.>", "list: subject filter, e.g. audit.resolute-gl.>")
	limit := fs.Int("limit", 0, "list: at most this many records (0 = all)")
	checkpoint := fs.String("checkpoint", "", "verify: checkpoint file kept outside AUDIT (default <data-dir>/audit/checkpoint.json)")
	replicas := fs.Int("replicas", 0, "verify: AUDIT's configured replicas (default the topology's, $SINEW_TOPOLOGY_REPLICAS)")
	accept := fs.Uint64("accept", 0, "verify: mark the problem of this AUDIT stream sequence as reviewed (needs --reason)")
	reason := fs.String("reason", "", "verify --accept: why the record's problem is accepted")
	noMAC := fs.Bool("no-mac", false, "verify: without the audit secret, check hashes and links only")
	unsignedBefore := fs.Uint64("unsigned-before", 0, "verify: records below this AUDIT stream sequence predate MACs (kept in the checkpoint)")
	if _, err := parse(fs, args[1:], stderr); err != nil {
		return err
	}
	c, err := dial(url)
	if err != nil {
		return err
	}
	defer c.Close()
	switch args[0] {
	case "verify":
		return auditVerify(ctx, c, url.dataDir, auditVerifyFlags{checkpoint: *checkpoint, replicas: *replicas,
			accept: *accept, reason: *reason, noMAC: *noMAC, unsignedBefore: *unsignedBefore}, stdout)
	case "list", "ls":
		n := 0
		stop := fmt.Errorf("limit")
		err := audit.Read(ctx, c.js, *filter, func(e audit.Entry) error {
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
				if *limit > 0 && n >= *limit {
					return stop
				}
			}
			return nil
		})
		if err == stop {
			return nil
		}
		return err
	default:
		fmt.Fprintf(stderr, "sinew audit: unknown verb %q\n", args[0])
		return exitError(2)
	}
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
