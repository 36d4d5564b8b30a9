package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/flowstate"
	"github.com/sinewhq/sinew/pkg/streams"
)

func streamsVerbs() []verb {
	return []verb{
		{name: "streams ensure", summary: "create or update the topology's streams, consumers and buckets", setup: func(fs *flag.FlagSet) runFunc {
			conn := addConnFlags(fs)
			replicas := fs.Int("replicas", 1, "replicas per stream (3 on a cluster)")
			retry := fs.Duration("retry", 0, "keep trying this long while the servers are unreachable or the cluster cannot place the replicas yet (provisioning beside a starting cluster)")
			flowsFile := fs.String("flows", "", "flows.yaml: each HL7 flow's consumer, paused or resumed to its state (default $SINEW_FLOWS, <data dir>/flows.yaml, ./flows.yaml; none found: no per-flow consumers)")
			return func(ctx context.Context, e *env, _ []string) error {
				var inv *flows.Inventory
				if path, err := findFlows(*flowsFile, os.Getenv("SINEW_FLOWS"), conn.dataDir); err == nil {
					if inv, err = flows.Load(path); err != nil {
						return err
					}
				} else if *flowsFile != "" {
					return err
				}
				opts := streams.DefaultOptions()
				opts.Replicas = *replicas
				if inv != nil {
					opts = inv.Topology(opts)
				}
				var c *client
				ensure := func() error {
					var err error
					if c, err = conn.dial(); err != nil {
						return err
					}
					if err = streams.New(opts).Ensure(ctx, c.js); err != nil {
						c.Close()
					}
					return err
				}
				deadline := time.Now().Add(*retry)
				for delay := 500 * time.Millisecond; ; delay = min(delay*2, 5*time.Second) {
					err := ensure()
					if err == nil {
						break
					}
					if time.Now().Add(delay).After(deadline) {
						return err
					}
					fmt.Fprintf(e.stderr, "streams ensure: %v (retrying)\n", err)
					select {
					case <-ctx.Done():
						return err
					case <-time.After(delay):
					}
				}
				defer c.Close()
				if inv != nil {
					st, err := flowstate.Open(ctx, c.js)
					if err != nil {
						return err
					}
					if _, err := st.Sync(ctx, inv); err != nil {
						return err
					}
				}
				fmt.Fprintln(e.stdout, "topology ensured")
				return nil
			}
		}},
		{name: "streams ls", aliases: []string{"list"}, summary: "the topology's streams: subjects, messages, bytes, consumers", setup: func(fs *flag.FlagSet) runFunc {
			conn := addConnFlags(fs)
			asJSON := fs.Bool("json", false, "one JSON object per line")
			return func(ctx context.Context, e *env, _ []string) error {
				c, err := conn.dial()
				if err != nil {
					return err
				}
				defer c.Close()
				return streamsList(ctx, c.js, *asJSON, e.stdout)
			}
		}},
		{name: "streams accounts", summary: "the NATS users and permissions from the permission table (deploy/compose/nats/accounts.conf)", setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, _ []string) error {
				conf, err := streams.New(streams.DefaultOptions()).AccountsConf()
				if err != nil {
					return err
				}
				_, err = io.WriteString(e.stdout, conf)
				return err
			}
		}},
	}
}

// streamRow is one stream as `streams ls` shows it.
type streamRow struct {
	Name      string   `json:"name"`
	Subjects  []string `json:"subjects"`
	Messages  uint64   `json:"messages"`
	Bytes     uint64   `json:"bytes"`
	Consumers int      `json:"consumers"`
	Missing   string   `json:"missing,omitempty"` // why it could not be read
}

func streamsList(ctx context.Context, js jetstream.JetStream, asJSON bool, stdout io.Writer) error {
	enc := json.NewEncoder(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintln(tw, "STREAM\tSUBJECTS\tMESSAGES\tBYTES\tCONSUMERS")
	}
	for _, want := range streams.New(streams.DefaultOptions()).Streams {
		row := streamRow{Name: want.Name, Subjects: want.Subjects}
		if s, err := js.Stream(ctx, want.Name); err != nil {
			row.Missing = err.Error()
		} else if info, err := s.Info(ctx); err != nil {
			return err
		} else {
			row.Subjects, row.Messages, row.Bytes, row.Consumers = info.Config.Subjects, info.State.Msgs, info.State.Bytes, info.State.Consumers
		}
		switch {
		case asJSON:
			if err := enc.Encode(row); err != nil {
				return err
			}
		case row.Missing != "":
			fmt.Fprintf(tw, "%s\t%v\tmissing: %s\t\t\n", row.Name, row.Subjects, row.Missing)
		default:
			fmt.Fprintf(tw, "%s\t%v\t%d\t%d\t%d\n", row.Name, row.Subjects, row.Messages, row.Bytes, row.Consumers)
		}
	}
	return tw.Flush()
}
