// Package fusion is Sinew's client for Oracle Fusion Cloud REST: the
// erpintegrations resource (FBDI uploads, ESS jobs, execution details,
// callbacks) and the general-ledger read-back resources (journalBatches,
// ledgerBalances), the SCM and procurement resources (scm.go:
// inventoryStagedTransactions, itemsV2, suppliers, inventoryOnhandBalances),
// batch requests (batch.go) and OAuth JWT-assertion tokens (oauth.go). The
// request, error and paging code is shared by all of them.
//
// The client never retries a write: the loader decides, with its own
// idempotency checks, whether a request may be sent again. A read is tried
// again only when the caller asks (Config.ReadAttempts). Errors are typed: a non-2xx
// answer is an *Error; a transport failure (timeout, refused connection)
// comes back wrapped and counts as temporary (see IsTemporary).
//
// Amounts are decoded from their JSON literals into money.Amount and
// quantities into Decimal, never through float64.
package fusion

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// APIPath is the REST root of the Fusion resources this package uses.
const APIPath = "/fscmRestApi/resources/11.13.18.05"

// FrameworkVersion is the REST-Framework-Version sent on every request:
// pinned so that the shape of answers (expanded children as collections,
// paging fields) does not change under Sinew when a pod is upgraded.
const FrameworkVersion = "4"

// Config configures a Client; services embed it as their `fusion:` section.
type Config struct {
	BaseURL     string `yaml:"url"`      // e.g. http://127.0.0.1:8090
	Username    string `yaml:"user"`     // Basic auth
	Password    string `yaml:"password"` // Basic auth
	BearerToken string `yaml:"token"`    // used instead of Basic when set
	// TokenSource, when set, supplies the bearer token of every request
	// (OAuth, e.g. JWTAssertion); it wins over BearerToken and Basic.
	TokenSource TokenSource `yaml:"-"`
	// Timeout bounds each request; 60s when 0.
	Timeout    time.Duration `yaml:"timeout"`
	HTTPClient *http.Client  `yaml:"-"` // optional
	// PageSize is the limit asked for on collection resources; 100 when 0.
	PageSize int `yaml:"page_size"`
	// ReadAttempts is how many times a read (a GET, or an erpintegrations
	// download, which is a POST) is tried on a temporary answer
	// (429, 5xx, a transport failure) before its error is returned; 1
	// when 0. A read changes nothing in Fusion, so a caller with no
	// redelivery of its own (a scheduled run paging through a day) asks
	// for more than one rather than failing on one 503 among its pages.
	ReadAttempts int `yaml:"read_attempts"`
	// Metrics, when set, receives the request series (observe.go):
	// latency by operation and answers by operation and status code.
	Metrics prometheus.Registerer `yaml:"-"`
	// Tracer, when set, gives each request a client span (child of the
	// caller's) and sends its context to Fusion as W3C traceparent.
	Tracer trace.TracerProvider `yaml:"-"`
}

// Client talks to one Fusion pod. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base string
	hc   *http.Client
	obs  *observer
}

// New checks cfg and returns a client.
func New(cfg Config) (*Client, error) {
	base := strings.TrimRight(cfg.BaseURL, "/")
	if base == "" {
		return nil, errors.New("fusion: BaseURL is empty")
	}
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return nil, fmt.Errorf("fusion: BaseURL %q: want http:// or https://", cfg.BaseURL)
	}
	if cfg.TokenSource == nil && cfg.BearerToken == "" && cfg.Username == "" {
		return nil, errors.New("fusion: no credentials: set Username/Password, BearerToken or TokenSource")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 100
	}
	if cfg.ReadAttempts <= 0 {
		cfg.ReadAttempts = 1
	}
	hc := cfg.HTTPClient
	if hc == nil {
		// The default transport keeps 2 idle connections per host: with a
		// loader's dozens of concurrent posts, every other request would
		// open a new connection (and TLS session) to the pod.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 128
		hc = &http.Client{Transport: tr}
	}
	obs, err := newObserver(cfg.Metrics, cfg.Tracer, base)
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, base: base, hc: hc, obs: obs}, nil
}

// Error is a non-2xx answer from Fusion.
type Error struct {
	StatusCode    int
	Title, Detail string
	Details       []ErrorDetail // o:errorDetails
	RetryAfter    time.Duration // from Retry-After on 429/503
	raw           []byte        // the answer's body, for resource-specific parts (batch)
}

// ErrorDetail is one entry of o:errorDetails.
type ErrorDetail struct{ Detail, Code string }

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	if e.Title != "" {
		b.WriteString(" " + e.Title)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	for _, d := range e.Details {
		if d.Detail == e.Detail && d.Code == "" {
			continue
		}
		b.WriteString("; ")
		if d.Code != "" {
			b.WriteString(d.Code + ": ")
		}
		b.WriteString(d.Detail)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Temporary reports whether the same request may succeed later: 408, 429
// and 5xx.
func (e *Error) Temporary() bool {
	return e.StatusCode == http.StatusRequestTimeout || e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// IsTemporary reports whether err is worth retrying: a temporary *Error or
// a transport failure. A cancelled ctx of the caller's own is not.
func IsTemporary(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Temporary()
	}
	var pe *ProtocolError
	return !errors.As(err, &pe)
}

// asError finds the *Error in err's chain.
func asError(err error) (*Error, bool) {
	var fe *Error
	ok := errors.As(err, &fe)
	return fe, ok
}

// ProtocolError is a 2xx answer Sinew cannot understand (not JSON, missing
// fields): retrying will not help.
type ProtocolError struct {
	Op  string
	Err error
}

func (e *ProtocolError) Error() string {
	return "fusion: " + e.Op + ": unexpected answer: " + e.Err.Error()
}
func (e *ProtocolError) Unwrap() error { return e.Err }

// request is one HTTP exchange.
type request struct {
	op          string // for error messages, e.g. "importBulkData"
	method      string
	path        string // under APIPath, e.g. "/erpintegrations"
	rawQuery    string // already encoded (see queryEscape)
	body        any    // JSON-encoded when not nil
	contentType string // default application/json for bodies
	header      http.Header
	// reads marks a POST that changes nothing in Fusion (an erpintegrations
	// operation that downloads): it is tried again as a GET is.
	reads bool
}

// do sends r and decodes a 2xx JSON answer into out (when not nil) with
// UseNumber, so amounts never pass through float64. A read (a GET, or a
// POST marked reads) is tried up to ReadAttempts times on a temporary
// answer, waiting its Retry-After (or a doubling backoff from
// readBackoff) between tries.
func (c *Client) do(ctx context.Context, r request, out any) error {
	err := c.once(ctx, r, out)
	wait := readBackoff
	reads := r.method == http.MethodGet || r.reads
	for try := 1; try < c.cfg.ReadAttempts && reads && IsTemporary(err); try++ {
		d := wait
		if fe, ok := asError(err); ok && fe.RetryAfter > 0 {
			d = min(fe.RetryAfter, maxReadWait)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(d):
		}
		wait = min(2*wait, maxReadWait)
		err = c.once(ctx, r, out)
	}
	return err
}

// readBackoff is the first wait before a GET is tried again, and
// maxReadWait the longest (a Retry-After longer than it is cut to it).
const (
	readBackoff = 250 * time.Millisecond
	maxReadWait = 10 * time.Second
)

// once is one HTTP exchange of r.
func (c *Client) once(ctx context.Context, r request, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	u := c.base + apiPath(r.path)
	if r.rawQuery != "" {
		u += "?" + r.rawQuery
	}
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return fmt.Errorf("fusion: %s: encoding request: %w", r.op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return fmt.Errorf("fusion: %s: %w", r.op, err)
	}
	if r.body != nil {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("REST-Framework-Version", FrameworkVersion)
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if err := c.authorize(ctx, req); err != nil {
		return fmt.Errorf("fusion: %s: %w", r.op, err)
	}
	ctx, done := c.obs.start(ctx, r.op, req)
	req = req.WithContext(ctx)
	resp, err := c.hc.Do(req)
	if err != nil {
		done(0)
		return fmt.Errorf("fusion: %s: %w", r.op, err)
	}
	done(resp.StatusCode)
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("fusion: %s: %w", r.op, readError(resp))
	}
	// Read the answer to its end: a body closed early takes its connection
	// with it, and the next request dials a new one.
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("fusion: %s: reading answer: %w", r.op, err)
	}
	if out == nil {
		return nil
	}
	if rb, ok := out.(*[]byte); ok { // not JSON (an Atom feed)
		*rb = raw
		return nil
	}
	if rm, ok := out.(*json.RawMessage); ok {
		if !json.Valid(raw) {
			return &ProtocolError{Op: r.op, Err: errors.New("not JSON")}
		}
		*rm = raw
		return nil
	}
	if err := decodeNumbers(raw, out); err != nil {
		return &ProtocolError{Op: r.op, Err: err}
	}
	return nil
}

// apiPath is path under APIPath, unless it is under one of HCM's own
// roots (HCMPath, AtomPath).
func apiPath(path string) string {
	if strings.HasPrefix(path, HCMPath+"/") || strings.HasPrefix(path, AtomPath+"/") {
		return path
	}
	return APIPath + path
}

// maxAnswer bounds one REST answer held in memory (a page of 500 rows with
// children is a few megabytes).
const maxAnswer = 64 << 20

// decodeNumbers decodes JSON keeping numbers as json.Number where the
// target is an interface, so amounts never pass through float64.
func decodeNumbers(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// authorize sets the Authorization header: a TokenSource's bearer token,
// the static bearer token, or Basic.
func (c *Client) authorize(ctx context.Context, req *http.Request) error {
	switch {
	case c.cfg.TokenSource != nil:
		tok, err := c.cfg.TokenSource(ctx)
		if err != nil {
			return fmt.Errorf("token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	case c.cfg.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+c.cfg.BearerToken)
	default:
		req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	}
	return nil
}

// readError turns a non-2xx answer into an *Error. Fusion sends its error
// envelope (title, detail, o:errorDetails) on REST errors and sometimes
// plain text; both are kept.
func readError(resp *http.Response) *Error {
	e := &Error{StatusCode: resp.StatusCode}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		e.RetryAfter = ParseRetryAfter(ra, time.Now())
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	e.raw = raw
	var env struct {
		Title   string `json:"title"`
		Detail  string `json:"detail"`
		Details []struct {
			Detail string `json:"detail"`
			Code   string `json:"o:errorCode"`
		} `json:"o:errorDetails"`
	}
	if json.Unmarshal(raw, &env) == nil {
		e.Title, e.Detail = env.Title, env.Detail
		for _, d := range env.Details {
			e.Details = append(e.Details, ErrorDetail{Detail: d.Detail, Code: d.Code})
		}
	} else if t := strings.TrimSpace(string(raw)); t != "" {
		if len(t) > 512 {
			t = t[:512]
		}
		e.Detail = t
	}
	if e.Title == "" {
		e.Title = http.StatusText(resp.StatusCode)
	}
	return e
}

// ParseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date
// (relative to now). It returns 0 for anything else or a date in the past.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		// A huge value would overflow into a negative delay (found by
		// FuzzParseRetryAfter): hold it at the longest Duration instead.
		if n > int64(math.MaxInt64/time.Second) {
			n = int64(math.MaxInt64 / time.Second)
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d.Round(time.Second)
		}
	}
	return 0
}

// queryEscape escapes a query value the way Fusion expects: finder and q
// syntax characters (';', '=', ',', quotes) stay literal, everything else
// outside the unreserved set is percent-encoded (spaces as %20).
func queryEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~', c == ';', c == '=', c == ',', c == '\'', c == ':':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// query builds a raw query from name/value pairs, keeping their order.
func query(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		parts = append(parts, kv[i]+"="+queryEscape(kv[i+1]))
	}
	return strings.Join(parts, "&")
}

// page is the collection envelope of every Fusion REST resource.
type page[T any] struct {
	Items   []T  `json:"items"`
	Count   int  `json:"count"`
	HasMore bool `json:"hasMore"`
	Limit   int  `json:"limit"`
	Offset  int  `json:"offset"`
}

// maxPages stops a server that keeps answering hasMore from looping forever.
const maxPages = 100000

// collect follows a collection's pages from offset 0 until hasMore is false.
func collect[T any](ctx context.Context, c *Client, op, path, rawQuery string) ([]T, error) {
	var all []T
	err := eachPage(ctx, c, op, path, rawQuery, func(items []T) error {
		all = append(all, items...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return all, nil
}

// eachPage follows a collection's pages from offset 0 until hasMore is
// false and gives each page's items to fn: memory is one page, whatever
// the collection's size.
func eachPage[T any](ctx context.Context, c *Client, op, path, rawQuery string, fn func([]T) error) error {
	offset := 0
	for range maxPages {
		q := query("limit", strconv.Itoa(c.cfg.PageSize), "offset", strconv.Itoa(offset))
		if rawQuery != "" {
			q = rawQuery + "&" + q
		}
		var p page[T]
		if err := c.do(ctx, request{op: op, method: http.MethodGet, path: path, rawQuery: q}, &p); err != nil {
			return err
		}
		if err := fn(p.Items); err != nil {
			return err
		}
		if !p.HasMore {
			return nil
		}
		if len(p.Items) == 0 {
			return &ProtocolError{Op: op, Err: errors.New("hasMore with an empty page")}
		}
		offset += len(p.Items)
	}
	return &ProtocolError{Op: op, Err: errors.New("too many pages")}
}
