package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// cli runs a command line with stdin and returns stdout, stderr and the
// exit status run would give.
func cli(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := dispatch(context.Background(), args, &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut})
	var ee exitError
	switch {
	case err == nil:
		return out.String(), errOut.String(), 0
	case errors.As(err, &ee):
		return out.String(), errOut.String(), int(ee)
	}
	return out.String(), errOut.String() + err.Error(), 1
}

// listedFlags are the flag names a help text lists.
func listedFlags(help string) []string {
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(help, -1) {
		names = append(names, m[1])
	}
	slices.Sort(names)
	return names
}

// TestEveryVerbHelp: every verb's --help, -h and `sinew help` print its
// usage, summary and exactly its own flags on stdout, and exit 0.
func TestEveryVerbHelp(t *testing.T) {
	for _, v := range verbs() {
		t.Run(v.name, func(t *testing.T) {
			words := strings.Fields(v.name)
			out, errOut, code := cli(t, "", append(words, "--help")...)
			if code != 0 || errOut != "" {
				t.Fatalf("--help: exit %d, stderr %q", code, errOut)
			}
			if !strings.HasPrefix(out, "usage: sinew "+v.name) || !strings.Contains(out, v.summary) {
				t.Errorf("--help lacks the usage line or the summary:\n%s", out)
			}
			for _, other := range [][]string{append(words, "-h"), append([]string{"help"}, words...)} {
				if o, _, c := cli(t, "", other...); c != 0 || o != out {
					t.Errorf("%v: exit %d, output differs from --help:\n%s", other, c, o)
				}
			}
			if v.setup == nil {
				if !strings.Contains(out, "flags:") {
					t.Errorf("no flags listed:\n%s", out)
				}
				return
			}
			fs := flag.NewFlagSet(v.name, flag.ContinueOnError)
			v.setup(fs)
			var want []string
			fs.VisitAll(func(f *flag.Flag) { want = append(want, f.Name) })
			slices.Sort(want)
			if got := listedFlags(out); !slices.Equal(got, want) {
				t.Errorf("flags listed %v, want the verb's own %v", got, want)
			}
		})
	}
}

// TestHelpListsOnlyTheVerbsFlags: a sub-verb's help does not list its
// siblings' flags (it did, from one shared flag set).
func TestHelpListsOnlyTheVerbsFlags(t *testing.T) {
	tests := []struct {
		args    []string
		has     []string
		hasNone []string
	}{
		{[]string{"dlq", "list", "--help"}, []string{"json", "flow", "nats"}, []string{"payload", "reason", "force", "dry-run"}},
		{[]string{"dlq", "show", "--help"}, []string{"payload", "envelope", "actor"}, []string{"reason", "force", "dry-run", "subject"}},
		{[]string{"dlq", "replay", "--help"}, []string{"reason", "force", "dry-run", "yes", "since", "until", "subject"}, []string{"payload", "json"}},
		{[]string{"audit", "verify", "--help"}, []string{"nats"}, []string{"limit", "subject"}},
		{[]string{"streams", "ls", "--help"}, []string{"json"}, []string{"replicas"}},
		{[]string{"hl7", "parse", "--help"}, []string{"charset"}, []string{"addr", "code", "tls"}},
		{[]string{"hl7", "send", "--help"}, []string{"addr", "tls", "timeout"}, []string{"code", "text"}},
		{[]string{"fbdi", "check", "--help"}, []string{"stats"}, []string{"resolute", "crosswalk", "out", "flows"}},
		{[]string{"fbdi", "build", "--help"}, []string{"flows", "data-dir", "resolute"}, []string{"nats"}},
		{[]string{"crosswalk", "chart", "show", "--help"}, []string{"json"}, []string{"fusion-url", "kind"}},
		{[]string{"crosswalk", "versions", "--help"}, []string{"kind", "json"}, []string{"version", "fusion-url"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, _, code := cli(t, "", tt.args...)
			if code != 0 {
				t.Fatalf("exit %d", code)
			}
			got := listedFlags(out)
			for _, f := range tt.has {
				if !slices.Contains(got, f) {
					t.Errorf("lacks -%s: %v", f, got)
				}
			}
			for _, f := range tt.hasNone {
				if slices.Contains(got, f) {
					t.Errorf("lists a sibling's -%s: %v", f, got)
				}
			}
		})
	}
}

// TestGroupHelp: sinew dlq --help (and every other group) lists the
// group's verbs and exits 0; a missing or unknown verb exits 2.
func TestGroupHelp(t *testing.T) {
	for group := range groups {
		t.Run(group, func(t *testing.T) {
			words := strings.Fields(group)
			var want []string
			for _, v := range verbs() {
				if strings.HasPrefix(v.name, group+" ") {
					want = append(want, strings.TrimPrefix(v.name, group+" "))
				}
			}
			if len(want) == 0 {
				t.Fatal("a group without verbs")
			}
			for _, args := range [][]string{append(words, "--help"), append(words, "-h"), append(words, "help"), append([]string{"help"}, words...)} {
				out, errOut, code := cli(t, "", args...)
				if code != 0 || errOut != "" {
					t.Fatalf("%v: exit %d, stderr %q", args, code, errOut)
				}
				for _, w := range want {
					if !strings.Contains(out, "\n  "+w) {
						t.Errorf("%v does not list %q:\n%s", args, w, out)
					}
				}
			}
			if _, errOut, code := cli(t, "", words...); code != 2 || !strings.Contains(errOut, "usage: sinew "+group) {
				t.Errorf("no verb: exit %d, stderr %q", code, errOut)
			}
			if _, errOut, code := cli(t, "", append(words, "frobnicate")...); code != 2 || !strings.Contains(errOut, `unknown verb "frobnicate"`) {
				t.Errorf("unknown verb: exit %d, stderr %q", code, errOut)
			}
		})
	}
}

func TestTopLevelUsage(t *testing.T) {
	out, _, code := cli(t, "", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, v := range verbs() {
		if !strings.Contains(out, "sinew "+v.name) {
			t.Errorf("usage lacks %q", v.name)
		}
	}
	if _, errOut, code := cli(t, ""); code != 2 || !strings.Contains(errOut, "usage:") {
		t.Errorf("no arguments: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := cli(t, "", "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := cli(t, "", "dlq", "list", "--frobnicate"); code != 2 || !strings.Contains(errOut, "-frobnicate") || !strings.Contains(errOut, "usage: sinew dlq list") {
		t.Errorf("bad flag: exit %d, stderr %q", code, errOut)
	}
	if _, _, code := cli(t, "", "help", "dlq", "frobnicate"); code != 2 {
		t.Errorf("help for no verb: exit %d", code)
	}
}

func TestFindFlows(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "var")
	write := func(p string) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("flows: []\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	given := write(filepath.Join(dir, "etc", "my-flows.yaml"))
	t.Chdir(t.TempDir()) // no flows.yaml in the working directory yet
	tests := []struct {
		name, flag, env string
		setup           func()
		want, wantErr   string
	}{
		{name: "nothing", wantErr: "give --flows FILE"},
		{name: "flag", flag: given, want: given},
		{name: "flag missing", flag: filepath.Join(dir, "nope.yaml"), wantErr: "from --flows"},
		{name: "env", env: given, want: given},
		{name: "env missing", env: filepath.Join(dir, "nope.yaml"), wantErr: "from $SINEW_FLOWS"},
		{name: "flag beats env", flag: given, env: filepath.Join(dir, "nope.yaml"), want: given},
		{name: "working dir", setup: func() { write("flows.yaml") }, want: "flows.yaml"},
		{name: "data dir first", setup: func() { write(filepath.Join(data, "flows.yaml")) }, want: filepath.Join(data, "flows.yaml")},
	}
	for _, tt := range tests {
		if tt.setup != nil {
			tt.setup()
		}
		got, err := findFlows(tt.flag, tt.env, data)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("%s: %q, %v; want %q", tt.name, got, err, tt.want)
		}
		if tt.name == "nothing" && err != nil && !strings.Contains(err.Error(), filepath.Join("var", "flows.yaml")) {
			t.Errorf("the error does not name where it looked: %v", err)
		}
	}
}
