package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/sinewhq/sinew/pkg/audit"
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
		v := audit.NewVerifier()
		// Chains span subjects: verification always reads the whole stream.
		err := audit.Read(ctx, c.js, "audit.>", func(e audit.Entry) error {
			if e.DecodeErr != nil {
				v.AddUndecodable(e.StreamSeq, e.DecodeErr)
				return nil
			}
			v.Add(e.Record, e.StreamSeq)
			return nil
		})
		if err != nil {
			return err
		}
		for _, p := range v.Problems {
			fmt.Fprintln(stdout, p)
		}
		fmt.Fprintf(stdout, "%d records from %d writers: ", v.Records, v.Writers())
		if !v.OK() {
			fmt.Fprintf(stdout, "%d problems\n", len(v.Problems))
			return exitError(1)
		}
		fmt.Fprintln(stdout, "chains intact")
		return nil
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
