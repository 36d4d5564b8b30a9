package smart

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Assertion checks a token endpoint makes, as Epic documents them.
var (
	ErrIssuer   = errors.New("smart: iss and sub must both be the client id")
	ErrAudience = errors.New("smart: aud is not this token endpoint")
	ErrExpired  = errors.New("smart: assertion expired")
	ErrTooLong  = errors.New("smart: assertion exp more than 5 minutes ahead")
	ErrNotYet   = errors.New("smart: assertion not valid yet (nbf)")
	ErrReplayed = errors.New("smart: assertion jti already used")
	ErrNoJTI    = errors.New("smart: assertion has no jti")
)

// Skew is the clock difference tolerated on exp and nbf.
const Skew = 30 * time.Second

// ReplayGuard remembers jtis until their assertion expires.
type ReplayGuard struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// NewReplayGuard returns an empty guard.
func NewReplayGuard() *ReplayGuard { return &ReplayGuard{seen: map[string]time.Time{}} }

// Check verifies token for clientID at tokenURL against set at now: the
// signature, iss = sub = clientID, aud, exp in (now, now+5m], nbf, and a
// jti not seen before (recorded when everything else holds).
func (g *ReplayGuard) Check(token, clientID, tokenURL string, set JWKS, now time.Time) (Claims, error) {
	c, err := Verify(token, set)
	if err != nil {
		return c, err
	}
	exp := time.Unix(c.Exp, 0)
	switch {
	case c.Iss != clientID || c.Sub != clientID:
		return c, ErrIssuer
	case c.Aud != tokenURL:
		return c, ErrAudience
	case !now.Before(exp.Add(Skew)):
		return c, ErrExpired
	case exp.Sub(now) > MaxAssertionLifetime+Skew:
		return c, ErrTooLong
	case c.Nbf != 0 && now.Add(Skew).Before(time.Unix(c.Nbf, 0)):
		return c, ErrNotYet
	case c.Jti == "":
		return c, ErrNoJTI
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for j, e := range g.seen {
		if now.After(e.Add(Skew)) {
			delete(g.seen, j)
		}
	}
	key := clientID + "\x00" + c.Jti
	if _, dup := g.seen[key]; dup {
		return c, fmt.Errorf("%w", ErrReplayed)
	}
	g.seen[key] = exp
	return c, nil
}
