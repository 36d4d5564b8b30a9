package natstest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// StartWithCreds starts a JetStream server in operator (JWT) mode, as a
// deployment with decentralised authentication runs it, and writes the
// credentials file (user JWT and nkey seed, mode 0600) of one user with
// every permission into dir. Nothing else may connect.
func StartWithCreds(tb testing.TB, dir string) (s *Server, credsFile string) {
	tb.Helper()
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatalf("natstest: operator mode: %v", err)
		}
	}
	op, err := nkeys.CreateOperator()
	must(err)
	opPub, err := op.PublicKey()
	must(err)
	opClaims := jwt.NewOperatorClaims(opPub)
	_, err = opClaims.Encode(op)
	must(err)

	// account registers an account signed by the operator.
	resolver := &server.MemAccResolver{}
	account := func(name string, js bool) (nkeys.KeyPair, string) {
		kp, err := nkeys.CreateAccount()
		must(err)
		pub, err := kp.PublicKey()
		must(err)
		c := jwt.NewAccountClaims(pub)
		c.Name = name
		if js {
			c.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		token, err := c.Encode(op)
		must(err)
		must(resolver.Store(pub, token))
		return kp, pub
	}
	_, sysPub := account("SYS", false)
	acct, _ := account("SINEW", true)

	user, err := nkeys.CreateUser()
	must(err)
	userPub, err := user.PublicKey()
	must(err)
	uc := jwt.NewUserClaims(userPub)
	uc.Name = "admin"
	userJWT, err := uc.Encode(acct)
	must(err)
	seed, err := user.Seed()
	must(err)
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	must(err)
	credsFile = filepath.Join(dir, "admin.creds")
	must(os.WriteFile(credsFile, creds, 0o600))

	store := tb.TempDir()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true,
		JetStream: true, StoreDir: store,
		TrustedOperators: []*jwt.OperatorClaims{opClaims},
		AccountResolver:  resolver,
		SystemAccount:    sysPub,
	})
	must(err)
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		tb.Fatal("natstest: operator-mode server not ready")
	}
	tb.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return &Server{Server: srv, StoreDir: store}, credsFile
}
