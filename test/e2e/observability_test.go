package e2e

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"

	"github.com/sinewhq/sinew/pkg/hl7"
	"github.com/sinewhq/sinew/pkg/mllp"
	"github.com/sinewhq/sinew/services/epicsim"
)

// otlpSpan is one span the collector received, with its service.
type otlpSpan struct {
	service, name           string
	kind                    tracepb.Span_SpanKind
	traceID, spanID, parent string
	attrs                   map[string]string
	status                  tracepb.Status_StatusCode
	statusText              string
}

// collector is an in-process OTLP/HTTP trace receiver: POST /v1/traces
// with an ExportTraceServiceRequest in protobuf, as otlptracehttp sends.
type collector struct {
	url   string
	mu    sync.Mutex
	spans []otlpSpan
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	var req coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(raw, &req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := otlpSpan{service: service, name: s.GetName(), kind: s.GetKind(),
					traceID: hex.EncodeToString(s.GetTraceId()), spanID: hex.EncodeToString(s.GetSpanId()),
					parent: hex.EncodeToString(s.GetParentSpanId()), attrs: map[string]string{},
					status: s.GetStatus().GetCode(), statusText: s.GetStatus().GetMessage()}
				for _, a := range s.GetAttributes() {
					v := a.GetValue()
					switch {
					case v.GetStringValue() != "":
						sp.attrs[a.GetKey()] = v.GetStringValue()
					default:
						sp.attrs[a.GetKey()] = fmt.Sprint(v.GetIntValue())
					}
				}
				c.spans = append(c.spans, sp)
			}
		}
	}
	c.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (c *collector) all() []otlpSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.spans)
}

// chain is the span and its ancestors up to the root, root first; nil if
// an ancestor has not arrived.
func chain(byID map[string]otlpSpan, s otlpSpan) []otlpSpan {
	out := []otlpSpan{s}
	for s.parent != "" {
		p, ok := byID[s.parent]
		if !ok {
			return nil
		}
		out = append(out, p)
		s = p
	}
	slices.Reverse(out)
	return out
}

// describe is a chain in one line: service/name per hop.
func describe(ch []otlpSpan) string {
	var parts []string
	for _, s := range ch {
		parts = append(parts, s.service+"/"+s.name)
	}
	return strings.Join(parts, " → ")
}

// fusionChain finds a complete trace ending at the loader's Fusion request
// whose name starts with request: its chain and a description of what was
// seen.
func fusionChain(c *collector, rootName, request string) ([]otlpSpan, string) {
	spans := c.all()
	byID := map[string]otlpSpan{}
	for _, s := range spans {
		byID[s.spanID] = s
	}
	var seen []string
	for _, s := range spans {
		if s.service != "loader" || s.kind != tracepb.Span_SPAN_KIND_CLIENT || !strings.HasPrefix(s.name, request) {
			continue
		}
		ch := chain(byID, s)
		if ch == nil {
			seen = append(seen, "incomplete: "+s.name)
			continue
		}
		seen = append(seen, describe(ch))
		if ch[0].service == "ingest" && ch[0].name == rootName && s.attrs["http.response.status_code"] >= "200" && s.attrs["http.response.status_code"] < "300" {
			return ch, ""
		}
	}
	return nil, fmt.Sprintf("%d spans; loader Fusion requests %q: %s", len(spans), request, strings.Join(seen, "; "))
}

// sentIDs sends n messages of a synthetic day over MLLP (each answered AA)
// and returns the identifiers they carried: control ids, patient ids and
// names. None of them may show up in a series or a span.
func sentIDs(t *testing.T, addr string, g *epicsim.Generator, n int) []string {
	t.Helper()
	ctx := context.Background()
	c, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: addr, Match: hl7.AckMatches, AckTimeout: 5 * time.Second, Retries: 10, RetryDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ids []string
	for range n {
		msg, typ := g.Next(time.Now())
		m, err := hl7.Parse(msg)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"MSH-10", "PID-3-1", "PID-5-1", "PID-5-2", "PID-7", "PID-19"} {
			if v := m.Get(f); len(v) >= 4 {
				ids = append(ids, v)
			}
		}
		ack, err := c.Send(ctx, msg)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if a, err := hl7.Parse(ack); err != nil || a.Get("MSA-1") != "AA" {
			t.Fatalf("%s answered %q", typ, ack)
		}
	}
	return ids
}

// monitoredSeries are the sinew_* series deploy/monitoring's dashboard
// panels and alert rules query.
func monitoredSeries(t *testing.T) []string {
	t.Helper()
	root := repoRoot(t)
	var exprs []string
	var rules struct {
		Groups []struct{ Rules []struct{ Expr string } }
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy", "monitoring", "alerts.yml"))
	if err == nil {
		err = yaml.Unmarshal(b, &rules)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	var dash struct {
		Panels []struct{ Targets []struct{ Expr string } }
	}
	b, err = os.ReadFile(filepath.Join(root, "deploy", "monitoring", "grafana-dashboard.json"))
	if err == nil {
		err = json.Unmarshal(b, &dash)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range exprs {
		for _, name := range regexp.MustCompile(`sinew_[a-z0-9_]+`).FindAllString(e, -1) {
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	return out
}

// labelValues are the label values of every sample in a /metrics text.
var labelValue = regexp.MustCompile(`[a-z_]+="((?:[^"\\]|\\.)*)"`)

// TestOneTraceFromMLLPToFusionAndSeriesPerFlow: `sinew up` with
// SINEW_OTLP_ENDPOINT pointing at an in-process OTLP collector, fed a
// synthetic day of HL7 over MLLP (some with unmapped NDCs, dead-lettered)
// and a Resolute GL file, against fusionsim answering the first POSTs 503.
// The collector receives, for a dispense, one trace running
// ingest (MLLP receipt) → transform → loader → Fusion's answer, parent to
// child, and for the GL file ingest → transform → loader → importBulkData;
// /metrics serves every series deploy/monitoring queries, per service and
// flow; and no series label or span attribute carries an identifier of the
// messages sent.
func TestOneTraceFromMLLPToFusionAndSeriesPerFlow(t *testing.T) {
	col := startCollector(t)
	fusion := startFusion(t, "-step", "50ms", "-read-lag", "300ms")
	fusion.faults(t, `{"http":[{"status":503,"method":"POST","count":2}]}`)
	dir := t.TempDir()
	a := newAddrs(t)
	env := append([]string{"SINEW_OTLP_ENDPOINT=" + col.url, "SINEW_RECONCILER_INVENTORY_EVERY=1s"}, glEnv...)
	s, _ := upWith(t, dir, a, []string{"--fusion-url", fusion.url}, env)

	g := epicsim.NewGenerator(11, "STMARYS")
	g.UnmappedRate = 0.5
	ids := sentIDs(t, a.mllp, g, 40)
	drop(t, dir, "hb_20260115.txt", genDay(t, "HB-OBS-1", 5))
	waitRecon(t, s, "HB-OBS-1", "pass", false)

	// One trace per message, across the services, to Fusion's answer.
	var hl7Chain, glChain []otlpSpan
	waitFor(t, "an HL7 trace from MLLP receipt to Fusion's answer", 60*time.Second, func() (bool, string) {
		var detail string
		hl7Chain, detail = fusionChain(col, "hl7 receive", "POST batch")
		return hl7Chain != nil, detail
	})
	waitFor(t, "a GL trace from the drop folder to importBulkData", 60*time.Second, func() (bool, string) {
		var detail string
		glChain, detail = fusionChain(col, "batch receive", "POST importBulkData")
		return glChain != nil, detail
	})
	t.Logf("HL7 trace: %s", describe(hl7Chain))
	t.Logf("GL trace: %s", describe(glChain))
	for _, ch := range [][]otlpSpan{hl7Chain, glChain} {
		var services []string
		for i, sp := range ch {
			if sp.traceID != ch[0].traceID {
				t.Errorf("%s/%s in trace %s, not %s", sp.service, sp.name, sp.traceID, ch[0].traceID)
			}
			if i > 0 && sp.parent != ch[i-1].spanID {
				t.Errorf("%s/%s: parent %s, want %s", sp.service, sp.name, sp.parent, ch[i-1].spanID)
			}
			if len(services) == 0 || services[len(services)-1] != sp.service {
				services = append(services, sp.service)
			}
		}
		if want := []string{"ingest", "transform", "loader"}; !slices.Equal(services, want) {
			t.Errorf("services along the trace %v, want %v", services, want)
		}
		last := ch[len(ch)-1]
		if last.attrs["http.request.method"] != "POST" || last.attrs["server.address"] == "" || last.status == tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("Fusion request span %+v", last)
		}
		if ch[0].kind != tracepb.Span_SPAN_KIND_SERVER && ch[0].kind != tracepb.Span_SPAN_KIND_CONSUMER {
			t.Errorf("root %s kind %v", ch[0].name, ch[0].kind)
		}
	}
	if flow := hl7Chain[0].attrs["sinew.flow"]; !slices.Contains(inventoryFlows, flow) || hl7Chain[0].attrs["hl7.ack_code"] != "AA" {
		t.Errorf("receipt span attributes %v", hl7Chain[0].attrs)
	}
	// fusionsim's 503s are error spans with the status only.
	var refused int
	for _, sp := range col.all() {
		if sp.attrs["http.response.status_code"] == "503" {
			refused++
			if sp.status != tracepb.Status_STATUS_CODE_ERROR || sp.statusText != "HTTP 503" {
				t.Errorf("503 span %s: status %v %q", sp.name, sp.status, sp.statusText)
			}
		}
	}
	if refused == 0 {
		t.Error("no span recorded fusionsim's 503s")
	}

	// The series, per service and flow; the console's gauges update every 10 s.
	var metrics string
	want := []*regexp.Regexp{
		regexp.MustCompile(`sinew_flow_messages_total\{flow="(willow-inventory|optime-materials|beaker-inventory)",service="transform",stage="received"\} [1-9]`),
		regexp.MustCompile(`sinew_flow_messages_total\{flow="(willow-inventory|optime-materials|beaker-inventory)",service="loader",stage="processed"\} [1-9]`),
		regexp.MustCompile(`sinew_flow_messages_total\{flow="(willow-inventory|optime-materials|beaker-inventory)",service="transform",stage="dead_lettered"\} [1-9]`),
		regexp.MustCompile(`sinew_flow_messages_total\{flow="resolute-gl",service="loader",stage="processed"\} 1`),
		regexp.MustCompile(`sinew_ingest_hl7_messages_total\{ack="AA",flow="(willow-inventory|optime-materials|beaker-inventory)",service="ingest",type="[A-Z]{3}"\} [1-9]`),
		regexp.MustCompile(`sinew_mllp_connections_total\{result="accepted",service="ingest"\} [1-9]`),
		regexp.MustCompile(`sinew_fusion_request_duration_seconds_count\{op="batch",service="loader"\} [1-9]`),
		regexp.MustCompile(`sinew_fusion_responses_total\{code="503",op="[A-Za-z]+",service="loader"\} [1-9]`),
		regexp.MustCompile(`sinew_fusion_responses_total\{code="20[01]",op="importBulkData",service="loader"\} 1`),
		regexp.MustCompile(`sinew_fusion_ess_job_seconds_count\{flow="resolute-gl",job="load",service="loader",status="SUCCEEDED"\} 1`),
		regexp.MustCompile(`sinew_fusion_ess_job_seconds_count\{flow="resolute-gl",job="import",service="loader",status="SUCCEEDED"\} [1-9]`),
		regexp.MustCompile(`sinew_recon_verdicts_total\{flow="resolute-gl",service="reconciler",verdict="pass"\} [1-9]`),
		regexp.MustCompile(`sinew_recon_variance\{flow="resolute-gl",service="reconciler",tier="3",unit="lines"\} 0`),
		regexp.MustCompile(`sinew_consumer_oldest_unprocessed_seconds\{consumer="transform-hl7-willow-inventory",flow="willow-inventory",service="console",stream="HL7_IN"\} `),
		regexp.MustCompile(`sinew_consumer_pending_messages\{consumer="loader-fusion-resolute-gl",flow="resolute-gl",service="console",stream="FUSION_CMD"\} `),
		// every dead letter that needs a person is a triage item
		regexp.MustCompile(`sinew_triage_items\{flow="[a-z-]+",kind="[a-z-]+",service="console",state="open"\} [1-9]`),
	}
	waitFor(t, "the series on /metrics", 30*time.Second, func() (bool, string) {
		resp, err := http.Get("http://" + a.http + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(b)
		var missing []string
		for _, re := range want {
			if !re.MatchString(metrics) {
				missing = append(missing, re.String())
			}
		}
		var flowLines []string
		for _, l := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(l, "sinew_flow_messages_total") || strings.HasPrefix(l, "sinew_bus_dead_letters_total") {
				flowLines = append(flowLines, l)
			}
		}
		return len(missing) == 0, "missing:\n" + strings.Join(missing, "\n") + "\nper-flow series:\n" + strings.Join(flowLines, "\n")
	})
	for _, name := range monitoredSeries(t) {
		if !strings.Contains(metrics, "\n"+name+"{") && !strings.Contains(metrics, "\n"+name+" ") {
			t.Errorf("deploy/monitoring queries %s, which /metrics does not serve", name)
		}
	}

	// No identifier of a message in any label or span.
	var values []string
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "sinew_") {
			for _, m := range labelValue.FindAllStringSubmatch(line, -1) {
				values = append(values, m[1])
			}
		}
	}
	for _, sp := range col.all() {
		values = append(values, sp.name)
		for _, v := range sp.attrs {
			values = append(values, v)
		}
	}
	for _, id := range ids {
		for _, v := range values {
			if strings.Contains(v, id) {
				t.Errorf("%q from a message appears in %q", id, v)
			}
		}
	}
	t.Logf("%d spans, %d label values checked against %d identifiers", len(col.all()), len(values), len(ids))
	s.stop(t)
}
