package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/pkg/streams"
	"github.com/sinewhq/sinew/services/epicsim"
)

// phiPatterns are the synthetic patients' identifiers a scan looks for:
// every name epicsim can generate (and the fixed one of dispense), and the
// MRNs and birth dates of the messages actually sent.
type phiPatterns struct {
	names []string
	ids   map[string]bool // MRNs and birth dates: matched as whole tokens
}

func newPHIPatterns(mrns, dobs map[string]bool) phiPatterns {
	p := phiPatterns{ids: map[string]bool{}}
	for _, n := range epicsim.PatientNames() {
		fam, giv, _ := strings.Cut(n, "^")
		p.names = append(p.names, n, giv+" "+fam, fam+" "+giv, fam+", "+giv)
	}
	for m := range mrns {
		p.ids[m] = m != ""
	}
	for d := range dobs {
		p.ids[d] = d != ""
	}
	return p
}

func alnum(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z'
}

// find returns the patterns found in text: names by substring, MRNs and
// birth dates as whole alphanumeric tokens (one map lookup per token, so
// a scan of a long run stays linear in what it reads).
func (p phiPatterns) find(text []byte) []string {
	var out []string
	for _, n := range p.names {
		if bytes.Contains(text, []byte(n)) {
			out = append(out, n)
		}
	}
	for i := 0; i < len(text); {
		if !alnum(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && alnum(text[j]) {
			j++
		}
		if p.ids[string(text[i:j])] {
			out = append(out, string(text[i:j]))
		}
		i = j
	}
	return out
}

// scan counts the patterns in text, naming the first hits by place (the
// values are test data, not real PHI, so naming them is fine here).
func (p phiPatterns) scan(t *testing.T, where string, text []byte) int {
	found := p.find(text)
	for i, f := range found {
		if i < 5 {
			t.Errorf("PHI in %s: %q", where, f)
		}
	}
	return len(found)
}

// control fails the test unless the scan sees the patients of a message
// that was sent: a scan that finds nothing must be able to find something.
func (p phiPatterns) control(t *testing.T, sent []byte) {
	t.Helper()
	if f := p.find(sent); len(f) < 3 {
		t.Fatalf("the PHI scan finds only %q in a sent message", f)
	}
}

// scanNATS scans what Sinew keeps outside the message payloads: every
// subject in every stream, every KV key, every DLQ record (reason, subject,
// headers; `dlq list --json` never prints payloads) and every audit record.
func (p phiPatterns) scanNATS(t *testing.T, js jetstream.JetStream, s *system) (hits int, scanned map[string]int) {
	ctx := context.Background()
	scanned = map[string]int{}
	for name := range js.StreamNames(ctx).Name() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(">"))
		if err != nil {
			t.Fatal(err)
		}
		for subj := range info.State.Subjects {
			scanned["subjects"]++
			hits += p.scan(t, "subject of "+name, []byte(subj))
		}
	}
	for bucket := range js.KeyValueStoreNames(ctx).Name() {
		kv, err := js.KeyValue(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := kv.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for k := range keys.Keys() {
			scanned["kv keys"]++
			hits += p.scan(t, "KV key of "+bucket, []byte(k))
		}
	}
	out, err := s.cli(t, "dlq", "list", "--json")
	if err != nil {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	scanned["dlq records"] = strings.Count(out, "\n")
	hits += p.scan(t, "DLQ", []byte(out))
	err = streams.Scan(ctx, js, "AUDIT", "", time.Time{}, func(m jetstream.Msg) error {
		scanned["audit records"]++
		hits += p.scan(t, "audit record "+m.Subject(), m.Data())
		for k, vs := range m.Headers() {
			hits += p.scan(t, "audit header "+k, []byte(strings.Join(vs, " ")))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits, scanned
}

// scanMetrics reads a /metrics page and scans it (labels and values).
func (p phiPatterns) scanMetrics(t *testing.T, url string) int {
	resp, err := http.Get(url)
	if err != nil {
		t.Logf("metrics %s: %v", url, err)
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return p.scan(t, "metrics "+url, b)
}

// phiScan scans the chaos system: every process's log (all restarts),
// every service's metrics, subjects, KV keys, DLQ and audit.
func (c *chaos) phiScan(l *load) int {
	t := c.t
	p := newPHIPatterns(l.mrns, l.dobs)
	p.control(t, l.msgs[1]) // a dispense: name, MRN, birth date
	hits := 0
	logs, _ := filepath.Glob(filepath.Join(c.dir, "*.log"))
	lines := 0
	for _, f := range logs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines += bytes.Count(b, []byte("\n"))
		hits += p.scan(t, "log "+filepath.Base(f), b)
	}
	for name, s := range c.svcs {
		hits += p.scanMetrics(t, strings.TrimSuffix(s.ready, "/readyz")+"/metrics")
		_ = name
	}
	n, scanned := p.scanNATS(t, c.js(), c.sys)
	hits += n
	t.Logf("PHI scan: %d log lines in %d files, %d metrics pages, %v: %d hits", lines, len(logs), len(c.svcs), scanned, hits+0)
	return hits
}

// TestPHIScanAfterSinewUpTraffic: a synthetic day (with unmapped NDCs,
// so the DLQ fills) through `sinew up`, then its log, metrics, subjects,
// KV keys, DLQ and audit are scanned for the patients' names, MRNs and
// birth dates: zero hits.
func TestPHIScanAfterSinewUpTraffic(t *testing.T) {
	awayFromMidnight(t, 6*time.Minute)
	fusion := startFusion(t, "-step", "50ms")
	dir := t.TempDir()
	a := newAddrs(t)
	s, _ := upWith(t, dir, a, []string{"--fusion-url", fusion.url}, append([]string{"SINEW_RECONCILER_INVENTORY_EVERY=1s"}, glEnv...))
	g := epicsim.NewGenerator(99, "STMARYS")
	g.UnmappedRate = 0.2
	mrns, dobs := map[string]bool{}, map[string]bool{}
	var last []byte
	ctx := context.Background()
	c, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: a.mllp, Match: hl7.AckMatches, AckTimeout: 5 * time.Second, Retries: 10, RetryDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		msg, _ := g.Next(time.Now())
		m, err := hl7.Parse(msg)
		if err != nil {
			t.Fatal(err)
		}
		mrns[m.Get("PID-3-1")], dobs[m.Get("PID-7")] = true, true
		last = msg
		if _, err := c.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	delete(mrns, "")
	js := s.js(t)
	waitFor(t, "dead letters", 60*time.Second, func() (bool, string) {
		n := streamMsgs(t, js, "DLQ")
		return n > 0, fmt.Sprint(n, " DLQ records")
	})
	waitFor(t, "every flow reconciled", 120*time.Second, func() (bool, string) { return reconPasses(t, s) })
	p := newPHIPatterns(mrns, dobs)
	p.control(t, last)
	hits := p.scanMetrics(t, "http://"+a.http+"/metrics")
	n, scanned := p.scanNATS(t, js, s)
	hits += n
	s.stop(t)
	hits += p.scan(t, "sinew up log", s.log.Bytes())
	t.Logf("scanned %d log lines, metrics, %v (%d MRNs, %d birth dates): %d hits", bytes.Count(s.log.Bytes(), []byte("\n")), scanned, len(mrns), len(dobs), hits)
	if hits > 0 {
		t.Errorf("%d PHI hits", hits)
	}
}
