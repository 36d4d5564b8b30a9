package ingest

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/sinewhq/sinew/pkg/fhir"
)

// Sync modes a type can be read by.
const (
	ModeSearch       = "search"
	ModeExport       = "export"
	ModeNotification = "notification"
	ModeNone         = "none"
)

// SyncChoice is the probe's verdict for one type: the mode declared (in
// flows.yaml or the config), the mode used, and why.
type SyncChoice struct {
	Type, Declared, Chosen, Reason string
}

// Probe reads the server's CapabilityStatement and tries what it claims,
// then chooses each declared type's sync mode: notifications where a
// subscription is configured and the server offers its topic, a paged
// search where the type is searchable on its date parameter and a probe
// search is answered, Group $export where declared (with _since only
// where a probe kick-off with _since is accepted). A declared mode the
// server cannot do is replaced by one it can (a warning in the log), or
// the type is not read (an error in the log). Round probes once, before
// its first sync; NoProbe keeps the declared modes.
func (f *FHIRSync) Probe(ctx context.Context) ([]SyncChoice, error) {
	caps, err := f.client.Capabilities(ctx, f.cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	log := f.bus.Logger()
	var choices []SyncChoice
	var search []SearchSync
	var export []string
	rereads := map[string]SearchSync{}
	subTypes := map[string]bool{}
	disabled := map[string]bool{}
	for _, s := range f.cfg.Notify.Subscriptions {
		if caps.Topics[s.Topic] {
			subTypes[s.Type] = true
			continue
		}
		disabled[s.Name] = true
		choices = append(choices, SyncChoice{Type: s.Type, Declared: ModeNotification, Chosen: ModeNone, Reason: "the server does not offer the subscription's topic"})
	}
	searchable := func(s SearchSync) (bool, string) {
		dp := s.DateParam
		if dp == "" {
			dp = "date"
		}
		if !caps.Searchable(s.Type, dp) {
			return false, "the CapabilityStatement has no search on " + dp
		}
		if err := f.probeSearch(ctx, s, dp); err != nil {
			return false, "a probe search on " + dp + " was refused"
		}
		return true, "searchable on " + dp
	}
	for _, s := range f.cfg.Search {
		c := SyncChoice{Type: s.Type, Declared: ModeSearch}
		switch ok, why := searchable(s); {
		case subTypes[s.Type]:
			c.Chosen, c.Reason = ModeNotification, "the server offers the subscription's topic"
			rereads[s.Type] = s // a gap without $events is re-read with this search
		case ok:
			c.Chosen, c.Reason = ModeSearch, why
			search = append(search, s)
		case caps.Export && f.cfg.Export.Group != "":
			c.Chosen, c.Reason = ModeExport, why+"; Group $export is offered"
			export = append(export, s.Type)
		default:
			c.Chosen, c.Reason = ModeNone, why+"; no $export either"
		}
		choices = append(choices, c)
	}
	for _, t := range f.cfg.Export.Types {
		c := SyncChoice{Type: t, Declared: ModeExport}
		switch {
		case subTypes[t]:
			c.Chosen, c.Reason = ModeNotification, "the server offers the subscription's topic"
		case caps.Export:
			c.Chosen, c.Reason = ModeExport, "Group $export is offered"
			export = append(export, t)
		default:
			s := SearchSync{Type: t, Lookback: 8 * 24 * time.Hour, Overlap: time.Hour}
			ok, why := searchable(s)
			if ok {
				c.Chosen, c.Reason = ModeSearch, "no $export; "+why
				search = append(search, s)
			} else {
				c.Chosen, c.Reason = ModeNone, "no $export; "+why
			}
		}
		choices = append(choices, c)
	}
	since := f.cfg.Export.Since
	if since && len(export) > 0 {
		if err := f.probeSince(ctx, export[0]); err != nil {
			since = false
			log.Warn().Err(err).Msg("FHIR server refused $export with _since: each export reads everything (duplicates are dropped)")
		}
	}
	for _, c := range choices {
		ev := log.Info()
		switch {
		case c.Chosen == ModeNone:
			ev = log.Error()
		case c.Chosen != c.Declared:
			ev = log.Warn()
		}
		ev.Str("type", c.Type).Str("declared", c.Declared).Str("chosen", c.Chosen).Str("why", c.Reason).Msg("FHIR sync mode")
	}
	f.mu.Lock()
	f.cfg.Search, f.cfg.Export.Types, f.cfg.Export.Since = search, export, since
	if len(export) > 0 && f.cfg.Export.Group == "" {
		f.cfg.Export.Group = "sinew"
	}
	f.disabledSubs = disabled
	f.rereads = rereads
	f.choices = choices
	f.mu.Unlock()
	return choices, nil
}

// Choices is the last probe's verdicts (nil before one ran).
func (f *FHIRSync) Choices() []SyncChoice {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]SyncChoice(nil), f.choices...)
}

// probeSearch asks one small page of the last minute.
func (f *FHIRSync) probeSearch(ctx context.Context, s SearchSync, dp string) error {
	q := url.Values{}
	if s.Params != "" {
		if extra, err := url.ParseQuery(s.Params); err == nil {
			q = extra
		}
	}
	now := time.Now().UTC().Truncate(time.Second)
	q.Add(dp, "ge"+now.Add(-time.Minute).Format(time.RFC3339))
	q.Add(dp, "lt"+now.Format(time.RFC3339))
	q.Set("_count", "1")
	_, err := f.client.Search(ctx, strings.TrimRight(f.cfg.BaseURL, "/")+"/"+s.Type+"?"+q.Encode())
	var oe *fhir.OutcomeError
	if errors.As(err, &oe) && oe.Outcome.Capped() {
		return nil // searchable, just busy
	}
	return err
}

// probeSince kicks off an export of typ with _since now and deletes the
// job at once: an accepted kick-off means _since is honoured.
func (f *FHIRSync) probeSince(ctx context.Context, typ string) error {
	q := url.Values{}
	q.Set("_type", typ)
	q.Set("_since", time.Now().UTC().Format(time.RFC3339))
	u := strings.TrimRight(f.cfg.BaseURL, "/") + "/Group/" + url.PathEscape(f.cfg.Export.Group) + "/$export?" + q.Encode()
	loc, err := f.client.Kickoff(ctx, u)
	if err != nil {
		return err
	}
	return f.client.DeleteJob(ctx, loc)
}
