package nightlycatchup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/flowstate"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/ids"
	"github.com/sinewhq/sinew/pkg/mfn"
	"github.com/sinewhq/sinew/pkg/money"
	"github.com/sinewhq/sinew/pkg/recon"
	"github.com/sinewhq/sinew/pkg/schedule"
	"github.com/sinewhq/sinew/pkg/streams"
	ws "github.com/sinewhq/sinew/pkg/workersync"
	"github.com/sinewhq/sinew/services/transform/flows/hl7flow"
	workersyncflow "github.com/sinewhq/sinew/services/transform/flows/worker-sync"
	"github.com/sinewhq/sinew/services/transform/registry"
)

// WorkerFlow is the two-way worker flow whose masters the refresh compares.
const WorkerFlow = workersyncflow.Flow

// EnvEpicProviders is the setting naming Epic's provider master URL (a JSON
// list of providers, as epicsim's /sim/providers serves it): transform's
// epic_providers_url.
const EnvEpicProviders = "SINEW_TRANSFORM_EPIC_PROVIDERS_URL"

// Counts of the worker master refresh step.
const (
	CountChecked     = "checked"         // Fusion workers compared
	CountMatched     = "matched"         // of them, matched to one Epic provider
	CountDrifted     = "drifted"         // matched workers whose masters disagree
	CountToEpic      = "repaired_epic"   // Fusion-owned values re-sent to Epic (EPIC_CMD)
	CountToFusion    = "repaired_fusion" // Epic-owned values re-sent to Fusion (FUSION_CMD)
	CountMissingEpic = "missing_in_epic" // active workers Epic lacks: sent as hires
	CountAmbiguous   = "ambiguous"       // no single provider: triage, never guessed
	CountLinked      = "linked"          // matched, only the crosswalk link (SER) sent to Fusion
)

// ProviderSource reads Epic's provider master.
type ProviderSource interface {
	Providers(ctx context.Context) ([]mfn.Provider, error)
}

// HTTPProviders reads the provider master as a JSON list over HTTP.
type HTTPProviders struct {
	URL    string
	Client *http.Client
}

// Providers reads the list.
func (h HTTPProviders) Providers(ctx context.Context) ([]mfn.Provider, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return nil, err
	}
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("provider master: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("provider master: HTTP %d", resp.StatusCode)
	}
	var out []mfn.Provider
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("provider master: body: %w", err)
	}
	return out, nil
}

// RefreshConfig is what the worker master refresh reads and writes.
type RefreshConfig struct {
	Flow    *flows.Flow // the worker flow (its conflict rules, its commands' flow)
	Fusion  *fusion.Client
	Epic    ProviderSource
	Publish registry.Publisher
}

// Repair is one matched worker's drift: the values each side must be sent
// by the conflict rules (the owner's values, where the other side differs).
type Repair struct {
	Worker   fusion.Worker
	Provider mfn.Provider
	ToEpic   map[ws.Attr]string
	ToFusion map[ws.Attr]string
	// Link: Fusion does not record the provider's SER yet (the crosswalk
	// link the loader writes with a Fusion update).
	Link bool
}

// Comparison is the outcome of comparing the two masters.
type Comparison struct {
	Checked, Matched int
	Repairs          []Repair
	Missing          []fusion.Worker // active, no provider in Epic
	Ambiguous        []string        // person number: why (kinds of ids, never values)
}

// Compare matches every Fusion worker to Epic's provider master
// (pkg/workersync MatchWorker, the SER recorded on the worker as the
// crosswalk) and lists what each side lacks of the other's owned
// attributes. An empty value of the owner is not written over a value
// the other side holds (unset, not a change).
func Compare(rules ws.Rules, workers []fusion.Worker, providers []mfn.Provider) Comparison {
	var links []ws.Link
	ps := make([]ws.Provider, len(providers))
	for i, p := range providers {
		ps[i] = ws.Provider{SER: p.SER, EMP: p.EMP, NPI: p.NPI, PersonNumber: p.PersonNumber}
	}
	for _, w := range workers {
		if w.EpicProviderID != "" {
			links = append(links, ws.Link{PersonNumber: w.PersonNumber, AssignmentNumber: w.AssignmentNumber, SER: w.EpicProviderID})
		}
	}
	var c Comparison
	for _, w := range workers {
		c.Checked++
		m := ws.MatchWorker(ws.Worker{PersonNumber: w.PersonNumber, AssignmentNumber: w.AssignmentNumber, NPI: w.NPI, SER: w.EpicProviderID}, links, ps)
		switch m.Kind {
		case ws.Ambiguous:
			c.Ambiguous = append(c.Ambiguous, w.PersonNumber+": "+m.Why)
			continue
		case ws.New:
			if w.Status == "" || w.Status == "ACTIVE" {
				c.Missing = append(c.Missing, w)
			}
			continue
		}
		c.Matched++
		var p mfn.Provider
		for _, q := range providers {
			if q.SER == m.Provider.SER {
				p = q
				break
			}
		}
		fv, ev := ws.FusionValues(w), ws.EpicValues(p)
		r := Repair{Worker: w, Provider: p,
			ToEpic:   nonEmpty(ws.Diff(ev, ws.Owned(rules, ws.Fusion, fv))),
			ToFusion: nonEmpty(ws.Diff(fv, ws.Owned(rules, ws.Epic, ev))), Link: w.EpicProviderID != p.SER}
		if len(r.ToEpic)+len(r.ToFusion) > 0 || r.Link {
			c.Repairs = append(c.Repairs, r)
		}
	}
	return c
}

func nonEmpty(m map[ws.Attr]string) map[ws.Attr]string {
	for a, v := range m {
		if strings.TrimSpace(v) == "" {
			delete(m, a)
		}
	}
	return m
}

// RefreshWorkers compares Fusion's workers with Epic's provider master and
// repairs the drift by the flow's conflict rules, the way worker-sync
// does: Fusion-owned values go to Epic as a WorkerChange on EPIC_CMD (the
// loader's MFN^M02), Epic-owned ones to Fusion as a WorkerChange on
// FUSION_CMD (the loader's date-effective worker update). Commands are keyed
// by run and worker: a retried run sends each once.
func RefreshWorkers(ctx context.Context, cfg RefreshConfig, p *schedule.Progress) error {
	if cfg.Fusion == nil || cfg.Epic == nil || cfg.Publish == nil || cfg.Flow == nil {
		return errors.New("worker refresh: needs Fusion, Epic's provider master (" + EnvEpicProviders + ") and a publisher")
	}
	rules, err := ws.RulesOf(*cfg.Flow)
	if err != nil {
		return err
	}
	workers, err := cfg.Fusion.Workers(ctx, fusion.WorkerQuery{})
	if err != nil {
		return fmt.Errorf("worker refresh: workers: %w", err)
	}
	providers, err := cfg.Epic.Providers(ctx)
	if err != nil {
		return fmt.Errorf("worker refresh: %w", err)
	}
	c := Compare(rules, workers, providers)
	p.Add(ctx, CountChecked, int64(c.Checked))
	p.Add(ctx, CountMatched, int64(c.Matched))
	drifted := 0
	for _, r := range c.Repairs {
		if len(r.ToEpic)+len(r.ToFusion) > 0 {
			drifted++
		} else {
			p.Add(ctx, CountLinked, 1)
		}
	}
	p.Add(ctx, CountDrifted, int64(drifted))
	p.Add(ctx, CountAmbiguous, int64(len(c.Ambiguous)))
	p.Add(ctx, CountMissingEpic, int64(len(c.Missing)))
	run := p.Run().ID
	now := time.Now().UTC()
	for _, r := range c.Repairs {
		if len(r.ToEpic) > 0 {
			// Epic's MFN needs the status: send every value Fusion owns.
			if err := cfg.toEpic(ctx, run, ws.ActionUpdate, r.Worker, r.Provider.SER, ws.Owned(rules, ws.Fusion, ws.FusionValues(r.Worker)), now); err != nil {
				return err
			}
			p.Add(ctx, CountToEpic, 1)
		}
		if len(r.ToFusion) > 0 || r.Link {
			if err := cfg.toFusion(ctx, run, r, now); err != nil {
				return err
			}
			p.Add(ctx, CountToFusion, 1)
		}
	}
	for _, w := range c.Missing {
		// A hire: Epic starts from all of Fusion's values, as worker-sync's.
		if err := cfg.toEpic(ctx, run, ws.ActionHire, w, "", ws.FusionValues(w), now); err != nil {
			return err
		}
		p.Add(ctx, CountToEpic, 1)
	}
	if len(c.Ambiguous) > 0 {
		sort.Strings(c.Ambiguous)
		p.Detail(ctx, fmt.Sprintf("%d worker(s) match no single Epic provider (triage): %s", len(c.Ambiguous), strings.Join(c.Ambiguous, "; ")))
	}
	return nil
}

func (cfg RefreshConfig) toEpic(ctx context.Context, run, action string, w fusion.Worker, ser string, values map[ws.Attr]string, at time.Time) error {
	attrs := map[string]string{ws.IDAssignment: w.AssignmentNumber}
	for a, v := range values {
		attrs[string(a)] = v
	}
	if ser == "" {
		ser = w.EpicProviderID
	}
	id := cfg.Flow.ID + "/refresh/" + run + "/epic/" + w.PersonNumber
	ev := &sinewv1.WorkerChange{
		Envelope: &sinewv1.Envelope{
			EventId: ids.EventID(id), Flow: cfg.Flow.ID, SourceSystem: cfg.Flow.Source,
			SourceId: w.PersonNumber, IdempotencyKey: id, ReceivedAt: timestamppb.Now(),
			BusinessKeys: []*sinewv1.KeyValue{{Key: "person_number", Value: w.PersonNumber}, {Key: "refresh_run", Value: run}},
		},
		Origin: string(ws.Fusion), PersonNumber: w.PersonNumber, EpicProviderId: ser, Npi: w.NPI,
		Action: action, EffectiveAt: timestamppb.New(at), Attributes: attrs,
	}
	if _, err := cfg.Publish.Publish(ctx, streams.EpicCmdSubject(cfg.Flow.ID, "provider"), id, ev); err != nil {
		return fmt.Errorf("worker refresh: publish to Epic: %w", err)
	}
	return nil
}

func (cfg RefreshConfig) toFusion(ctx context.Context, run string, r Repair, at time.Time) error {
	attrs := map[string]string{}
	if r.Provider.EMP != "" {
		attrs[ws.IDEMP] = r.Provider.EMP
	}
	for a, v := range r.ToFusion {
		attrs[string(a)] = v
	}
	id := cfg.Flow.ID + "/refresh/" + run + "/fusion/" + r.Worker.PersonNumber
	ev := &sinewv1.WorkerChange{
		Envelope: &sinewv1.Envelope{
			EventId: ids.EventID(id), Flow: cfg.Flow.ID, SourceSystem: cfg.Flow.Target,
			SourceId: r.Provider.SER, IdempotencyKey: id, ReceivedAt: timestamppb.Now(),
			BusinessKeys: sinewv1.KeysOf("provider", r.Provider.SER, "refresh_run", run),
		},
		// The person number names the worker even when the NPI drifted.
		Origin: string(ws.Epic), PersonNumber: r.Worker.PersonNumber, EpicProviderId: r.Provider.SER, Npi: r.Provider.NPI,
		Action: ws.ActionUpdate, EffectiveAt: timestamppb.New(at), Attributes: attrs,
	}
	if _, err := cfg.Publish.Publish(ctx, streams.FusionCmdSubject(cfg.Flow.ID, hl7flow.OpWorker), id, ev); err != nil {
		return fmt.Errorf("worker refresh: publish to Fusion: %w", err)
	}
	return nil
}

// refreshConfig is the refresh of the worker flow when it is active and
// Epic's provider master is configured; nil otherwise (the step is skipped).
func refreshConfig(env registry.Env, states *flowstate.Store) func(ctx context.Context) *RefreshConfig {
	return func(ctx context.Context) *RefreshConfig {
		url := env.EpicProviders
		if env.Inventory == nil || url == "" {
			return nil
		}
		f, ok := env.Inventory.Get(WorkerFlow)
		if !ok {
			return nil
		}
		state := f.State
		if states != nil {
			if r, ok, err := states.Get(ctx, f.ID); err == nil && ok {
				state = r.State
			}
		}
		if state != flows.Active {
			return nil
		}
		return &RefreshConfig{Flow: f, Fusion: env.Fusion, Epic: HTTPProviders{URL: url}, Publish: env.Publisher}
	}
}

// WithRefresh runs job, then the worker master refresh as its own step
// when rc gives one; the run fails when either does.
func WithRefresh(job schedule.Job, rc func(ctx context.Context) *RefreshConfig) schedule.Job {
	return func(ctx context.Context, p *schedule.Progress) error {
		jobErr := job(ctx, p)
		cfg := rc(ctx)
		if cfg == nil {
			return jobErr
		}
		p.Step(ctx, refreshStep+cfg.Flow.ID)
		if err := RefreshWorkers(ctx, *cfg, p); err != nil {
			p.Detail(ctx, err.Error())
			return errors.Join(jobErr, err)
		}
		return jobErr
	}
}

// refreshStep prefixes the refresh's step name.
const refreshStep = "worker master refresh "

// refreshRow is a refresh step's reconciliation row: drifted workers
// against the repairs sent; ambiguous workers or a failed step are a
// variance, which the reconciler raises as a triage item.
func refreshRow(scope string, s schedule.Step) (recon.Row, bool) {
	if !strings.HasPrefix(s.Name, refreshStep) {
		return recon.Row{}, false
	}
	c := s.Counts
	v := recon.VerdictPass
	if s.State != schedule.Succeeded || c[CountAmbiguous] > 0 {
		v = recon.VerdictVariance
	}
	drift := c[CountDrifted] + c[CountMissingEpic]
	expl := fmt.Sprintf("%d workers checked, %d matched, %d drifted, %d missing in Epic, %d repairs to Epic, %d to Fusion, %d ambiguous (triage); step %s",
		c[CountChecked], c[CountMatched], c[CountDrifted], c[CountMissingEpic], c[CountToEpic], c[CountToFusion], c[CountAmbiguous], s.State)
	if v != recon.VerdictPass && s.Detail != "" {
		expl += ": " + s.Detail // the workers by person number, the kinds of ids that disagree
	}
	return recon.Row{Tier: recon.TierTotals, Scope: scope, Key: s.Name, Hop: "refresh", Unit: recon.UnitLines,
		Source: money.Amount(drift), Target: money.Amount(drift), Verdict: v,
		Explanation: expl}, true
}
