package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/fhir"
)

// exportState is a bulk export's progress in KV, so a restarted ingest
// resumes the same job: the status URL, the manifest once complete, and
// per output file how many lines are committed (-1: all).
type exportState struct {
	StatusURL string         `json:"status_url"`
	Started   time.Time      `json:"started"`
	Manifest  *fhir.Manifest `json:"manifest,omitempty"`
	Lines     map[string]int `json:"lines"`
	// Since is the last completed export's transactionTime.
	Since string `json:"since,omitempty"`
}

// saveEvery lines the file progress is written to KV (the duplicate
// window covers a restart between two saves).
const saveEvery = 500

func (f *FHIRSync) exportKey() string { return "export." + f.cfg.Export.Group }

func (f *FHIRSync) loadExport(ctx context.Context) (*exportState, uint64, error) {
	e, err := f.kv.Get(ctx, f.exportKey())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return &exportState{Lines: map[string]int{}}, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var st exportState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, 0, fmt.Errorf("export state: %w", err)
	}
	if st.Lines == nil {
		st.Lines = map[string]int{}
	}
	return &st, e.Revision(), nil
}

func (f *FHIRSync) saveExport(ctx context.Context, st *exportState) error {
	b, _ := json.Marshal(st)
	_, err := f.kv.Put(ctx, f.exportKey(), b)
	return err
}

// Export runs (or resumes) the Group $export: kick-off, poll with
// backoff honouring Retry-After and 429, stream each NDJSON file line by
// line into FHIR_IN, then DELETE the job.
func (f *FHIRSync) Export(ctx context.Context) error {
	st, _, err := f.loadExport(ctx)
	if err != nil {
		return err
	}
	if st.StatusURL == "" {
		u := strings.TrimRight(f.cfg.BaseURL, "/") + "/Group/" + url.PathEscape(f.cfg.Export.Group) + "/$export"
		q := url.Values{}
		if len(f.cfg.Export.Types) > 0 {
			q.Set("_type", strings.Join(f.cfg.Export.Types, ","))
		}
		if f.cfg.Export.Since && st.Since != "" {
			q.Set("_since", st.Since)
		}
		if len(q) > 0 {
			u += "?" + q.Encode()
		}
		loc, err := f.client.Kickoff(ctx, u)
		if err != nil {
			return err
		}
		st.StatusURL, st.Started, st.Manifest, st.Lines = loc, time.Now().UTC(), nil, map[string]int{}
		if err := f.saveExport(ctx, st); err != nil {
			return err
		}
		f.count(func(s *FHIRStats) { s.Exports++ })
	}
	if st.Manifest == nil {
		m, err := f.poll(ctx, st.StatusURL)
		if err != nil {
			return err
		}
		st.Manifest = m
		if err := f.saveExport(ctx, st); err != nil {
			return err
		}
	}
	for _, file := range st.Manifest.Output {
		if st.Lines[file.URL] < 0 {
			continue
		}
		if err := f.exportFile(ctx, st, file); err != nil {
			return err
		}
	}
	for _, file := range st.Manifest.Error {
		if err := f.exportErrors(ctx, file); err != nil {
			return err
		}
	}
	if err := f.client.DeleteJob(ctx, st.StatusURL); err != nil {
		f.bus.Logger().Warn().Err(err).Msg("bulk export: DELETE of the finished job failed")
	}
	done := &exportState{Lines: map[string]int{}, Since: st.Manifest.TransactionTime}
	return f.saveExport(ctx, done)
}

// poll waits for the manifest: the server's Retry-After when given (cut
// at MaxWait), else a backoff from 1s doubling to MaxWait.
func (f *FHIRSync) poll(ctx context.Context, statusURL string) (*fhir.Manifest, error) {
	backoff := time.Second
	for {
		m, wait, err := f.client.Poll(ctx, statusURL)
		if err != nil {
			var oe *fhir.OutcomeError
			if !errors.As(err, &oe) || oe.Class != fhir.Retryable {
				return nil, err
			}
			wait = oe.RetryAfter
		}
		if m != nil {
			return m, nil
		}
		if wait <= 0 {
			wait = backoff
			backoff = min(2*backoff, f.cfg.Export.MaxWait)
		}
		wait = min(wait, f.cfg.Export.MaxWait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// exportFile streams one output file, skipping the lines already
// committed; an unreadable line is kept on fhir.in.invalid.
func (f *FHIRSync) exportFile(ctx context.Context, st *exportState, file fhir.ManifestFile) error {
	body, err := f.client.Download(ctx, file.URL)
	if err != nil {
		var oe *fhir.OutcomeError
		if errors.As(err, &oe) && (oe.Status == 404 || oe.Status == 410) {
			// The manifest's files expired: ask for a fresh manifest next round.
			st.Manifest = nil
			_ = f.saveExport(ctx, st)
		}
		return err
	}
	defer body.Close()
	done := st.Lines[file.URL]
	n := fhir.NewNDJSONReader(body, fhir.ParseOptions{})
	var batch []*fhir.Resource
	flush := func() error {
		if len(batch) > 0 {
			if err := f.audit(ctx, "bulk export", file.Type, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
		st.Lines[file.URL] = n.Line()
		return f.saveExport(ctx, st)
	}
	for {
		r, raw, err := n.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var fe *fhir.Error
		switch {
		case errors.As(err, &fe):
			if n.Line() > done {
				if err := f.reject(ctx, raw, fe, channelBulk); err != nil {
					return err
				}
			}
			continue
		case err != nil:
			return fmt.Errorf("bulk export file: %w", err)
		}
		if n.Line() <= done {
			continue
		}
		if err := f.publish(ctx, r, channelBulk); err != nil {
			return err
		}
		batch = append(batch, r)
		if len(batch) >= saveEvery {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	st.Lines[file.URL] = -1
	return f.saveExport(ctx, st)
}

// exportErrors reads an error file's OperationOutcomes: logged by class
// and code (diagnostics may quote data, so they are not logged).
func (f *FHIRSync) exportErrors(ctx context.Context, file fhir.ManifestFile) error {
	body, err := f.client.Download(ctx, file.URL)
	if err != nil {
		return err
	}
	defer body.Close()
	n := fhir.NewNDJSONReader(body, fhir.ParseOptions{})
	for {
		r, _, err := n.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			continue
		}
		if oo, err := fhir.ParseOutcome(r.Raw); err == nil {
			for _, is := range oo.Issue {
				f.bus.Logger().Warn().Str("severity", is.Severity).Str("code", is.Code).Str("class", fhir.Classify(400, oo).String()).Msg("bulk export reported an error")
			}
		}
	}
}
