// Package natsembed runs a nats-server with JetStream inside the process:
// the one-process default of `sinew up` and the server every test uses.
package natsembed

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure the embedded server.
type Options struct {
	// Addr is the client listener, host:port; port 0 picks a free one.
	Addr string
	// StoreDir holds JetStream's file store.
	StoreDir string
	// SyncAlways fsyncs every write: single-node durability (docs/architecture.md, Guarantees 9).
	SyncAlways bool
	// Name of the server; "sinew" when empty.
	Name string
	// ReadyTimeout bounds the wait for the listener; 10 s when zero.
	ReadyTimeout time.Duration
	// Users, when set, are the only clients the server accepts (user and
	// password, each with its permissions); none means no authentication.
	Users []User
	// Log, when set, receives the server's notices, warnings and errors
	// (permission violations among them); the server is silent otherwise.
	Log func(level, msg string)
}

// logger adapts Options.Log to the server's logger.
type logger func(level, msg string)

func (l logger) Noticef(f string, v ...any) { l("info", fmt.Sprintf(f, v...)) }
func (l logger) Warnf(f string, v ...any)   { l("warn", fmt.Sprintf(f, v...)) }
func (l logger) Fatalf(f string, v ...any)  { l("error", fmt.Sprintf(f, v...)) }
func (l logger) Errorf(f string, v ...any)  { l("error", fmt.Sprintf(f, v...)) }
func (l logger) Debugf(f string, v ...any)  {}
func (l logger) Tracef(f string, v ...any)  {}

// User is one client identity of the embedded server.
type User struct {
	Name, Password string
	// Admin users have no restriction; the others only the subjects below.
	Admin                         bool
	PublishAllow, PublishDeny     []string
	SubscribeAllow, SubscribeDeny []string
	// Responses lets it reply once to each request it receives
	// (allow_responses), beyond PublishAllow.
	Responses bool
}

func (u User) permissions() *server.Permissions {
	if u.Admin {
		return nil
	}
	sp := func(allow, deny []string) *server.SubjectPermission {
		if len(allow) == 0 { // an empty allow list would allow everything
			return &server.SubjectPermission{Deny: []string{">"}}
		}
		return &server.SubjectPermission{Allow: allow, Deny: deny}
	}
	p := &server.Permissions{Publish: sp(u.PublishAllow, u.PublishDeny), Subscribe: sp(u.SubscribeAllow, u.SubscribeDeny)}
	if u.Responses {
		p.Response = &server.ResponsePermission{MaxMsgs: 1, Expires: 2 * time.Minute} // the config file's allow_responses: true
	}
	return p
}

// Start starts the server and waits until it accepts clients.
func Start(o Options) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("natsembed: addr %q: %w", o.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("natsembed: port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	name := o.Name
	if name == "" {
		name = "sinew"
	}
	opts := &server.Options{
		ServerName: name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		SyncAlways: o.SyncAlways,
		NoSigs:     true,
		// Payloads carry whole batch manifests and HL7 messages; 8 MiB leaves room.
		MaxPayload: 8 << 20,
	}
	for _, u := range o.Users {
		if u.Name == "" || u.Password == "" {
			return nil, fmt.Errorf("natsembed: user %q without a name or password", u.Name)
		}
		opts.Users = append(opts.Users, &server.User{Username: u.Name, Password: u.Password, Permissions: u.permissions()})
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	if o.Log != nil {
		s.SetLoggerV2(logger(o.Log), false, false, false)
	}
	go s.Start()
	wait := o.ReadyTimeout
	if wait == 0 {
		wait = 10 * time.Second
	}
	if !s.ReadyForConnections(wait) {
		s.Shutdown()
		return nil, fmt.Errorf("natsembed: server not ready after %s (store %s)", wait, o.StoreDir)
	}
	return s, nil
}

// Stop shuts the server down and waits for it to finish.
func Stop(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}
