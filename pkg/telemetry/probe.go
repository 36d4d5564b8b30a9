package telemetry

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// ProbeURL is the /readyz URL of a service listening on addr: a wildcard
// host (0.0.0.0, ::, "") becomes the loopback, since a probe runs beside
// the service (a Docker healthcheck in the service's own container).
func ProbeURL(addr, path string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("probe: http addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

// Probe GETs url and fails unless it answers 200: the health verb of each
// binary, usable as a healthcheck where there is no shell or curl (a
// FROM scratch image). The error carries the status and the first line of
// the body (readyz names the failing check, never a payload). The body
// (up to 4 MiB) is returned, for a probe of /metrics.
func Probe(ctx context.Context, url string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		return nil, fmt.Errorf("probe: %s: %s: %s", url, resp.Status, line)
	}
	if err != nil {
		return nil, fmt.Errorf("probe: %s: %w", url, err)
	}
	return body, nil
}
