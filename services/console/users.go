package console

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

// Roles of console users.
const (
	RoleOperator = "operator"        // flows, dead letters, triage
	RoleFinance  = "finance-analyst" // reconciliation, triage
	RolePrivacy  = "privacy-officer" // audit search, payload views (PHI)
)

// User is one console user of the users file.
type User struct {
	Name string `yaml:"name"`
	Role string `yaml:"role"`
	// PasswordHash is bcrypt; the password itself is never stored.
	PasswordHash string `yaml:"password_hash"`
}

// usersFile is the users file's shape.
type usersFile struct {
	Users []User `yaml:"users"`
}

// LoadUsers reads the users file.
func LoadUsers(path string) (map[string]User, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f usersFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("console: users file %s: %w", path, err)
	}
	out := map[string]User{}
	for _, u := range f.Users {
		switch u.Role {
		case RoleOperator, RoleFinance, RolePrivacy:
		default:
			return nil, fmt.Errorf("console: users file %s: user %q: role %q: want %s, %s or %s", path, u.Name, u.Role, RoleOperator, RoleFinance, RolePrivacy)
		}
		out[u.Name] = u
	}
	return out, nil
}

// EnsureDemoUsers writes a users file with one demo user per role when
// path does not exist, their passwords in passwords.txt beside it (both
// 0600). It reports whether it wrote them.
func EnsureDemoUsers(path string) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	var f usersFile
	pw := ""
	for _, u := range []struct{ name, role string }{{"operator", RoleOperator}, {"finance", RoleFinance}, {"privacy", RolePrivacy}} {
		b := make([]byte, 9)
		_, _ = rand.Read(b)
		p := hex.EncodeToString(b)
		h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.DefaultCost)
		if err != nil {
			return false, err
		}
		f.Users = append(f.Users, User{Name: u.name, Role: u.role, PasswordHash: string(h)})
		pw += u.name + " " + p + "\n"
	}
	out, _ := yaml.Marshal(f)
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "passwords.txt"), []byte(pw), 0o600); err != nil {
		return false, err
	}
	return true, os.WriteFile(path, out, 0o600)
}
