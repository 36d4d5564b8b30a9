package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/sinewhq/sinew/pkg/streams"
)

func cmdStreams(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: sinew streams ensure|ls|accounts")
		return exitError(2)
	}
	fs := flag.NewFlagSet("sinew streams "+args[0], flag.ContinueOnError)
	url := natsFlags(fs)
	replicas := fs.Int("replicas", 1, "ensure: replicas per stream (3 on a cluster)")
	if _, err := parse(fs, args[1:], stderr); err != nil {
		return err
	}
	if args[0] == "accounts" {
		// deploy/compose/nats/accounts.conf, from the permission table
		conf, err := streams.New(streams.DefaultOptions()).AccountsConf()
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, conf)
		return err
	}
	c, err := dial(url)
	if err != nil {
		return err
	}
	defer c.Close()
	switch args[0] {
	case "ensure":
		opts := streams.DefaultOptions()
		opts.Replicas = *replicas
		if err := streams.New(opts).Ensure(ctx, c.js); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "topology ensured")
		return nil
	case "ls", "list":
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STREAM\tSUBJECTS\tMESSAGES\tBYTES\tCONSUMERS")
		for _, want := range streams.New(streams.DefaultOptions()).Streams {
			s, err := c.js.Stream(ctx, want.Name)
			if err != nil {
				fmt.Fprintf(tw, "%s\t%v\tmissing: %v\t\t\n", want.Name, want.Subjects, err)
				continue
			}
			info, err := s.Info(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "%s\t%v\t%d\t%d\t%d\n", info.Config.Name, info.Config.Subjects, info.State.Msgs, info.State.Bytes, info.State.Consumers)
		}
		return tw.Flush()
	default:
		fmt.Fprintf(stderr, "sinew streams: unknown verb %q\n", args[0])
		return exitError(2)
	}
}
