package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/sinewhq/sinew/pkg/audit"
	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/pkg/track"
	"github.com/sinewhq/sinew/pkg/triage"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
)

//go:embed static/*
var static embed.FS

//go:embed templates.html
var pages string

var tmpl = template.Must(template.New("console").Funcs(template.FuncMap{"dict": dict,
	"cellsDashboard": func() []string { return dashboardCells },
	"cellsCutover":   func() []string { return cutoverCells }}).Parse(pages))

// The cells of a flow's row, by data-k, on the dashboard and on the
// cutover page (flowFigures.Cells).
var (
	dashboardCells = []string{"state", "received", "processed", "backlog", "in_flight", "oldest", "dlq", "verdict"}
	cutoverCells   = []string{"state", "by", "reason", "backlog", "in_flight", "oldest"}
)

// dict makes a map of key, value pairs: arguments of a shared template.
func dict(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := kv[i].(string)
		m[k] = kv[i+1]
	}
	return m
}

// session is one logged-in user.
type session struct {
	user    User
	csrf    string
	expires time.Time
}

// web is the console's HTTP side: login, sessions, pages.
type web struct {
	js     jetstream.JetStream
	index  *track.Index // the console's own tracking index (nil: /track says so)
	audit  *audit.Writer
	triage *triage.Store
	users  map[string]User
	inv    *flows.Inventory // nil: flow activation is off
	oidc   *oidcSignIn      // nil: no OIDC sign-in

	mu       sync.Mutex
	sessions map[string]*session
	failures map[string][]time.Time // remote host → recent failed logins
	drains   map[string]*drainWatch // flow → its drain since the console changed its state
	figs     figureCache            // every flow's figures, shared by the pages' polls
}

func newWeb(js jetstream.JetStream, w *audit.Writer, st *triage.Store, users map[string]User, inv *flows.Inventory) *web {
	return &web{js: js, audit: w, triage: st, users: users, inv: inv,
		sessions: map[string]*session{}, failures: map[string][]time.Time{}, drains: map[string]*drainWatch{}}
}

const (
	sessionCookie = "sinew_session"
	sessionTTL    = 8 * time.Hour
	// maxFailures failed logins per host within failWindow: then 429.
	maxFailures = 5
	failWindow  = time.Minute
)

func token() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// handler is the console's routes behind its security headers.
func (w *web) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.FileServerFS(static))
	mux.HandleFunc("GET /login", w.loginPage)
	mux.HandleFunc("POST /login", w.login)
	mux.HandleFunc("GET /login/oidc", w.withOIDC(w.oidcStart))
	mux.HandleFunc("GET "+oidcCallbackPath, w.withOIDC(w.oidcCallback))
	mux.HandleFunc("POST /logout", w.auth("", w.logout))
	mux.HandleFunc("GET /{$}", w.auth("", w.dashboard))
	mux.HandleFunc("GET /api/streams", w.auth("", w.apiStreams))
	mux.HandleFunc("GET /track", w.auth("", w.trackPage))
	mux.HandleFunc("GET /triage", w.auth("", w.triagePage))
	mux.HandleFunc("POST /triage/resolve", w.auth("", w.triageResolve))
	mux.HandleFunc("GET /dlq", w.auth(RoleOperator, w.dlqPage))
	mux.HandleFunc("POST /dlq/act", w.auth(RoleOperator, w.dlqAct))
	mux.HandleFunc("GET /dlq/payload", w.auth(RolePrivacy, w.dlqPayload))
	mux.HandleFunc("GET /audit", w.auth(RolePrivacy, w.auditPage))
	mux.HandleFunc("GET /flows", w.auth("", w.flowsPage))
	mux.HandleFunc("POST /flows/state", w.auth(RoleOperator, w.flowsState))
	mux.HandleFunc("GET /api/flows", w.auth("", w.apiFlows))
	mux.HandleFunc("GET /api/flows/progress", w.auth("", w.apiProgress))
	mux.HandleFunc("GET /recon", w.auth(RoleFinance, w.reconPage))
	mux.HandleFunc("GET /recon/batch", w.auth(RoleFinance, w.reconBatch))
	mux.HandleFunc("GET /recon/journal", w.auth(RoleFinance, w.reconJournal))
	return headers(mux)
}

// headers sets the security headers of every answer.
func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		hd := rw.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(rw, r)
	})
}

type authed func(rw http.ResponseWriter, r *http.Request, s *session)

// auth admits a logged-in user with role (any role when ""); a POST must
// carry the session's CSRF token. A refusal is audited.
func (w *web) auth(role string, h authed) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		s := w.session(r)
		if s == nil {
			http.Redirect(rw, r, "/login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && subtle.ConstantTimeCompare([]byte(r.FormValue("csrf")), []byte(s.csrf)) != 1 {
			http.Error(rw, "bad CSRF token", http.StatusForbidden)
			return
		}
		if role != "" && s.user.Role != role {
			w.record(r.Context(), s, "console-refused", "refused", r.URL.Path+" needs "+role, nil)
			rw.WriteHeader(http.StatusForbidden)
			w.render(rw, "refused", s, map[string]string{"Need": role})
			return
		}
		h(rw, r, s)
	}
}

func (w *web) session(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.sessions[c.Value]
	if s == nil || time.Now().After(s.expires) {
		delete(w.sessions, c.Value)
		return nil
	}
	return s
}

// withOIDC is h when OIDC sign-in is configured, else 404.
func (w *web) withOIDC(h http.HandlerFunc) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		if w.oidc == nil {
			http.NotFound(rw, r)
			return
		}
		h(rw, r)
	}
}

// loginData is the login page's data: an error, and the OIDC issuer
// when its sign-in is configured.
func (w *web) loginData(msg string) map[string]string {
	d := map[string]string{"Error": msg}
	if w.oidc != nil {
		d["OIDC"] = w.oidc.cfg.Issuer
	}
	return d
}

func (w *web) loginPage(rw http.ResponseWriter, r *http.Request) {
	w.render(rw, "login", nil, w.loginData(""))
}

func (w *web) login(rw http.ResponseWriter, r *http.Request) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	now := time.Now()
	w.mu.Lock()
	recent := w.failures[host][:0]
	for _, t := range w.failures[host] {
		if now.Sub(t) < failWindow {
			recent = append(recent, t)
		}
	}
	w.failures[host] = recent
	limited := len(recent) >= maxFailures
	w.mu.Unlock()
	if limited {
		http.Error(rw, "too many failed logins; wait a minute", http.StatusTooManyRequests)
		return
	}
	name, pw := r.FormValue("user"), r.FormValue("password")
	u, ok := w.users[name]
	if !ok || bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(pw)) != nil {
		w.mu.Lock()
		w.failures[host] = append(w.failures[host], now)
		w.mu.Unlock()
		rw.WriteHeader(http.StatusUnauthorized)
		w.render(rw, "login", nil, w.loginData("wrong user or password"))
		return
	}
	w.startSession(rw, r, u, "")
	http.Redirect(rw, r, "/", http.StatusSeeOther)
}

// startSession opens a session for u (audited, detail saying how u
// signed in) and sets its cookie.
func (w *web) startSession(rw http.ResponseWriter, r *http.Request, u User, detail string) *session {
	id := token()
	s := &session{user: u, csrf: token(), expires: time.Now().Add(sessionTTL)}
	w.mu.Lock()
	w.sessions[id] = s
	w.mu.Unlock()
	w.record(r.Context(), s, "console-login", "ok", detail, nil)
	http.SetCookie(rw, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, Expires: s.expires})
	return s
}

func (w *web) logout(rw http.ResponseWriter, r *http.Request, s *session) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		w.mu.Lock()
		delete(w.sessions, c.Value)
		w.mu.Unlock()
	}
	http.SetCookie(rw, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1})
	http.Redirect(rw, r, "/login", http.StatusSeeOther)
}

// record writes an audit event of a console user's view or action.
func (w *web) record(ctx context.Context, s *session, action, outcome, detail string, ev *sinewv1.AuditEvent) {
	if ev == nil {
		ev = &sinewv1.AuditEvent{}
	}
	ev.Actor, ev.Action, ev.Hop, ev.Outcome = "console:"+s.user.Name, action, streams.HopConsole, outcome
	if ev.Detail == "" {
		ev.Detail = detail
	}
	_ = w.audit.Write(ctx, ev)
}

func (w *web) render(rw http.ResponseWriter, page string, s *session, data any) {
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	v := map[string]any{"Page": page, "Data": data}
	if s != nil {
		v["User"], v["Role"], v["CSRF"] = s.user.Name, s.user.Role, s.csrf
	}
	if err := tmpl.ExecuteTemplate(rw, page, v); err != nil {
		http.Error(rw, "template: "+err.Error(), http.StatusInternalServerError)
	}
}

// streamRow is one line of the dashboard.
type streamRow struct {
	Name     string `json:"name"`
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	Last     string `json:"last"`
}

func (w *web) streamRows(ctx context.Context) []streamRow {
	var rows []streamRow
	for _, name := range []string{streams.HL7In, streams.BatchIn, streams.FusionCmd, streams.Results, streams.Recon, streams.DLQ, streams.Audit} {
		s, err := w.js.Stream(ctx, name)
		if err != nil {
			continue
		}
		st := s.CachedInfo().State
		last := "-"
		if st.Msgs > 0 {
			last = st.LastTime.UTC().Format(time.RFC3339)
		}
		rows = append(rows, streamRow{Name: name, Messages: st.Msgs, Bytes: st.Bytes, Last: last})
	}
	return rows
}

func (w *web) dashboard(rw http.ResponseWriter, r *http.Request, s *session) {
	data := map[string]any{"Streams": w.streamRows(r.Context())}
	rows, err := w.figures(r.Context())
	if err != nil {
		data["Error"] = err.Error()
	}
	data["Flows"] = rows
	open, _ := w.triage.List(r.Context(), triage.Filter{State: "unresolved"})
	data["Triage"] = len(open)
	w.render(rw, "dashboard", s, data)
}

func (w *web) apiStreams(rw http.ResponseWriter, r *http.Request, _ *session) {
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(w.streamRows(r.Context()))
}

func (w *web) trackPage(rw http.ResponseWriter, r *http.Request, s *session) {
	id := strings.TrimSpace(r.FormValue("id"))
	data := map[string]any{"ID": id}
	if id != "" {
		hops, err := w.lookup(id)
		if err != nil {
			data["Error"] = err.Error()
		}
		data["Hops"] = hops
		w.record(r.Context(), s, "console-track", "ok", "looked up an identifier (hash "+track.Key(id)+")", nil)
	}
	w.render(rw, "track", s, data)
}

// lookup reads the console's own index.
func (w *web) lookup(id string) ([]track.Hop, error) {
	if w.index == nil {
		return nil, errors.New("track: the tracking index is not open")
	}
	return w.index.LookupValue(id)
}

func (w *web) triagePage(rw http.ResponseWriter, r *http.Request, s *session) {
	items, err := w.triage.List(r.Context(), triage.Filter{State: r.FormValue("state"), Flow: r.FormValue("flow")})
	data := map[string]any{"Items": items}
	if err != nil {
		data["Error"] = err.Error()
	}
	w.render(rw, "triage", s, data)
}

func (w *web) triageResolve(rw http.ResponseWriter, r *http.Request, s *session) {
	if s.user.Role == RolePrivacy {
		rw.WriteHeader(http.StatusForbidden)
		w.render(rw, "refused", s, map[string]string{"Need": RoleOperator + " or " + RoleFinance})
		return
	}
	// The store audits the resolution itself.
	if _, err := w.triage.Resolve(r.Context(), "console:"+s.user.Name, r.FormValue("id"), r.FormValue("note")); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	http.Redirect(rw, r, "/triage", http.StatusSeeOther)
}

// dlqPayload shows a dead letter's original bytes: PHI, so for the
// privacy officer only, and audited before it is shown.
func (w *web) dlqPayload(rw http.ResponseWriter, r *http.Request, s *session) {
	seq, err := strconv.ParseUint(r.FormValue("seq"), 10, 64)
	if err != nil {
		http.Error(rw, "seq: a DLQ sequence", http.StatusBadRequest)
		return
	}
	st, err := dlq.Open(r.Context(), w.js, nil)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	e, err := st.Get(r.Context(), seq)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusNotFound)
		return
	}
	// The bytes the source sent (an HL7 message's text inside its
	// receipt); a payload that is no Sinew event is shown as stored.
	raw, err := st.Original(r.Context(), e.Letter)
	if err != nil {
		raw = e.Letter.GetPayload()
	}
	w.record(r.Context(), s, "console-payload", "ok", "viewed the payload of dead letter "+strconv.FormatUint(seq, 10),
		&sinewv1.AuditEvent{Flow: e.Letter.GetFlow(), Stream: streams.DLQ, StreamSeq: seq, EventId: e.Letter.GetEventId()})
	kind, fields := decodePayload(raw)
	text := strings.ReplaceAll(string(raw), "\r", "\n")
	w.render(rw, "payload", s, map[string]any{"Seq": seq, "Letter": e.Letter, "Text": text, "Kind": kind, "Fields": fields})
}

func (w *web) auditPage(rw http.ResponseWriter, r *http.Request, s *session) {
	flow, user := r.FormValue("flow"), r.FormValue("user")
	data := map[string]any{"Flow": flow, "User": user}
	if flow != "" || user != "" {
		w.record(r.Context(), s, "audit-query", "ok", "flow="+flow+" user="+user, nil)
		filter := "audit.>"
		if flow != "" {
			filter = streams.AuditSubject(flow, "*")
		}
		var evs []*sinewv1.AuditEvent
		err := audit.Read(r.Context(), w.js, filter, func(e audit.Entry) error {
			for _, ev := range e.Events {
				if user == "" || strings.HasPrefix(ev.GetActor(), user) {
					evs = append(evs, ev)
				}
			}
			return nil
		})
		if len(evs) > 500 {
			evs = evs[len(evs)-500:]
		}
		data["Events"] = evs
		if err != nil {
			data["Error"] = err.Error()
		}
	}
	w.render(rw, "audit", s, data)
}
