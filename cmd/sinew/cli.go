package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// verb is one command of the CLI. The dispatcher and every help text read
// the same table (verbs), so a verb's help shows exactly the flags it
// parses.
type verb struct {
	name    string   // the words after "sinew", e.g. "dlq show"
	aliases []string // other spellings of the last word, e.g. "ls"
	args    string   // positional arguments for the usage line, e.g. "SEQ"
	summary string   // one line
	// setup defines the verb's flags on fs and returns what runs once
	// they are parsed, with the positional arguments.
	setup func(fs *flag.FlagSet) runFunc
	// raw, in place of setup, is a verb that parses its own arguments
	// with parse (its help prints the flags parse reports on -h).
	raw func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// runFunc runs a verb after its flags are parsed.
type runFunc func(ctx context.Context, e *env, pos []string) error

// env is where a verb reads and writes.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// groups describes the words that lead to verbs (sinew dlq ...).
var groups = map[string]string{
	"dlq":             "dead letters: list, show, replay",
	"audit":           "the audit trail: verify its chains, list records",
	"streams":         "the JetStream topology",
	"hl7":             "HL7 v2 files: parse, read fields, build an ACK, send over MLLP",
	"fbdi":            "Journal Import files for Fusion (GlInterface)",
	"resolute":        "synthetic Resolute journal files",
	"crosswalk":       "crosswalk versions in KV (COA, item, department, uom)",
	"crosswalk chart": "Fusion's valid account combinations",
	"recon":           "reconciliation verdicts",
	"fhir":            "FHIR R4 resources, Bundles and NDJSON",
	"triage":          "the triage queue: variances, dead letters and matches a person must look at",
}

// verbs is the CLI, in the order the usage lists it.
func verbs() []verb {
	var vs []verb
	vs = append(vs, verb{name: "up", summary: "start NATS, every service and the simulators in one process",
		raw: func(ctx context.Context, args []string, _, stderr io.Writer) error { return cmdUp(ctx, args, stderr) }})
	vs = append(vs, dlqVerbs()...)
	vs = append(vs, auditVerbs()...)
	vs = append(vs, streamsVerbs()...)
	vs = append(vs, hl7Verbs()...)
	vs = append(vs, fbdiVerbs()...)
	vs = append(vs, crosswalkVerbs()...)
	vs = append(vs, batchesVerbs()...)
	vs = append(vs, reconVerbs()...)
	vs = append(vs, flowsVerbs()...)
	vs = append(vs, healthVerbs()...)
	vs = append(vs, fhirVerbs()...)
	vs = append(vs, trackVerbs()...)
	vs = append(vs, triageVerbs()...)
	vs = append(vs, drillVerbs()...)
	return vs
}

// lookup finds the verb named by the most leading words of args and
// returns it with the remaining arguments. Without a verb it returns nil,
// the arguments after the longest group named, and that group ("" for
// none).
func lookup(vs []verb, args []string) (*verb, []string, string) {
	words := args
	if i := slices.IndexFunc(args, func(w string) bool { return strings.HasPrefix(w, "-") }); i >= 0 {
		words = args[:i]
	}
	var best *verb
	n := 0
	for i := range vs {
		name := strings.Fields(vs[i].name)
		k := len(name)
		if k <= n || k > len(words) || !slices.Equal(name[:k-1], words[:k-1]) {
			continue
		}
		if name[k-1] == words[k-1] || slices.Contains(vs[i].aliases, words[k-1]) {
			best, n = &vs[i], k
		}
	}
	if best != nil {
		return best, args[n:], best.parent()
	}
	group, g := "", 0
	for k := 1; k <= len(words); k++ {
		if _, ok := groups[strings.Join(words[:k], " ")]; ok {
			group, g = strings.Join(words[:k], " "), k
		}
	}
	return nil, args[g:], group
}

// parent is the group a verb belongs to ("" for a top-level verb).
func (v *verb) parent() string {
	if i := strings.LastIndexByte(v.name, ' '); i >= 0 {
		return v.name[:i]
	}
	return ""
}

func isHelp(w string) bool { return w == "-h" || w == "-help" || w == "--help" }

// dispatch runs the verb args name; help requests print to stdout and
// succeed, usage errors print to stderr and exit 2.
func dispatch(ctx context.Context, args []string, e *env) error {
	vs := verbs()
	if len(args) == 0 {
		printUsage(e.stderr, vs)
		return exitError(2)
	}
	if args[0] == "help" || isHelp(args[0]) {
		return help(vs, args[1:], e.stdout, e.stderr)
	}
	v, rest, group := lookup(vs, args)
	if v == nil {
		switch {
		case len(rest) > 0 && (rest[0] == "help" || isHelp(rest[0])):
			return help(vs, strings.Fields(group), e.stdout, e.stderr)
		case len(rest) > 0 && group == "":
			fmt.Fprintf(e.stderr, "sinew: unknown command %q\n\n", rest[0])
			printUsage(e.stderr, vs)
		case len(rest) > 0:
			fmt.Fprintf(e.stderr, "sinew %s: unknown verb %q\n\n", group, rest[0])
			printGroup(e.stderr, vs, group)
		case group != "":
			printGroup(e.stderr, vs, group)
		}
		return exitError(2)
	}
	if v.raw != nil {
		if slices.ContainsFunc(beforeDashes(rest), isHelp) {
			return printVerb(ctx, e.stdout, v)
		}
		err := v.raw(ctx, rest, e.stdout, e.stderr)
		var ue usageError
		if errors.As(err, &ue) {
			return exitError(2)
		}
		return err
	}
	if len(rest) > 0 && rest[0] == "help" && len(subVerbs(vs, v.name)) > 0 {
		return printVerb(ctx, e.stdout, v)
	}
	fs := flag.NewFlagSet("sinew "+v.name, flag.ContinueOnError)
	fs.Usage = func() {}
	fs.SetOutput(e.stderr)
	runVerb := v.setup(fs)
	pos, err := parseAll(fs, rest)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return printVerb(ctx, e.stdout, v)
	case err != nil:
		fmt.Fprintln(e.stderr)
		printFlags(e.stderr, v, fs)
		return exitError(2)
	}
	err = runVerb(ctx, e, pos)
	var ue usageError
	if errors.As(err, &ue) {
		// A verb's own check of its arguments (a missing --reason): say
		// what is wrong and what the verb takes.
		fmt.Fprintf(e.stderr, "sinew: %v\n\n", ue.error)
		printFlags(e.stderr, v, fs)
		return exitError(2)
	}
	return err
}

func beforeDashes(args []string) []string {
	if i := slices.Index(args, "--"); i >= 0 {
		return args[:i]
	}
	return args
}

// help prints the usage of the verb or group named by words (all of
// them when empty).
func help(vs []verb, words []string, stdout, stderr io.Writer) error {
	if len(words) == 0 {
		printUsage(stdout, vs)
		return nil
	}
	v, rest, group := lookup(vs, words)
	switch {
	case v != nil && len(rest) == 0:
		return printVerb(context.Background(), stdout, v)
	case v == nil && len(rest) == 0 && group != "":
		printGroup(stdout, vs, group)
		return nil
	}
	fmt.Fprintf(stderr, "sinew help: no verb %q\n\n", strings.Join(words, " "))
	printUsage(stderr, vs)
	return exitError(2)
}

// usageLine is "sinew NAME ARGS [flags]".
func (v *verb) usageLine(fs *flag.FlagSet) string {
	line := "sinew " + v.name
	if v.args != "" {
		line += " " + v.args
	}
	hasFlags := fs == nil
	if fs != nil {
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	}
	if hasFlags {
		line += " [flags]"
	}
	return line
}

// printVerb prints a verb's usage line, summary and flags.
func printVerb(ctx context.Context, w io.Writer, v *verb) error {
	if v.raw != nil {
		fmt.Fprintf(w, "usage: %s\n\n%s\n\n", v.usageLine(nil), v.summary)
		// parse prints the verb's flags on -h and returns flag.ErrHelp.
		_ = v.raw(ctx, []string{"-h"}, w, w)
		return nil
	}
	fs := flag.NewFlagSet("sinew "+v.name, flag.ContinueOnError)
	v.setup(fs)
	fmt.Fprintf(w, "usage: %s\n\n%s\n", v.usageLine(fs), v.summary)
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w)
		printDefaults(w, fs)
	}
	if subs := subVerbs(verbs(), v.name); len(subs) > 0 { // a verb that also leads to verbs (sinew batches show)
		fmt.Fprintln(w, "\nverbs:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, sv := range subs {
			fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(strings.TrimPrefix(sv.name+" "+sv.args, v.name+" ")), sv.summary)
		}
		tw.Flush()
	}
	return nil
}

// printFlags is the short usage after a flag error.
func printFlags(w io.Writer, v *verb, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s\n", v.usageLine(fs))
	printDefaults(w, fs)
}

func printDefaults(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "flags:")
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

// printGroup lists a group's verbs.
func printGroup(w io.Writer, vs []verb, group string) {
	fmt.Fprintf(w, "usage: sinew %s VERB [flags]\n\n%s\n\nverbs:\n", group, groups[group])
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i := range vs {
		v := &vs[i]
		if !strings.HasPrefix(v.name, group+" ") {
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(strings.TrimPrefix(v.name+" "+v.args, group+" ")), v.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n`sinew %s VERB --help` shows a verb's flags.\n", group)
}

// subVerbs are the verbs whose name continues name (batches → batches show).
func subVerbs(vs []verb, name string) []verb {
	var subs []verb
	for _, v := range vs {
		if strings.HasPrefix(v.name, name+" ") {
			subs = append(subs, v)
		}
	}
	return subs
}

// printUsage lists every verb.
func printUsage(w io.Writer, vs []verb) {
	fmt.Fprint(w, "sinew — Epic ⇄ Oracle Fusion integration\n\nusage:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i := range vs {
		v := &vs[i]
		fmt.Fprintf(tw, "  sinew %s\t%s\n", strings.TrimSpace(v.name+" "+v.args), v.summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
`+"`sinew help VERB...`"+` or `+"`sinew VERB... --help`"+` shows a verb's flags.
Verbs that talk to NATS connect to --nats (default $SINEW_NATS_URL or nats://127.0.0.1:4222)
as --creds FILE ($SINEW_NATS_CREDS), --context NAME|FILE ($SINEW_NATS_CONTEXT) or, by default,
sinew up's admin in --data-dir ($SINEW_DATA_DIR, ./var): var/nats/admin.json.
`)
}

// usageError is a bad command line whose message was already printed.
type usageError struct{ error }

// parseAll parses flags that may follow positional arguments
// (sinew dlq show 5 --payload); "--" ends the flags.
func parseAll(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		if len(args) > fs.NArg() && args[len(args)-fs.NArg()-1] == "--" {
			return append(pos, fs.Args()...), nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
