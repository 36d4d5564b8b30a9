package fusionsim

import (
	"bytes"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// APIPath is the REST root the simulator serves.
const APIPath = "/fscmRestApi/resources/11.13.18.05"

// Ledger is a ledger the simulator knows.
type Ledger struct {
	ID              string `yaml:"id" json:"id"`
	Name            string `yaml:"name" json:"name"`
	Currency        string `yaml:"currency" json:"currency"`
	DataAccessSetID string `yaml:"data_access_set_id" json:"dataAccessSetId"`
}

// SimConfig configures the simulator core (NewServer).
type SimConfig struct {
	// Basic credentials and bearer tokens accepted on Fusion resources.
	Username     string   `yaml:"username"`
	Password     string   `yaml:"password"`
	BearerTokens []string `yaml:"bearer_tokens"`

	// ChartPath is a chart-of-accounts CSV (header naming the segments,
	// one valid combination per row, as deploy/demo/chart.csv); each
	// segment's value set is the set of values in its column. Empty means
	// the built-in copy of the demo chart.
	ChartPath string `yaml:"chart"`
	// ChartCSV is the chart's content, used instead of ChartPath (tests).
	ChartCSV string `yaml:"-"`
	// ValueSetNames name the segments' value sets in EF04 messages;
	// defaults come from the demo chart's segments.
	ValueSetNames []string `yaml:"value_set_names"`
	// AccountDelimiter joins segments in AccountCombination; default "-".
	AccountDelimiter string `yaml:"account_delimiter"`

	Ledgers    []Ledger `yaml:"ledgers"`
	Sources    []string `yaml:"sources"`
	Categories []string `yaml:"categories"`

	// Step is how long each ESS job state lasts (WAIT, RUNNING...).
	Step time.Duration `yaml:"step"`
	// ReadLag delays the visibility of posted journals and balances on
	// the REST read-back resources.
	ReadLag time.Duration `yaml:"read_lag"`
	// ExpandLimit caps each expanded child collection (hasMore set beyond
	// it); 0 means no cap.
	ExpandLimit int `yaml:"expand_limit"`
	// FirstRequestID is the first ESS request id handed out.
	FirstRequestID int64 `yaml:"first_request_id"`
	// CallbackAttempts is how often a callback is tried; default 3.
	CallbackAttempts int `yaml:"callback_attempts"`
	// Seed makes fault rates repeatable.
	Seed uint64 `yaml:"seed"`
	// Faults active from the start (change them at run time on /sim/faults).
	Faults Faults `yaml:"faults"`

	// SCMPath is the SCM and procurement master data (organizations,
	// subinventories, UOMs, transaction types, items, suppliers, starting
	// on-hand) as deploy/demo/fusion_scm.yaml; empty means the built-in
	// copy of that file. SCMYAML is the content itself (tests).
	SCMPath string `yaml:"scm"`
	SCMYAML string `yaml:"-"`
	// StartingOnhand, when set, overrides the master data's starting
	// on-hand quantity (a decimal, e.g. "1000").
	StartingOnhand string `yaml:"starting_onhand"`
	// OAuth configures the JWT-assertion token endpoint.
	OAuth OAuthConfig `yaml:"oauth"`
	// DayInterval, when set, produces Fusion's side of a day for make run
	// (day.go): a hire, a department change, a supplier, in turn.
	DayInterval time.Duration `yaml:"day_interval"`

	// Logger receives one line per request and job; never file content.
	Logger *slog.Logger `yaml:"-"`
}

// DefaultSimConfig matches flows.yaml's resolute-gl section and the demo
// chart.
func DefaultSimConfig() SimConfig {
	return SimConfig{
		Username: "sinew", Password: "sinew",
		Ledgers: []Ledger{{
			ID: "300000000000001", Name: "US Primary Ledger", Currency: "USD", DataAccessSetID: "300000000000010",
		}},
		Sources:          []string{"Epic Resolute"},
		Categories:       []string{"Revenue"},
		AccountDelimiter: "-",
		Step:             200 * time.Millisecond,
		FirstRequestID:   10075838,
		CallbackAttempts: 3,
		Seed:             1,
	}
}

// Server is the simulator: an http.Handler over in-memory Fusion state.
type Server struct {
	cfg     SimConfig
	chart   *chart
	log     *slog.Logger
	handler http.Handler
	cbHTTP  *http.Client

	closing chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex
	rng      *rand.Rand
	faults   Faults
	release  chan struct{} // closed and replaced by Release
	releases int           // how often Release was called
	st       *state

	md        *SCMData      // SCM master data as configured
	scm       *scmState     // SCM state (reset to md)
	hcm       *hcmState     // HCM workers and Atom feed entries (hcm.go)
	pay       *paymentState // payables payments (payments.go)
	oauthKeys []*rsa.PublicKey
	tokens    map[string]time.Time // issued bearer tokens → expiry
}

// NewServer builds a simulator from cfg; zero fields take
// DefaultSimConfig's values.
func NewServer(cfg SimConfig) (*Server, error) {
	def := DefaultSimConfig()
	if cfg.Username == "" && cfg.Password == "" {
		cfg.Username, cfg.Password = def.Username, def.Password
	}
	if len(cfg.Ledgers) == 0 {
		cfg.Ledgers = def.Ledgers
	}
	if len(cfg.Sources) == 0 {
		cfg.Sources = def.Sources
	}
	if len(cfg.Categories) == 0 {
		cfg.Categories = def.Categories
	}
	if cfg.AccountDelimiter == "" {
		cfg.AccountDelimiter = def.AccountDelimiter
	}
	if cfg.Step <= 0 {
		cfg.Step = def.Step
	}
	if cfg.FirstRequestID <= 0 {
		cfg.FirstRequestID = def.FirstRequestID
	}
	if cfg.CallbackAttempts <= 0 {
		cfg.CallbackAttempts = def.CallbackAttempts
	}
	for _, l := range cfg.Ledgers {
		if l.ID == "" || l.Name == "" || l.Currency == "" {
			return nil, fmt.Errorf("fusionsim: ledger %+v: id, name and currency are required", l)
		}
	}
	ch, err := loadChart(cfg)
	if err != nil {
		return nil, err
	}
	if err := cfg.Faults.check(); err != nil {
		return nil, err
	}
	md, err := loadSCM(cfg)
	if err != nil {
		return nil, err
	}
	keys, err := loadOAuthKeys(cfg.OAuth)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		cfg: cfg, chart: ch, log: log,
		cbHTTP:  &http.Client{Timeout: 10 * time.Second},
		closing: make(chan struct{}),
		rng:     rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		faults:  cfg.Faults.clone(),
		release: make(chan struct{}),
	}
	s.st = newState(cfg.FirstRequestID)
	s.md, s.scm, s.oauthKeys, s.tokens = md, newSCMState(md, nil), keys, map[string]time.Time{}
	s.handler = s.routes()
	return s, nil
}

// Handler serves the Fusion resources and the /sim/ admin endpoints.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the running job chains and callbacks and waits for them.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.closing:
	default:
		close(s.closing)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) routes() http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("POST "+APIPath+"/erpintegrations", s.erpPost)
	api.HandleFunc("GET "+APIPath+"/erpintegrations", s.erpGet)
	api.HandleFunc("GET "+APIPath+"/journalBatches", s.batchesGet)
	api.HandleFunc("GET "+APIPath+"/journalBatches/{id}", s.batchGet)
	api.HandleFunc("GET "+APIPath+"/journalBatches/{id}/child/journalHeaders", s.headersGet)
	api.HandleFunc("GET "+APIPath+"/journalBatches/{id}/child/journalHeaders/{hid}/child/journalLines", s.linesGet)
	api.HandleFunc("GET "+APIPath+"/ledgerBalances", s.balancesGet)
	api.HandleFunc("GET "+APIPath+"/accountCombinationsLOV", s.combinationsGet)
	api.HandleFunc("POST "+APIPath+"/inventoryStagedTransactions", s.txnPost)
	api.HandleFunc("GET "+APIPath+"/inventoryStagedTransactions", s.txnGet)
	api.HandleFunc("GET "+APIPath+"/inventoryStagedTransactions/{id}", s.txnGetOne)
	api.HandleFunc("POST "+APIPath+"/itemsV2", s.itemPost)
	api.HandleFunc("GET "+APIPath+"/itemsV2", s.itemGet)
	api.HandleFunc("POST "+APIPath+"/suppliers", s.supplierPost)
	api.HandleFunc("GET "+APIPath+"/suppliers", s.supplierGet)
	api.HandleFunc("GET "+APIPath+"/suppliers/{id}/child/{child}", s.supplierChildGet)
	api.HandleFunc("PATCH "+APIPath+"/suppliers/{id}", s.supplierPatch)
	api.HandleFunc("GET "+APIPath+"/inventoryOnhandBalances", s.onhandGet)
	api.HandleFunc("POST "+APIPath+"/{$}", s.batchPost)
	s.hcmRoutes(api)
	s.paymentRoutes(api)
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "The requested resource "+r.URL.Path+" doesn't exist.", "")
	})
	root := http.NewServeMux()
	s.adminRoutes(root)
	root.Handle("POST "+TokenPath, s.withFaults(http.HandlerFunc(s.tokenPost)))
	root.Handle("/", s.withFaults(s.withAuth(api)))
	// Fusion's finder and q syntax put ';' in queries; handlers read the
	// raw query from RequestURI, this only keeps net/http from warning.
	return http.AllowQuerySemicolons(root)
}

// withAuth checks Basic or Bearer credentials as Fusion does.
func (s *Server) withAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r.Header.Get("Authorization")) {
			w.Header().Add("WWW-Authenticate", `Basic realm="fusionsim"`)
			w.Header().Add("WWW-Authenticate", `Bearer realm="fusionsim"`)
			writeError(w, http.StatusUnauthorized, "Authentication failed: missing or invalid credentials.", "")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) authorized(h string) bool {
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok {
		return false
	}
	switch strings.ToLower(scheme) {
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if err != nil {
			return false
		}
		u, p, ok := strings.Cut(string(raw), ":")
		return ok && s.cfg.Username != "" &&
			subtle.ConstantTimeCompare([]byte(u), []byte(s.cfg.Username)) == 1 &&
			subtle.ConstantTimeCompare([]byte(p), []byte(s.cfg.Password)) == 1
	case "bearer":
		tok := strings.TrimSpace(cred)
		for _, t := range s.cfg.BearerTokens {
			if t != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(t)) == 1 {
				return true
			}
		}
		return tok != "" && s.issuedToken(tok)
	}
	return false
}

// errorBody is Fusion's REST error envelope.
type errorBody struct {
	Type      string        `json:"type"`
	Title     string        `json:"title"`
	Status    string        `json:"status"`
	Detail    string        `json:"detail,omitempty"`
	ErrorCode string        `json:"o:errorCode,omitempty"`
	Details   []errorDetail `json:"o:errorDetails,omitempty"`
}

type errorDetail struct {
	Detail    string `json:"detail"`
	ErrorCode string `json:"o:errorCode,omitempty"`
}

func writeError(w http.ResponseWriter, status int, detail, code string) {
	body := errorBody{
		Type:   "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html",
		Title:  http.StatusText(status),
		Status: strconv.Itoa(status),
		Detail: detail,
	}
	if detail != "" {
		body.Details = []errorDetail{{Detail: detail, ErrorCode: code}}
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/vnd.oracle.adf.error+json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding: "+err.Error(), "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// rawQuery returns the query as sent, ';' and all.
func rawQuery(r *http.Request) string {
	if _, q, ok := strings.Cut(r.RequestURI, "?"); ok {
		return q
	}
	return r.URL.RawQuery
}

// queryParams splits a raw query on '&' only (Fusion's finder and q use
// ';' inside values).
func queryParams(r *http.Request) map[string]string {
	m := map[string]string{}
	for _, part := range strings.Split(rawQuery(r), "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue
		}
		m[k] = v
	}
	return m
}

// baseURL is the scheme and host the client used, for links.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func readBody(r *http.Request, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("request body larger than %d bytes", max)
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}
