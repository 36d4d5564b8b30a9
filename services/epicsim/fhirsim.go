package epicsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sinewhq/sinew/pkg/fhir"
	"github.com/sinewhq/sinew/pkg/smart"
)

// FHIRConfig is epicsim's FHIR R4 side: a SMART Backend Services token
// endpoint and a read/search server with Epic's behaviour (no
// _lastUpdated, paging sessions that expire, a result cap, Epic's
// OperationOutcome codes, Group $export).
type FHIRConfig struct {
	Enabled bool `yaml:"enabled"`
	// Addr is its own listener; empty serves it only on the host's mux
	// (Routes: sinew up's HTTP listener).
	Addr string `yaml:"addr"`
	// URL is the public base (scheme://host:port) assertions name as aud;
	// empty with Addr set: http://Addr.
	URL    string     `yaml:"url"`
	Seed   uint64     `yaml:"seed"`
	Volume FHIRVolume `yaml:"volume"`
	// Clients registered as backend apps (their JWKS by URL or inline).
	Clients   []FHIRClient  `yaml:"clients"`
	TokenLife time.Duration `yaml:"token_life"`
	// PageSize is a searchset page's size when _count is not given.
	PageSize int `yaml:"page_size"`
	// ResultCap refuses a search matching more (Epic caps at 100).
	ResultCap int `yaml:"result_cap"`
	// SessionTTL expires a paging session this long after its last use.
	SessionTTL time.Duration `yaml:"session_ttl"`
	Export     ExportConfig  `yaml:"export"`
	Faults     FHIRFaults    `yaml:"faults"`
	// Subscriptions is the topic-based subscription manager (fhirsubs.go).
	Subscriptions SubscriptionsConfig `yaml:"subscriptions"`
	// Live charts the traffic (epicsim.traffic): an Encounter per OpTime
	// case, an Observation per test of a final Beaker result, so the FHIR
	// reconciliations find the ids the HL7 messages carry. The seeded
	// Observations are left out: their tests were never sent to Sinew.
	Live bool `yaml:"live"`
	// ChartFile, with Live, is a JSON ChartRequest charted at start,
	// before the server answers: what Epic had charted before Sinew's
	// intake began (the cutover drill's day: docs/operations.md).
	ChartFile string `yaml:"chart_file"`
}

// FHIRClient is one registered backend app.
type FHIRClient struct {
	ID      string `yaml:"id"`
	JWKSURL string `yaml:"jwks_url"`
	JWKS    string `yaml:"jwks"` // inline JWKS JSON, in place of jwks_url
	Scope   string `yaml:"scope"`
	// Unmapped: registered but no background user mapped yet (Epic
	// refuses its tokens with unauthorized_client).
	Unmapped bool `yaml:"unmapped"`
}

// ExportConfig shapes a Group $export job.
type ExportConfig struct {
	// Polls answered 202 before the job is complete.
	Polls int `yaml:"polls"`
	// RetryAfter is the Retry-After the 202 and 429 answers carry.
	RetryAfter time.Duration `yaml:"retry_after"`
	// Every429: every Nth status poll is answered 429 (0: never).
	Every429 int `yaml:"every_429"`
	// LinesPerFile splits a type's output into files of this many lines.
	LinesPerFile int `yaml:"lines_per_file"`
}

// FHIRFaults are injectable faults.
type FHIRFaults struct {
	// ExpireSessionAtPage expires the paging session that serves the
	// Nth next-page request (counted over all sessions), once.
	ExpireSessionAtPage int `yaml:"expire_session_at_page"`
	// BadExportLine, when > 0, adds a truncated resource line after that
	// many lines of an export's first file (Sinew must keep it, not lose
	// the file).
	BadExportLine int `yaml:"bad_export_line"`
	// FormularyDrift gives one drug's Medication (the heparin) another
	// strength than Willow's formulary MFN states: a seeded variance for
	// the formulary-check flow.
	FormularyDrift bool `yaml:"formulary_drift"`
}

// DefaultFHIRConfig is a modest data set on Epic's limits.
func DefaultFHIRConfig() FHIRConfig {
	return FHIRConfig{
		Seed:       1,
		Volume:     FHIRVolume{Practitioners: 20, Patients: 30, Encounters: 60, Medications: 8, Observations: 120, Days: 7},
		TokenLife:  time.Hour,
		PageSize:   20,
		ResultCap:  100,
		SessionTTL: 10 * time.Minute,
		Export:     ExportConfig{Polls: 2, RetryAfter: time.Second, LinesPerFile: 1000},
	}
}

// Routes mounts the FHIR server and its token endpoint on mux (sinew up's
// HTTP listener) when the FHIR side is enabled.
func (s *Service) Routes(mux *http.ServeMux) {
	if s.fhir != nil {
		mux.Handle(FHIRBase+"/", s.fhir)
		mux.Handle("/oauth2/token", s.fhir)
	}
}

// FHIR is the FHIR simulator (nil when off).
func (s *Service) FHIR() *FHIRSim { return s.fhir }

func (s *Service) serveFHIR(ctx context.Context) (func(), error) {
	ln, err := net.Listen("tcp", s.cfg.FHIR.Addr)
	if err != nil {
		return nil, fmt.Errorf("epicsim: fhir listen: %w", err)
	}
	if s.cfg.FHIR.URL == "" {
		s.fhir.SetURL("http://" + ln.Addr().String())
	}
	srv := &http.Server{Handler: s.fhir, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() { _ = srv.Serve(ln) }()
	s.bus.Logger().Info().Str("fhir", s.fhir.BaseURL()).Msg("FHIR R4 server started")
	return func() { _ = srv.Close() }, nil
}

// FHIRBase is the server's FHIR base path, as on an Epic instance.
const FHIRBase = "/api/FHIR/R4"

// FHIRSim is the FHIR R4 simulator. It serves HTTP (ServeHTTP); its
// public URL must be set with SetURL before assertions can name it.
type FHIRSim struct {
	cfg   FHIRConfig
	now   func() time.Time
	url   string
	data  []simResource
	byKey map[string]*simResource
	live  *live // the charted traffic (Live), nil when off

	mu       sync.Mutex
	clients  map[string]FHIRClient
	tokens   map[string]token
	guard    *smart.ReplayGuard
	sessions map[string]*session
	pages    int
	expired  bool
	jobs     map[string]*exportJob
	seq      int            // export jobs kicked off
	reads    map[string]int // resources served, by type
	subs     subsState      // subscriptions and updated versions (fhirsubs.go)
	del      deletions      // deleted resources, export expiry (fhirdeleted.go)
}

type token struct {
	client string
	scope  string
	exp    time.Time
}

type session struct {
	query   url.Values // the original query, without paging parameters
	typ     string
	matches []*simResource
	used    time.Time
}

// NewFHIRSim seeds the data set (today anchors the clinical dates; zero
// means now) and returns the simulator.
func NewFHIRSim(cfg FHIRConfig, today time.Time, now func() time.Time) *FHIRSim {
	d := DefaultFHIRConfig()
	if cfg.PageSize <= 0 {
		cfg.PageSize = d.PageSize
	}
	if cfg.ResultCap <= 0 {
		cfg.ResultCap = d.ResultCap
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = d.SessionTTL
	}
	if cfg.TokenLife <= 0 {
		cfg.TokenLife = d.TokenLife
	}
	if cfg.Export.LinesPerFile <= 0 {
		cfg.Export.LinesPerFile = d.Export.LinesPerFile
	}
	if now == nil {
		now = time.Now
	}
	if today.IsZero() {
		today = now().UTC().Truncate(time.Second)
	}
	s := &FHIRSim{cfg: cfg, now: now, clients: map[string]FHIRClient{}, tokens: map[string]token{},
		guard: smart.NewReplayGuard(), sessions: map[string]*session{}, jobs: map[string]*exportJob{}, reads: map[string]int{}}
	if cfg.Live {
		cfg.Volume.Observations = 0
	}
	s.data = seedFHIR(cfg.Seed, cfg.Volume, cfg.Faults.FormularyDrift, today)
	if cfg.Live {
		s.live = newLive(cfg.Seed, s.data)
	}
	s.byKey = make(map[string]*simResource, len(s.data))
	for i := range s.data {
		s.byKey[s.data[i].Type+"/"+s.data[i].ID] = &s.data[i]
	}
	for _, c := range cfg.Clients {
		s.clients[c.ID] = c
	}
	return s
}

// SetURL records the server's public base URL (scheme://host:port).
func (s *FHIRSim) SetURL(u string) { s.mu.Lock(); s.url = strings.TrimRight(u, "/"); s.mu.Unlock() }

// TokenURL is the token endpoint's URL (the assertion's aud).
func (s *FHIRSim) TokenURL() string { s.mu.Lock(); defer s.mu.Unlock(); return s.url + "/oauth2/token" }

// BaseURL is the FHIR base URL.
func (s *FHIRSim) BaseURL() string { s.mu.Lock(); defer s.mu.Unlock(); return s.url + FHIRBase }

// Register adds or replaces a backend app registration.
func (s *FHIRSim) Register(c FHIRClient) { s.mu.Lock(); s.clients[c.ID] = c; s.mu.Unlock() }

// Resources lists the seeded resources of type typ as resourceType/id keys.
func (s *FHIRSim) Resources(typ string) []string {
	var ks []string
	for _, r := range s.data {
		if r.Type == typ {
			ks = append(ks, r.Type+"/"+r.ID)
		}
	}
	return ks
}

// Served is how many resources of typ were served (searches, reads, export files).
func (s *FHIRSim) Served(typ string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.reads[typ] }

// Kickoffs is how many export jobs were started; Jobs how many are not
// yet deleted.
func (s *FHIRSim) Kickoffs() int { s.mu.Lock(); defer s.mu.Unlock(); return s.seq }

// Jobs is how many export jobs exist (not yet deleted by the client).
func (s *FHIRSim) Jobs() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.jobs) }

// ServeHTTP routes the token endpoint, metadata, reads, searches and export.
func (s *FHIRSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/oauth2/token":
		s.serveToken(w, r)
		return
	case p == FHIRBase+"/metadata":
		s.serveMetadata(w)
		return
	case !strings.HasPrefix(p, FHIRBase+"/"):
		outcome(w, http.StatusNotFound, fhir.NewOutcome(fhir.SeverityError, "not-found", "no such endpoint"))
		return
	}
	tok, ok := s.authorize(w, r)
	if !ok {
		return
	}
	parts := strings.Split(strings.TrimPrefix(p, FHIRBase+"/"), "/")
	switch {
	case parts[0] == "Subscription":
		s.serveSubscription(w, r, tok, parts)
	case len(parts) == 3 && parts[0] == "Group" && parts[2] == "$export":
		s.kickoff(w, r, tok, parts[1])
	case len(parts) == 3 && parts[0] == "export" && parts[1] == "status":
		s.serveStatus(w, r, tok, parts[2])
	case len(parts) == 4 && parts[0] == "export" && parts[1] == "file":
		s.serveFile(w, r, tok, parts[2], parts[3])
	case len(parts) == 1 && r.Method == http.MethodGet:
		if !allowed(tok.scope, parts[0]) {
			outcome(w, http.StatusForbidden, fhir.NewOutcome(fhir.SeverityFatal, "forbidden", "scope does not cover this resource type").WithEpicCode(fhir.EpicNotAuthorized, "User not authorized for request."))
			return
		}
		s.search(w, r, parts[0])
	case len(parts) == 2 && r.Method == http.MethodGet:
		if !allowed(tok.scope, parts[0]) {
			outcome(w, http.StatusForbidden, fhir.NewOutcome(fhir.SeverityFatal, "forbidden", "scope does not cover this resource type").WithEpicCode(fhir.EpicNotAuthorized, "User not authorized for request."))
			return
		}
		s.read(w, parts[0], parts[1])
	default:
		outcome(w, http.StatusMethodNotAllowed, fhir.NewOutcome(fhir.SeverityError, "not-supported", "only read, search and Group $export are supported"))
	}
}

// serveToken is the SMART Backend Services token endpoint: the assertion
// is checked against the client's JWKS (signature, iss/sub, aud, exp
// within 5 minutes, jti not replayed).
func (s *FHIRSim) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "POST a form")
		return
	}
	switch {
	case r.PostForm.Get("grant_type") != "client_credentials":
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "client_credentials only")
		return
	case r.PostForm.Get("client_assertion_type") != smart.AssertionType:
		oauthError(w, http.StatusBadRequest, "invalid_request", "client_assertion_type must be jwt-bearer")
		return
	}
	assertion := r.PostForm.Get("client_assertion")
	c, err := unverifiedIssuer(assertion)
	s.mu.Lock()
	reg, known := s.clients[c]
	s.mu.Unlock()
	if err != nil || !known {
		oauthError(w, http.StatusBadRequest, "invalid_client", "unknown client")
		return
	}
	set, err := s.jwks(r, reg)
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_client", "the client's JWKS could not be read")
		return
	}
	if _, err := s.guard.Check(assertion, reg.ID, s.TokenURL(), set, s.now()); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_client", err.Error())
		return
	}
	if reg.Unmapped {
		oauthError(w, http.StatusBadRequest, "unauthorized_client", "no background user is mapped to this client")
		return
	}
	scope := reg.Scope
	if scope == "" {
		scope = "system/*.read"
	}
	if want := r.PostForm.Get("scope"); want != "" {
		scope = want // granted as asked (a real server intersects)
	}
	tok := smart.NewJTI()
	s.mu.Lock()
	s.tokens[tok] = token{client: reg.ID, scope: scope, exp: s.now().Add(s.cfg.TokenLife)}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(s.cfg.TokenLife.Seconds()), "scope": scope})
}

func unverifiedIssuer(tok string) (string, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", smart.ErrMalformed
	}
	b, err := b64url(parts[1])
	if err != nil {
		return "", err
	}
	var c smart.Claims
	if err := json.Unmarshal(b, &c); err != nil {
		return "", err
	}
	return c.Iss, nil
}

func (s *FHIRSim) jwks(r *http.Request, c FHIRClient) (smart.JWKS, error) {
	var set smart.JWKS
	body := []byte(c.JWKS)
	if c.JWKSURL != "" {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, c.JWKSURL, nil)
		if err != nil {
			return set, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return set, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return set, fmt.Errorf("jwks: HTTP %d", resp.StatusCode)
		}
		if body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20)); err != nil {
			return set, err
		}
	}
	err := json.Unmarshal(body, &set)
	return set, err
}

func (s *FHIRSim) authorize(w http.ResponseWriter, r *http.Request) (token, bool) {
	h := r.Header.Get("Authorization")
	s.mu.Lock()
	t, ok := s.tokens[strings.TrimPrefix(h, "Bearer ")]
	s.mu.Unlock()
	switch {
	case !strings.HasPrefix(h, "Bearer ") || !ok:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		outcome(w, http.StatusUnauthorized, fhir.NewOutcome(fhir.SeverityFatal, "login", "no valid access token"))
		return t, false
	case !s.now().Before(t.exp):
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		outcome(w, http.StatusUnauthorized, fhir.NewOutcome(fhir.SeverityFatal, "expired", "access token expired"))
		return t, false
	}
	return t, true
}

func allowed(scope, typ string) bool {
	for _, sc := range strings.Fields(scope) {
		switch sc {
		case "system/*.read", "system/*.rs", "system/" + typ + ".read", "system/" + typ + ".rs":
			return true
		}
	}
	return false
}

func (s *FHIRSim) serveMetadata(w http.ResponseWriter) {
	var res []string
	for typ, ps := range searchParams {
		var sp []string
		for _, p := range ps {
			sp = append(sp, fmt.Sprintf(`{"name":"%s","type":"%s"}`, p, map[bool]string{true: "date", false: "token"}[p == "date"]))
		}
		res = append(res, fmt.Sprintf(`{"type":"%s","interaction":[{"code":"read"},{"code":"search-type"}],"searchParam":[%s]}`, typ, strings.Join(sp, ",")))
	}
	if sub := s.subscriptionCapability(); sub != "" {
		res = append(res, sub)
	}
	sort.Strings(res)
	w.Header().Set("Content-Type", "application/fhir+json")
	fmt.Fprintf(w, `{"resourceType":"CapabilityStatement","status":"active","kind":"instance","fhirVersion":"4.0.1","format":["json"],"rest":[{"mode":"server","resource":[%s],"operation":[{"name":"export","definition":"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"}]}]}`, strings.Join(res, ","))
}

// searchParams are the search parameters each type supports (Epic has
// no _lastUpdated).
var searchParams = map[string][]string{
	"Encounter":        {"_id", "patient", "date"},
	"Observation":      {"_id", "patient", "date", "category"},
	"Practitioner":     {"_id", "identifier", "name"},
	"PractitionerRole": {"_id", "practitioner"},
	"Medication":       {"_id", "code"},
	"Patient":          {"_id", "identifier"},
}

func (s *FHIRSim) read(w http.ResponseWriter, typ, id string) {
	res, ok := s.byKey[typ+"/"+id]
	if !ok {
		res, ok = s.liveRead(typ + "/" + id)
	}
	if !ok {
		outcome(w, http.StatusNotFound, fhir.NewOutcome(fhir.SeverityFatal, "not-found", "the read resource request contained an invalid ID").WithEpicCode(fhir.EpicInvalidID, "The read resource request contained an invalid ID."))
		return
	}
	s.mu.Lock()
	s.reads[typ]++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/fhir+json")
	_, _ = w.Write(s.jsonOf(res))
}

// search answers a searchset page: the first request runs the query and
// opens a paging session; next links carry the session and page number.
func (s *FHIRSim) search(w http.ResponseWriter, r *http.Request, typ string) {
	q := r.URL.Query()
	supported, ok := searchParams[typ]
	if !ok {
		outcome(w, http.StatusBadRequest, fhir.NewOutcome(fhir.SeverityFatal, "not-supported", "search is not supported for this type"))
		return
	}
	if sid := q.Get("sessionID"); sid != "" {
		s.nextPage(w, r, typ, sid, q)
		return
	}
	if _, ok := q["_lastUpdated"]; ok {
		outcome(w, http.StatusBadRequest, fhir.NewOutcome(fhir.SeverityFatal, "processing", "_lastUpdated is not a supported search parameter").WithEpicCode(fhir.EpicInvalidParameter, "The resource request contained an invalid parameter."))
		return
	}
	count := s.cfg.PageSize
	if c, err := strconv.Atoi(q.Get("_count")); err == nil && c > 0 {
		count = c
	}
	filter := url.Values{}
	var warnings []*fhir.OperationOutcome
	for k, v := range q {
		switch {
		case k == "_count":
		case contains(supported, k):
			filter[k] = v
		default:
			warnings = append(warnings, fhir.NewOutcome(fhir.SeverityWarning, "processing", "search parameter "+k+" is not supported and was ignored").WithEpicCode(fhir.EpicInvalidParameter, "The resource request contained an invalid parameter."))
		}
	}
	if len(filter) == 0 {
		outcome(w, http.StatusBadRequest, fhir.NewOutcome(fhir.SeverityFatal, "required", "no parameters are provided in the search request").WithEpicCode(fhir.EpicNoParameters, "No parameters are provided in the search request."))
		return
	}
	matches, err := s.match(typ, filter)
	if err != nil {
		outcome(w, http.StatusBadRequest, fhir.NewOutcome(fhir.SeverityFatal, "value", err.Error()).WithEpicCode(fhir.EpicInvalidValue, "Required search parameter has an invalid value."))
		return
	}
	if len(matches) > s.cfg.ResultCap {
		oo := fhir.NewOutcome(fhir.SeverityError, "too-costly", fmt.Sprintf("the search matched more than %d results; narrow it", s.cfg.ResultCap)).WithEpicCode(fhir.EpicResultCap, "Search result limit exceeded.")
		s.writeBundle(w, r, nil, nil, append(warnings, oo), nil)
		return
	}
	sid := smart.NewJTI()
	base := url.Values{}
	for k, v := range q {
		base[k] = v
	}
	base.Set("_count", strconv.Itoa(count))
	s.mu.Lock()
	s.sessions[sid] = &session{query: base, typ: typ, matches: matches, used: s.now()}
	s.mu.Unlock()
	s.page(w, r, typ, sid, base, matches, 1, count, warnings)
}

func (s *FHIRSim) nextPage(w http.ResponseWriter, r *http.Request, typ, sid string, q url.Values) {
	page, _ := strconv.Atoi(q.Get("pageNo"))
	s.mu.Lock()
	ses, ok := s.sessions[sid]
	if ok && s.now().Sub(ses.used) > s.cfg.SessionTTL {
		ok = false
	}
	s.pages++
	if ok && s.cfg.Faults.ExpireSessionAtPage > 0 && s.pages == s.cfg.Faults.ExpireSessionAtPage && !s.expired {
		s.expired, ok = true, false
	}
	if !ok {
		delete(s.sessions, sid)
	} else {
		ses.used = s.now()
	}
	s.mu.Unlock()
	if !ok || ses.typ != typ || page < 2 {
		outcome(w, http.StatusBadRequest, fhir.NewOutcome(fhir.SeverityFatal, "processing", "session ID for cached search results has expired").WithEpicCode(fhir.EpicSessionExpired, "Session ID for cached search results has expired."))
		return
	}
	count, _ := strconv.Atoi(ses.query.Get("_count"))
	s.page(w, r, typ, sid, ses.query, ses.matches, page, count, nil)
}

func (s *FHIRSim) page(w http.ResponseWriter, r *http.Request, typ, sid string, q url.Values, matches []*simResource, page, count int, warnings []*fhir.OperationOutcome) {
	from := (page - 1) * count
	to := min(from+count, len(matches))
	from = min(from, to)
	links := [][2]string{{"self", s.BaseURL() + "/" + typ + "?" + r.URL.RawQuery}}
	if to < len(matches) {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("sessionID", sid)
		nq.Set("pageNo", strconv.Itoa(page+1))
		links = append(links, [2]string{"next", s.BaseURL() + "/" + typ + "?" + nq.Encode()})
	}
	total := len(matches)
	s.writeBundle(w, r, matches[from:to], links, warnings, &total)
}

func (s *FHIRSim) writeBundle(w http.ResponseWriter, _ *http.Request, rs []*simResource, links [][2]string, outcomes []*fhir.OperationOutcome, total *int) {
	var b strings.Builder
	b.WriteString(`{"resourceType":"Bundle","type":"searchset"`)
	if total != nil {
		fmt.Fprintf(&b, `,"total":%d`, *total)
	}
	b.WriteString(`,"link":[`)
	for i, l := range links {
		if i > 0 {
			b.WriteByte(',')
		}
		lj, _ := json.Marshal(map[string]string{"relation": l[0], "url": l[1]})
		b.Write(lj)
	}
	b.WriteString(`],"entry":[`)
	n := 0
	for _, res := range rs {
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		fmt.Fprintf(&b, `{"fullUrl":"%s/%s/%s","resource":%s,"search":{"mode":"match"}}`, s.BaseURL(), res.Type, res.ID, s.jsonOf(res))
	}
	for _, o := range outcomes {
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		fmt.Fprintf(&b, `{"resource":%s,"search":{"mode":"outcome"}}`, o.JSON())
	}
	b.WriteString(`]}`)
	s.mu.Lock()
	for _, res := range rs {
		s.reads[res.Type]++
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/fhir+json")
	_, _ = io.WriteString(w, b.String())
}

// match runs a query over the seeded data, sorted by clinical date and id.
func (s *FHIRSim) match(typ string, q url.Values) ([]*simResource, error) {
	var lo, hi time.Time
	for _, d := range q["date"] {
		prefix, v := "eq", d
		if len(d) > 2 && d[0] >= 'a' && d[0] <= 'z' {
			prefix, v = d[:2], d[2:]
		}
		t, err := parseFHIRDate(v)
		if err != nil {
			return nil, fmt.Errorf("date parameter is not a FHIR date or dateTime")
		}
		switch prefix {
		case "ge", "gt":
			lo = t
		case "lt", "le":
			hi = t
		case "eq":
			lo, hi = t, t.Add(24*time.Hour)
		default:
			return nil, fmt.Errorf("date prefix not supported")
		}
	}
	keep := func(res *simResource) bool {
		if v := q.Get("_id"); v != "" && v != res.ID {
			return false
		}
		if v := q.Get("patient"); v != "" && strings.TrimPrefix(v, "Patient/") != res.Patient {
			return false
		}
		if v := q.Get("practitioner"); v != "" && !strings.Contains(string(res.JSON), `"Practitioner/`+strings.TrimPrefix(v, "Practitioner/")+`"`) {
			return false
		}
		if _, ok := q["date"]; ok && (res.Date.Before(lo) || (!hi.IsZero() && !res.Date.Before(hi))) {
			return false
		}
		return true
	}
	var out []*simResource
	for i := range s.data {
		if res := &s.data[i]; res.Type == typ && keep(res) {
			out = append(out, res)
		}
	}
	return s.liveMatches(out, typ, keep), nil
}

func parseFHIRDate(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a date")
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func outcome(w http.ResponseWriter, status int, o *fhir.OperationOutcome) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	_, _ = w.Write(o.JSON())
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
