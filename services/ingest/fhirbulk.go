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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sinewhq/sinew/pkg/fhir"
	"github.com/sinewhq/sinew/pkg/streams"
	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"
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
// line into FHIR_IN (deleted files as tombstones), then DELETE the job.
// Expired files (404/410) make it fetch the manifest again, and a job the
// server no longer knows is kicked off anew.
func (f *FHIRSync) Export(ctx context.Context) error {
	st, _, err := f.loadExport(ctx)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		err := f.exportOnce(ctx, st)
		if !errors.Is(err, errExpired) || attempt >= maxExpired {
			return err
		}
		f.count(func(s *FHIRStats) { s.ExpiredManifests++ })
		f.bus.Logger().Info().Msg("bulk export: files or job expired; fetching the manifest again")
	}
}

// errExpired: the manifest's files (or the job) are gone on the server.
var errExpired = errors.New("bulk export expired")

// maxExpired bounds the re-fetches of an expired manifest in one Export.
const maxExpired = 3

func (f *FHIRSync) exportOnce(ctx context.Context, st *exportState) error {
	f.mu.Lock()
	group, types, since := f.cfg.Export.Group, f.cfg.Export.Types, f.cfg.Export.Since
	f.mu.Unlock()
	if st.StatusURL == "" {
		u := strings.TrimRight(f.cfg.BaseURL, "/") + "/Group/" + url.PathEscape(group) + "/$export"
		q := url.Values{}
		if len(types) > 0 {
			q.Set("_type", strings.Join(types, ","))
		}
		if since && st.Since != "" {
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
		var oe *fhir.OutcomeError
		if errors.As(err, &oe) && (oe.Status == 404 || oe.Status == 410) {
			// The job itself is gone (expired or deleted): a new one.
			st.StatusURL, st.Manifest = "", nil
			if err := f.saveExport(ctx, st); err != nil {
				return err
			}
			return errExpired
		}
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
		if err := f.exportFile(ctx, st, file, false); err != nil {
			return err
		}
	}
	for _, file := range st.Manifest.Deleted {
		if st.Lines[file.URL] < 0 {
			continue
		}
		if err := f.exportFile(ctx, st, file, true); err != nil {
			return err
		}
	}
	for _, file := range append(st.Manifest.Error, st.Manifest.Outcome...) {
		if err := f.exportErrors(ctx, file); err != nil {
			return err
		}
	}
	if err := f.client.DeleteJob(ctx, st.StatusURL); err != nil {
		f.bus.Logger().Warn().Err(err).Msg("bulk export: DELETE of the finished job failed")
	}
	done := &exportState{Lines: map[string]int{}, Since: st.Manifest.TransactionTime}
	*st = *done
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

// Bulk files are committed in atomic batches (one fsync each under
// sync_always) with a few batches in flight: a file's progress in KV only
// moves past lines whose batch JetStream acknowledged, in line order, so
// a restart resumes after the last acknowledged batch and a resent batch
// is deduplicated by its messages' ids.
const (
	bulkBatch  = 1000    // resources per atomic batch
	bulkBytes  = 4 << 20 // payload per batch
	bulkWindow = 4       // batches in flight
)

// bulkBatchOf is one atomic batch of a file and what it commits.
type bulkBatchOf struct {
	end  int // the file's last line the batch covers
	msgs []*nats.Msg
	ids  []string
	rs   []*fhir.Resource // for the audit (a tombstone's has only Type and ID)
	tomb []bool
	typs []string
	done chan error
	acks []*jetstream.PubAck
}

// exportFile streams one output (or deleted) file, skipping the lines
// already committed; an unreadable line is kept on fhir.in.invalid.
func (f *FHIRSync) exportFile(ctx context.Context, st *exportState, file fhir.ManifestFile, deleted bool) error {
	body, err := f.client.Download(ctx, file.URL)
	if err != nil {
		var oe *fhir.OutcomeError
		if errors.As(err, &oe) && (oe.Status == 404 || oe.Status == 410) {
			// The manifest's files expired: fetch a fresh manifest. What
			// was committed is read again and dropped as duplicate.
			st.Manifest = nil
			if err := f.saveExport(ctx, st); err != nil {
				return err
			}
			return fmt.Errorf("%w: %w", errExpired, err)
		}
		return err
	}
	defer body.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // batches still in flight after an error are abandoned
	done := st.Lines[file.URL]
	n := fhir.NewNDJSONReader(body, fhir.ParseOptions{})
	cur := &bulkBatchOf{}
	size := 0
	var queue []*bulkBatchOf
	var audited []*fhir.Resource
	saved := done
	// launch sends the batch being gathered, which covers the file up to
	// line end.
	launch := func(end int) {
		if len(cur.msgs) == 0 {
			return
		}
		cur.end = end
		b := cur
		b.done = make(chan error, 1)
		go func() {
			var err error
			b.acks, err = f.bus.PublishBatch(ctx, b.msgs)
			b.done <- err
		}()
		queue = append(queue, b)
		cur, size = &bulkBatchOf{}, 0
	}
	// complete waits for the oldest batch in flight and moves the file's
	// progress past it.
	complete := func() error {
		b := queue[0]
		queue = queue[1:]
		if err := <-b.done; err != nil {
			return err
		}
		f.mu.Lock()
		for i, id := range b.ids {
			f.seen[id] = struct{}{}
			result := "committed"
			if b.acks[i].Duplicate {
				f.stats.Duplicates++
				result = "duplicate"
			} else if b.tomb[i] {
				f.stats.Deleted++
			} else {
				f.stats.Published++
			}
			f.committed.WithLabelValues(b.typs[i], channelBulk, result).Inc()
		}
		f.mu.Unlock()
		audited = append(audited, b.rs...)
		st.Lines[file.URL] = b.end
		if b.end-saved >= saveEvery {
			if err := f.auditBulk(ctx, deleted, audited); err != nil {
				return err
			}
			audited = audited[:0]
			saved = b.end
			return f.saveExport(ctx, st)
		}
		return nil
	}
	add := func(typ, id string, r *fhir.Resource, tomb bool, ev *sinewv1.FhirResourceReceived, subject string) error {
		f.mu.Lock()
		_, dup := f.seen[id]
		f.mu.Unlock()
		if dup {
			f.count(func(s *FHIRStats) { s.Duplicates++ })
			f.committed.WithLabelValues(typ, channelBulk, "duplicate").Inc()
			return nil
		}
		m, err := f.bus.Encode(ctx, subject, id, ev)
		if err != nil {
			return err
		}
		if size+len(m.Data) > bulkBytes {
			launch(n.Line() - 1) // this line is not in it (yet)
		}
		cur.msgs, cur.ids, cur.rs, cur.tomb, cur.typs = append(cur.msgs, m), append(cur.ids, id), append(cur.rs, r), append(cur.tomb, tomb), append(cur.typs, typ)
		size += len(m.Data)
		return nil
	}
	fail := func(err error) error {
		cancel()
		for _, b := range queue {
			<-b.done
		}
		return err
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
					return fail(err)
				}
			}
			continue
		case err != nil:
			return fail(fmt.Errorf("bulk export file: %w", err))
		}
		if n.Line() <= done {
			continue
		}
		if deleted {
			for _, key := range deletedKeys(r) {
				typ, id, _ := strings.Cut(key, "/")
				// The same deletion in two overlapping _since windows is one fact.
				tid := "fhir:" + key + "/_deleted"
				gone := &fhir.Resource{Type: typ, ID: id}
				if err := add(typ, tid, gone, true, f.tombstone(typ, id, tid, raw), streams.FHIRSubject(deletedToken)); err != nil {
					return fail(err)
				}
			}
		} else {
			id := msgID(r)
			if err := add(r.Type, id, r, false, f.event(r, id, channelBulk), streams.FHIRSubject(r.Type)); err != nil {
				return fail(err)
			}
		}
		if len(cur.msgs) >= bulkBatch {
			launch(n.Line())
		}
		for len(queue) >= bulkWindow {
			if err := complete(); err != nil {
				return fail(err)
			}
		}
	}
	launch(n.Line())
	for len(queue) > 0 {
		if err := complete(); err != nil {
			return fail(err)
		}
	}
	if err := f.auditBulk(ctx, deleted, audited); err != nil {
		return err
	}
	st.Lines[file.URL] = -1
	return f.saveExport(ctx, st)
}

// auditBulk records a window of a file's committed resources (or
// tombstones: a deleted file may list several types), one record per type.
func (f *FHIRSync) auditBulk(ctx context.Context, deleted bool, rs []*fhir.Resource) error {
	op := "bulk export"
	if deleted {
		op = "bulk export deleted"
	}
	var order []string
	byType := map[string][]*fhir.Resource{}
	for _, r := range rs {
		if _, ok := byType[r.Type]; !ok {
			order = append(order, r.Type)
		}
		byType[r.Type] = append(byType[r.Type], r)
	}
	for _, typ := range order {
		if err := f.audit(ctx, op, typ, byType[typ]); err != nil {
			return err
		}
	}
	return nil
}

// deletedToken is the subject token of tombstones (fhir.in.deleted): a
// resource a bulk export's deleted file lists as deleted since _since.
const deletedToken = "deleted"

// deletedKeys are the Type/id of a deleted file line's DELETE entries
// (a transaction Bundle, Bulk Data v2).
func deletedKeys(r *fhir.Resource) []string {
	var b struct {
		Entry []struct {
			Request struct {
				Method string `json:"method"`
				URL    string `json:"url"`
			} `json:"request"`
		} `json:"entry"`
	}
	if r.Type != "Bundle" || json.Unmarshal(r.Raw, &b) != nil {
		return nil
	}
	var keys []string
	for _, e := range b.Entry {
		if !strings.EqualFold(e.Request.Method, "DELETE") {
			continue
		}
		k := focusKey(strings.SplitN(e.Request.URL, "?", 2)[0])
		if typ, id, ok := strings.Cut(k, "/"); ok && fhir.IsR4Type(typ) && id != "" {
			keys = append(keys, k)
		}
	}
	return keys
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
