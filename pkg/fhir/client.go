package fhir

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Tokens supplies bearer tokens (smart.TokenSource).
type Tokens interface {
	Token(ctx context.Context) (string, error)
	Invalidate()
}

// Client reads a FHIR R4 server with bearer tokens. A 401 drops the
// cached token and retries the request once with a new one.
type Client struct {
	Tokens Tokens
	HTTP   *http.Client
	// Throttle, when set, caps the request rate and concurrency.
	Throttle *Throttle
}

func (c *Client) do(ctx context.Context, method, url string, hdr map[string]string) (*http.Response, error) {
	return c.doBody(ctx, method, url, hdr, nil)
}

func (c *Client) doBody(ctx context.Context, method, url string, hdr map[string]string, body []byte) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		tok, err := c.Tokens.Token(ctx)
		if err != nil {
			return nil, err
		}
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, url, rd)
		if err != nil {
			return nil, fmt.Errorf("fhir: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/fhir+json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		hc := c.HTTP
		if hc == nil {
			hc = http.DefaultClient
		}
		release := func() {}
		if c.Throttle != nil {
			if release, err = c.Throttle.Acquire(ctx); err != nil {
				return nil, err
			}
		}
		resp, err := hc.Do(req)
		release() // the body is read after: the slot bounds requests, not downloads
		if err != nil {
			return nil, &OutcomeError{Op: method + " " + opName(url), Status: 0, Class: Retryable}
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			resp.Body.Close()
			c.Tokens.Invalidate()
			continue
		}
		return resp, nil
	}
}

// opName is the path of url without host or query (ids only, no values).
func opName(url string) string {
	if i := strings.Index(url, "/api/"); i >= 0 {
		url = url[i:]
	} else if i := strings.Index(url, "://"); i >= 0 {
		if j := strings.IndexByte(url[i+3:], '/'); j >= 0 {
			url = url[i+3+j:]
		}
	}
	if i := strings.IndexByte(url, '?'); i >= 0 {
		url = url[:i]
	}
	return url
}

// failure reads a non-success response into an *OutcomeError.
func failure(op string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	oo, _ := ParseOutcome(body)
	e := &OutcomeError{Op: op, Status: resp.StatusCode, Outcome: oo, Class: Classify(resp.StatusCode, oo)}
	e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
	return e
}

// retryAfter reads Retry-After (seconds or an HTTP date).
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// Search GETs a searchset page (a query or a next link, used exactly as
// given). A failed search is an *OutcomeError; a page whose outcome
// entries report an error (a capped search) is returned with one too.
func (c *Client) Search(ctx context.Context, url string) (*Bundle, error) {
	op := "search " + opName(url)
	body, err := c.get(ctx, op, url)
	if err != nil {
		return nil, err
	}
	b, err := ParseBundle(body)
	if err != nil {
		return nil, err
	}
	for _, oo := range b.Outcomes() {
		if oo.Failed() {
			return b, &OutcomeError{Op: op, Status: http.StatusOK, Outcome: oo, Class: Classify(http.StatusOK, oo)}
		}
	}
	return b, nil
}

// Manifest is a bulk export's completion manifest (Bulk Data STU2; the
// 4.0 ballot's outcome and deleted are read too).
type Manifest struct {
	TransactionTime     string         `json:"transactionTime"`
	Request             string         `json:"request"`
	RequiresAccessToken bool           `json:"requiresAccessToken"`
	Output              []ManifestFile `json:"output"`
	Error               []ManifestFile `json:"error"`
	Outcome             []ManifestFile `json:"outcome"` // the v2 ballot's name for error
	Deleted             []ManifestFile `json:"deleted"`
}

// ManifestFile is one file of a manifest.
type ManifestFile struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count int    `json:"count,omitempty"`
}

// Kickoff starts a bulk export at url (Prefer: respond-async) and returns
// the status URL (Content-Location).
func (c *Client) Kickoff(ctx context.Context, url string) (string, error) {
	resp, err := c.do(ctx, http.MethodGet, url, map[string]string{"Prefer": "respond-async"})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return "", failure("export kick-off "+opName(url), resp)
	}
	loc := resp.Header.Get("Content-Location")
	if loc == "" {
		return "", &OutcomeError{Op: "export kick-off", Status: resp.StatusCode, Class: Permanent}
	}
	return loc, nil
}

// Poll asks a job's status once: the manifest when complete, else
// (nil, wait, nil) with the server's Retry-After (0 when none) for a 202
// or a 429.
func (c *Client) Poll(ctx context.Context, statusURL string) (*Manifest, time.Duration, error) {
	resp, err := c.do(ctx, http.MethodGet, statusURL, nil)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		var m Manifest
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			return nil, 0, &OutcomeError{Op: "export status", Status: 200, Class: Retryable}
		}
		return &m, 0, nil
	case http.StatusAccepted, http.StatusTooManyRequests:
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, retryAfter(resp.Header.Get("Retry-After")), nil
	}
	return nil, 0, failure("export status", resp)
}

// Download opens an export file, gzip-compressed on the wire when the
// server agrees; the reader yields the NDJSON lines.
func (c *Client) Download(ctx context.Context, url string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, url, map[string]string{"Accept": "application/fhir+ndjson", "Accept-Encoding": "gzip"})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, failure("export file", resp)
	}
	if !strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		return resp.Body, nil
	}
	gz, err := gzip.NewReader(bufio.NewReaderSize(resp.Body, 64<<10))
	if err != nil {
		resp.Body.Close()
		return nil, &OutcomeError{Op: "export file", Status: 200, Class: Retryable}
	}
	return readCloser{gz, resp.Body}, nil
}

type readCloser struct {
	io.Reader
	c io.Closer
}

func (r readCloser) Close() error { return r.c.Close() }

// DeleteJob ends a job on the server (its files go).
func (c *Client) DeleteJob(ctx context.Context, statusURL string) error {
	resp, err := c.do(ctx, http.MethodDelete, statusURL, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotFound {
		return failure("export delete", resp)
	}
	return nil
}
