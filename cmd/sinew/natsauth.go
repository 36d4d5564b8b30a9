package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sinewhq/sinew/pkg/natsembed"
	"github.com/sinewhq/sinew/pkg/streams"
)

// natsDir is where sinew up keeps its NATS credentials: users.json (every
// user's password) and one nats CLI context file per user, all 0600.
func natsDir(dataDir string) string { return filepath.Join(dataDir, "nats") }

// natsContext is the nats CLI's context file (~/.config/nats/context/NAME.json),
// the fields Sinew reads and writes.
type natsContext struct {
	Description string `json:"description,omitempty"`
	URL         string `json:"url,omitempty"`
	User        string `json:"user,omitempty"`
	Password    string `json:"password,omitempty"`
	Creds       string `json:"creds,omitempty"`
	NKey        string `json:"nkey,omitempty"`
	Token       string `json:"token,omitempty"`
	// TLS: the nats CLI's context keys (PEM files).
	CA   string `json:"ca,omitempty"`
	Cert string `json:"cert,omitempty"`
	Key  string `json:"key,omitempty"`
	// InboxPrefix is the user's own reply prefix (streams.InboxPrefix):
	// a service user may subscribe nowhere else.
	InboxPrefix string `json:"inbox_prefix,omitempty"`
}

// inboxPrefix is the context's inbox prefix, else its user's.
func inboxPrefix(c natsContext) string {
	if c.InboxPrefix != "" {
		return c.InboxPrefix
	}
	return streams.InboxPrefix(c.User)
}

// natsPasswords returns a password per user of the table: generated at
// first start, kept 0600 in the data dir, the same at every restart.
func natsPasswords(dataDir string, grants []streams.Grant) (map[string]string, error) {
	dir := natsDir(dataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	path := filepath.Join(dir, "users.json")
	pw := map[string]string{}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &pw); err != nil {
			return nil, fmt.Errorf("nats credentials %s: %w", path, err)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("nats credentials %s: mode %v, want 0600", path, fi.Mode().Perm())
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	changed := false
	for _, g := range grants {
		if pw[g.User] != "" {
			continue
		}
		var k [24]byte
		if _, err := rand.Read(k[:]); err != nil {
			return nil, err
		}
		pw[g.User], changed = hex.EncodeToString(k[:]), true
	}
	if changed {
		b, _ := json.MarshalIndent(pw, "", "  ")
		if err := writeSecret(path, b); err != nil {
			return nil, err
		}
	}
	return pw, nil
}

// embeddedUsers is the embedded server's users: the permission table with
// the data dir's passwords.
func embeddedUsers(topo streams.Topology, pw map[string]string) ([]natsembed.User, error) {
	var users []natsembed.User
	for _, g := range topo.Grants() {
		p, err := topo.Permissions(g)
		if err != nil {
			return nil, err
		}
		users = append(users, natsembed.User{Name: g.User, Password: pw[g.User], Admin: g.Admin,
			PublishAllow: p.PublishAllow, PublishDeny: p.PublishDeny, SubscribeAllow: p.SubscribeAllow, Responses: p.Responses})
	}
	return users, nil
}

// writeContexts writes <data dir>/nats/<user>.json, a nats CLI context per
// user; admin.json is the operator's (and the sinew CLI's default).
func writeContexts(dataDir, url string, pw map[string]string) error {
	for user, p := range pw {
		b, _ := json.MarshalIndent(natsContext{Description: "sinew up, user " + user, URL: url, User: user, Password: p, InboxPrefix: streams.InboxPrefix(user)}, "", "  ")
		if err := writeSecret(filepath.Join(natsDir(dataDir), user+".json"), b); err != nil {
			return err
		}
	}
	return nil
}

// writeSecret writes a 0600 file atomically.
func writeSecret(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("nats credentials: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fmt.Errorf("nats credentials: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("nats credentials: %w", err)
	}
	return nil
}

// readContext reads a nats CLI context: a path (contains a separator or
// ends in .json) or a name under $XDG_CONFIG_HOME/nats/context (default
// ~/.config/nats/context), as the nats CLI keeps them.
func readContext(name string) (natsContext, error) {
	var c natsContext
	path := name
	if !strings.ContainsRune(name, filepath.Separator) && !strings.HasSuffix(name, ".json") {
		base := os.Getenv("XDG_CONFIG_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return c, fmt.Errorf("nats context %s: %w", name, err)
			}
			base = filepath.Join(home, ".config")
		}
		path = filepath.Join(base, "nats", "context", name+".json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("nats context: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("nats context %s: %w", path, err)
	}
	return c, nil
}
