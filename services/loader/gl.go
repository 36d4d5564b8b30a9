package loader

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/batchstate"
	"github.com/sinewhq/sinew/pkg/bus"
	"github.com/sinewhq/sinew/pkg/flows"
	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/reason"
	"github.com/sinewhq/sinew/pkg/streams"
)

// Outcomes of a journal batch on RESULTS (result.resolute-gl.<outcome>).
const (
	OutcomeImported = "imported" // every group imported
	OutcomeRejected = "rejected" // Fusion rejected some groups; the others imported
	OutcomeFailed   = "failed"   // the load or a group's import failed as a whole
)

// glBatch is the loader's Journal Import for one GL flow: its batches'
// state is kept under the flow's id and imported with its gl settings.
type glBatch struct {
	*Service
	flow *flows.Flow
}

// importJournals takes one journal batch through Fusion, one step at a
// time, each recorded in the batch's state before the next begins:
//
//	upload intent → importBulkData → load request id → load + first import
//	→ one Journal Import per further GROUP_ID → each group's verdict → result
//
// A redelivery or a replay resumes from the state. An upload whose answer
// was lost is looked up in Fusion before any new upload, and a group's
// import is sent again only when Fusion shows the group neither posted nor
// pending, so each journal is imported once whatever fails.
//
// A temporary Fusion failure (429, 5xx, a timeout) is retried within the
// delivery, from the recorded state, FusionAttempts times before it is left
// to the stream's redelivery: one busy minute in Fusion must not use up a
// batch's three deliveries.
func (s glBatch) importJournals(ctx context.Context, d *bus.Delivery, cmd *sinewv1.JournalBatch) error {
	return s.retrying(ctx, batchstate.Key(s.flow.ID, cmd.BatchId), func() error { return s.advance(ctx, d, cmd) })
}

// retrying runs step until it succeeds, fails permanently, or has failed
// FusionAttempts times, waiting between tries (doubling from PollInterval,
// at least any Retry-After). Every step it is given resumes from recorded
// state, so running it again is safe.
func (s *Service) retrying(ctx context.Context, what string, step func() error) error {
	delay := s.cfg.PollInterval
	for attempt := 1; ; attempt++ {
		err := step()
		if err == nil || bus.IsPermanent(err) || attempt >= s.cfg.FusionAttempts || ctx.Err() != nil {
			return err
		}
		wait := delay
		var ra *bus.RetryAfterError
		if errors.As(err, &ra) && ra.After > wait {
			wait = ra.After
		}
		s.log.Warn().Err(err).Str("key", what).Int("attempt", attempt).
			Int64("wait_ms", wait.Milliseconds()).Msg("Fusion step failed; resuming from the recorded state")
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		delay = min(delay*2, s.cfg.MaxPollInterval)
	}
}

// advance takes the batch as far as it goes.
func (s glBatch) advance(ctx context.Context, d *bus.Delivery, cmd *sinewv1.JournalBatch) error {
	if len(cmd.GetJournals()) == 0 {
		return bus.Permanent(reason.New(reason.LoaderCommandInvalid, "journal batch without journals"))
	}
	if cmd.GetObjectKey() == "" {
		return bus.Permanent(reason.New(reason.LoaderCommandInvalid, "journal batch without an FBDI object"))
	}
	st, err := s.states.Update(ctx, s.flow.ID, cmd.BatchId, func(st *batchstate.State) error { return s.admit(st, cmd) })
	if err != nil {
		return busError("batch state", err)
	}
	if !st.Done() && st.Step != batchstate.Failed {
		if st.Upload.RequestID == "" {
			if st, err = s.upload(ctx, cmd, st); err != nil {
				return err
			}
		}
		if st.Upload.Status == "" {
			if st, err = s.followLoad(ctx, cmd, st); err != nil {
				return err
			}
		}
		if st.Step != batchstate.Failed {
			if st, err = s.importGroups(ctx, cmd, st); err != nil {
				return err
			}
		}
	}
	return s.finish(ctx, d, cmd, st)
}

// admit records the batch on first sight and readies a replayed one.
func (s *Service) admit(st *batchstate.State, cmd *sinewv1.JournalBatch) error {
	now := time.Now()
	bk := sinewv1.KeyMap(cmd.GetEnvelope().GetBusinessKeys())
	if st.Step == "" {
		at := now
		if ra := cmd.GetEnvelope().GetReceivedAt(); ra != nil {
			at = ra.AsTime()
		}
		st.SHA256, st.ObjectKey = bk["sha256"], cmd.ObjectKey
		st.Advance(batchstate.Received, "sha256 "+bk["sha256"], at)
		st.Advance(batchstate.Validated, fmt.Sprintf("%s lines, debits %s, credits %s", bk["lines"], bk["debit"], bk["credit"]), at)
		st.Advance(batchstate.Built, cmd.ObjectKey+" (crosswalk "+cmd.GetEnvelope().GetCrosswalkVersion()+")", now)
		for _, j := range cmd.Journals {
			st.Groups = append(st.Groups, batchstate.Group{ID: j.GroupId, Journal: j.Name, Step: batchstate.GroupPending})
		}
		return nil
	}
	if st.ObjectKey != cmd.ObjectKey {
		if st.Upload.RequestID != "" && st.Upload.Status != string(fusion.StatusError) {
			return bus.Permanent(reason.Wrap(reason.FusionBatchAlreadySubmitted, fmt.Errorf("batch %s was already submitted to Fusion from %s; %s is not submitted again",
				cmd.BatchId, st.ObjectKey, cmd.ObjectKey)))
		}
		st.ObjectKey = cmd.ObjectKey // rebuilt (a crosswalk fix) before anything reached Fusion
		st.Advance(batchstate.Built, cmd.ObjectKey+" (rebuilt)", now)
	}
	if st.Step != batchstate.Failed {
		return nil
	}
	// A replay after a failure. A failed load put no rows in Fusion, so the
	// file goes again; failed groups are imported again (their rows are
	// still in the interface when the parameters were wrong).
	if st.Upload.Status == string(fusion.StatusError) || st.Upload.Status == string(fusion.StatusCancelled) {
		st.Upload = batchstate.Upload{Attempt: st.Upload.Attempt}
		for i := range st.Groups {
			st.Groups[i] = batchstate.Group{ID: st.Groups[i].ID, Journal: st.Groups[i].Journal, Step: batchstate.GroupPending}
		}
	}
	for i := range st.Groups {
		if g := &st.Groups[i]; g.Step == batchstate.GroupFailed {
			*g = batchstate.Group{ID: g.ID, Journal: g.Journal, Step: batchstate.GroupPending}
		}
	}
	st.Advance(batchstate.Submitted, "replayed", now)
	return nil
}

func (s glBatch) update(ctx context.Context, batchID string, fn func(*batchstate.State)) (*batchstate.State, error) {
	st, err := s.states.Update(ctx, s.flow.ID, batchID, func(st *batchstate.State) error { fn(st); return nil })
	if err != nil {
		return nil, busError("batch state", err)
	}
	return st, nil
}

// upload sends the FBDI zip with importBulkData, whose ParameterList
// imports the first pending group.
func (s glBatch) upload(ctx context.Context, cmd *sinewv1.JournalBatch, st *batchstate.State) (*batchstate.State, error) {
	if !st.Upload.IntentAt.IsZero() {
		// An earlier upload's answer was lost (a crash, a timeout, a 5xx
		// after Fusion took it): Fusion decides whether it happened.
		ids, err := s.fusion.FindImportRequests(ctx, st.Upload.FileName)
		if err != nil {
			return nil, busError("look up earlier upload", err)
		}
		if len(ids) > 0 {
			id := ids[len(ids)-1]
			s.log.Warn().Str("batch_key", batchstate.Key(s.flow.ID, cmd.BatchId)).Str("request", id).
				Msg("earlier upload found in Fusion: following it, not uploading again")
			return s.update(ctx, cmd.BatchId, func(st *batchstate.State) {
				st.Upload.RequestID = id
				st.Advance(batchstate.Submitted, "load request "+id+" (found in Fusion after a lost answer)", time.Now())
			})
		}
	}
	first := firstGroup(st, batchstate.GroupPending)
	if first == nil {
		return nil, bus.Permanent(reason.Wrap(reason.LoaderCommandInvalid, fmt.Errorf("batch %s has no group left to import", cmd.BatchId)))
	}
	store, err := s.bus.JetStream().ObjectStore(ctx, streams.ObjFBDI)
	if err != nil {
		return nil, err
	}
	zip, err := store.GetBytes(ctx, cmd.ObjectKey)
	if err != nil {
		return nil, fmt.Errorf("FBDI %s: %w", cmd.ObjectKey, err)
	}
	attempt := st.Upload.Attempt + 1
	fileName := fmt.Sprintf("%s-%s-%d.zip", streams.Token(cmd.BatchId), shortSHA(st.SHA256), attempt)
	groupID := first.ID
	_, err = s.update(ctx, cmd.BatchId, func(st *batchstate.State) {
		st.Upload = batchstate.Upload{Attempt: attempt, FileName: fileName, IntentAt: time.Now().UTC()}
		if g := st.Group(groupID); g != nil {
			g.IntentAt = st.Upload.IntentAt
		}
	})
	if err != nil {
		return nil, err
	}
	gl := s.flow.GL
	id, err := s.fusion.ImportBulkData(ctx, fusion.ImportRequest{
		FileName: fileName, Zip: zip, DataAccessSetID: gl.DataAccessSetID, Source: cmd.JeSource,
		LedgerID: gl.LedgerID, GroupID: strconv.FormatInt(groupID, 10), CallbackURL: s.callbackURL(),
	})
	if err != nil {
		if refused(err) { // not taken: no need to ask Fusion before the next try
			_, _ = s.update(ctx, cmd.BatchId, func(st *batchstate.State) {
				st.Upload.IntentAt = time.Time{}
				if g := st.Group(groupID); g != nil {
					g.IntentAt = time.Time{}
				}
			})
		}
		return nil, busError("importBulkData", err) // otherwise the intent stays: the next try asks Fusion first
	}
	return s.update(ctx, cmd.BatchId, func(st *batchstate.State) {
		st.Upload.RequestID = id
		if g := st.Group(groupID); g != nil && g.Step == batchstate.GroupPending {
			g.Step = batchstate.GroupSubmitted
		}
		st.Advance(batchstate.Submitted, "load request "+id+", file "+fileName, time.Now())
	})
}

// followLoad waits for the load chain (and the import it launches) to end.
func (s glBatch) followLoad(ctx context.Context, cmd *sinewv1.JournalBatch, st *batchstate.State) (*batchstate.State, error) {
	id := st.Upload.RequestID
	start := time.Now()
	jobs, err := s.waitJobs(ctx, id, func(jobs []fusion.Job) bool {
		load, imp := loadAndImport(jobs)
		if load == nil || !load.Status.Terminal() {
			return false
		}
		if load.Status != fusion.StatusSucceeded && load.Status != fusion.StatusWarning {
			return true
		}
		// The import job shows up once the load has ended; give it the settle time.
		return (imp != nil && treeTerminal(*imp)) || (imp == nil && time.Since(start) > s.cfg.SettleTime)
	})
	if err != nil {
		return nil, err
	}
	load, imp := loadAndImport(jobs)
	s.essJob(s.flow.ID, "load", load.Status, time.Since(start))
	if load.Status != fusion.StatusSucceeded && load.Status != fusion.StatusWarning {
		detail := fmt.Sprintf("load request %s ended %s: no rows reached GL_INTERFACE", id, load.Status)
		if text := s.jobLog(ctx, cmd.BatchId, *load); text != "" {
			detail += ": " + text
		}
		return s.update(ctx, cmd.BatchId, func(st *batchstate.State) {
			st.Upload.Status = string(load.Status)
			for i := range st.Groups {
				st.Groups[i].Step, st.Groups[i].Detail = batchstate.GroupFailed, detail
			}
			st.Advance(batchstate.Failed, detail, time.Now())
		})
	}
	first := firstGroup(st, batchstate.GroupSubmitted)
	return s.update(ctx, cmd.BatchId, func(st *batchstate.State) {
		st.Upload.Status = string(load.Status)
		if first == nil {
			return
		}
		g := st.Group(first.ID)
		if imp == nil {
			g.Step, g.IntentAt = batchstate.GroupPending, time.Time{} // never launched: import it on its own
			return
		}
		g.RequestID = imp.RequestID
	})
}

// importGroups imports every group not imported yet, each with its own
// Journal Import request, and records Fusion's verdict per group.
func (s glBatch) importGroups(ctx context.Context, cmd *sinewv1.JournalBatch, st *batchstate.State) (*batchstate.State, error) {
	var err error
	for _, g := range append([]batchstate.Group(nil), st.Groups...) {
		if g.Step != batchstate.GroupPending {
			continue
		}
		if !g.IntentAt.IsZero() {
			// A submission whose answer was lost: an import of a group
			// finds its rows once, so a second request is harmless once the
			// first has had time to run; until then wait.
			if wait := s.cfg.SettleTime - time.Since(g.IntentAt); wait > 0 {
				if err := sleep(ctx, wait); err != nil {
					return nil, err
				}
			}
		}
		id := g.ID
		if _, err = s.update(ctx, cmd.BatchId, func(st *batchstate.State) { st.Group(id).IntentAt = time.Now().UTC() }); err != nil {
			return nil, err
		}
		req, err := s.fusion.SubmitJournalImport(ctx, fusion.JournalImportParams{DataAccessSetID: s.flow.GL.DataAccessSetID,
			Source: cmd.JeSource, LedgerID: s.flow.GL.LedgerID, GroupID: strconv.FormatInt(id, 10)})
		if err != nil {
			if refused(err) {
				_, _ = s.update(ctx, cmd.BatchId, func(st *batchstate.State) { st.Group(id).IntentAt = time.Time{} })
			}
			return nil, busError("submit Journal Import", err)
		}
		if st, err = s.update(ctx, cmd.BatchId, func(st *batchstate.State) {
			g := st.Group(id)
			g.Step, g.RequestID = batchstate.GroupSubmitted, req
		}); err != nil {
			return nil, err
		}
	}
	for _, g := range append([]batchstate.Group(nil), st.Groups...) {
		if g.Step != batchstate.GroupSubmitted || g.RequestID == "" {
			continue
		}
		verdict, err := s.groupVerdict(ctx, cmd, g)
		if err != nil {
			return nil, err
		}
		if st, err = s.update(ctx, cmd.BatchId, func(st *batchstate.State) { *st.Group(g.ID) = verdict }); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// groupVerdict follows one group's Journal Import to its end and reads the
// execution report: imported, rejected (with Fusion's code and text per
// line) or failed (the job failed, or it found none of the group's rows).
func (s glBatch) groupVerdict(ctx context.Context, cmd *sinewv1.JournalBatch, g batchstate.Group) (batchstate.Group, error) {
	start := time.Now()
	jobs, err := s.waitJobs(ctx, g.RequestID, func(jobs []fusion.Job) bool {
		return len(jobs) > 0 && allTerminal(jobs)
	})
	if err != nil {
		return g, err
	}
	imp := findImport(jobs)
	if imp == nil {
		imp = &jobs[0]
	}
	s.essJob(s.flow.ID, "import", imp.Status, time.Since(start))
	g.Status = string(imp.Status)
	reportJob := *imp
	for _, c := range imp.Children {
		reportJob = c // the report is the child's output
	}
	files, err := s.fusion.DownloadExecutionDetails(ctx, reportJob.RequestID, "all")
	if err != nil {
		return g, busError("download execution details", err)
	}
	s.keepLog(ctx, cmd.BatchId, reportJob.RequestID, files)
	rep, err := fusion.ParseImportReport(files)
	if err != nil {
		return g, bus.Permanent(reason.Wrap(reason.FusionBatchFailed, fmt.Errorf("group %d: execution report of request %s: %w", g.ID, reportJob.RequestID, err)))
	}
	g.Errors = nil
	for _, e := range rep.Errors {
		if e.GroupID == g.ID || e.GroupID == 0 {
			g.Errors = append(g.Errors, batchstate.LineError{Reference21: e.Reference21, Code: e.Code, Text: e.Text})
		}
	}
	switch {
	case len(g.Errors) > 0:
		g.Step = batchstate.GroupRejected
		g.Detail = fmt.Sprintf("Journal Import request %s rejected %d line(s) of group %d; the group is held", g.RequestID, len(g.Errors), g.ID)
	case imp.Status == fusion.StatusError || imp.Status == fusion.StatusCancelled:
		g.Step, g.Detail = batchstate.GroupFailed, fmt.Sprintf("Journal Import request %s ended %s", g.RequestID, imp.Status)
	case rep.Groups == 0:
		// The trap: SUCCEEDED with "0 group id(s)". Either an earlier
		// request imported the group already, or the parameters do not
		// match the file's rows.
		posted, err := s.groupPosted(ctx, cmd.JeSource, g.ID)
		if err != nil {
			return g, err
		}
		if posted {
			g.Step, g.Detail = batchstate.GroupImported, "already imported by an earlier request"
		} else {
			g.Step = batchstate.GroupFailed
			g.Detail = fmt.Sprintf("Journal Import request %s ended %s but imported 0 group id(s): no interface rows match source %q, ledger %s, group %d",
				g.RequestID, imp.Status, cmd.JeSource, s.flow.GL.LedgerID, g.ID)
		}
	default:
		g.Step, g.Detail = batchstate.GroupImported, "Journal Import request "+g.RequestID+" "+string(imp.Status)
	}
	return g, nil
}

// groupPosted asks Fusion whether group id is posted, for as long as
// Fusion's read lag may hide it.
func (s *Service) groupPosted(ctx context.Context, source string, id int64) (bool, error) {
	deadline := time.Now().Add(s.cfg.ReadLag)
	for {
		batches, err := s.fusion.JournalBatches(ctx, fusion.JournalBatchQuery{Source: source, GroupID: id})
		if err != nil && !temporary(err) {
			return false, busError("journalBatches", err)
		}
		if err == nil && len(batches) > 0 {
			return true, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return false, busError("journalBatches", err)
			}
			return false, nil
		}
		if err := sleep(ctx, s.cfg.PollInterval); err != nil {
			return false, err
		}
	}
}

// finish records the batch's outcome and publishes it to RESULTS. A failed
// batch is also dead-lettered, so that an operator replays it once fixed.
func (s glBatch) finish(ctx context.Context, d *bus.Delivery, cmd *sinewv1.JournalBatch, st *batchstate.State) error {
	outcome, step := OutcomeImported, batchstate.Imported
	var imported, rejected, failed int
	var why []string
	for _, g := range st.Groups {
		switch g.Step {
		case batchstate.GroupImported:
			imported++
		case batchstate.GroupRejected:
			rejected++
		case batchstate.GroupFailed:
			failed++
			why = append(why, fmt.Sprintf("group %d: %s", g.ID, g.Detail))
		default:
			return fmt.Errorf("batch %s: group %d still %s", cmd.BatchId, g.ID, g.Step) // retried: resumes there
		}
	}
	switch {
	case failed > 0 || st.Step == batchstate.Failed:
		outcome, step = OutcomeFailed, batchstate.Failed
		if st.Step == batchstate.Failed && st.Detail != "" && len(why) == 0 {
			why = append(why, st.Detail)
		}
	case rejected > 0:
		outcome, step = OutcomeRejected, batchstate.Rejected
	}
	detail := fmt.Sprintf("%d of %d groups imported, %d rejected, %d failed", imported, len(st.Groups), rejected, failed)
	if len(why) > 0 {
		detail += ": " + clip(strings.Join(why, "; "), 300)
	}
	if st.Step != batchstate.Reconciled {
		var err error
		if st, err = s.update(ctx, cmd.BatchId, func(st *batchstate.State) { st.Advance(step, detail, time.Now()) }); err != nil {
			return err
		}
	}
	r := glResult(cmd, st, outcome)
	if err := s.result(ctx, s.flow.ID, outcome, r.Envelope.EventId, r); err != nil {
		return err
	}
	d.AuditDetail = fmt.Sprintf("batch %s: %s (load request %s, file %s): %s", cmd.BatchId, outcome, st.Upload.RequestID, st.Upload.FileName, detail)
	if outcome == OutcomeFailed {
		return bus.Permanent(reason.Wrap(reason.FusionBatchFailed, fmt.Errorf("batch %s failed in Fusion: %s", cmd.BatchId, clip(strings.Join(why, "; "), 400))))
	}
	return nil
}

// glResult is the batch's LoadResult. Its event id derives from the state
// it reports, so a redelivery publishes a duplicate the stream drops.
func glResult(cmd *sinewv1.JournalBatch, st *batchstate.State, outcome string) *sinewv1.LoadResult {
	bk := sinewv1.KeyMap(cmd.GetEnvelope().GetBusinessKeys())
	bk["object_key"], bk["ledger"], bk["je_source"] = cmd.ObjectKey, cmd.Ledger, cmd.JeSource
	bk["accounting_date"], bk["file_name"], bk["load_request"] = cmd.AccountingDate, st.Upload.FileName, st.Upload.RequestID
	ids := map[string]string{"load_request": st.Upload.RequestID}
	var errs []*sinewv1.LineError
	var sig strings.Builder
	sig.WriteString(outcome + ":" + st.Upload.RequestID)
	for _, g := range st.Groups {
		gid := strconv.FormatInt(g.ID, 10)
		ids["group."+gid] = g.RequestID
		fmt.Fprintf(&sig, ":%d=%s/%s", g.ID, g.Step, g.RequestID)
		for _, e := range g.Errors {
			errs = append(errs, &sinewv1.LineError{LineKey: e.Reference21, Code: e.Code, Message: e.Text, Field: "group " + gid})
		}
		if g.Step == batchstate.GroupFailed {
			errs = append(errs, &sinewv1.LineError{Code: "GROUP_FAILED", Message: g.Detail, Field: "group " + gid})
		}
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].LineKey < errs[j].LineKey })
	env := cmd.GetEnvelope()
	return &sinewv1.LoadResult{
		Envelope: &sinewv1.Envelope{
			EventId: bus.EventID("load:" + st.SHA256 + ":" + sig.String()), Flow: env.GetFlow(), SourceSystem: "fusion.gl",
			SourceId: cmd.BatchId, IdempotencyKey: env.GetIdempotencyKey(), CausedBy: env.GetEventId(),
			ReceivedAt: env.GetReceivedAt(), CrosswalkVersion: env.GetCrosswalkVersion(), BusinessKeys: sinewv1.Keys(bk),
		},
		Outcome: outcome, TargetSystem: "fusion", TargetIds: ids, Errors: errs,
		CompletedAt: timestamppb.New(st.Updated), Attempts: int32(st.Upload.Attempt),
	}
}

// waitJobs polls a request's job tree until done says so, sleeping between
// polls (doubling) unless a callback names the request. Temporary Fusion
// errors are polled through: an outage must not fail a running import.
func (s *Service) waitJobs(ctx context.Context, id string, done func([]fusion.Job) bool) ([]fusion.Job, error) {
	woke, unsubscribe := s.wake.subscribe(id)
	defer unsubscribe()
	delay := s.cfg.PollInterval
	for {
		jobs, err := s.fusion.ExecutionDetails(ctx, id)
		wait := delay
		switch {
		case err == nil && done(jobs):
			return jobs, nil
		case err != nil && !temporary(err):
			return nil, busError("ESS execution details of request "+id, err)
		case err != nil:
			s.log.Warn().Err(err).Str("request", id).Msg("polling Fusion: will poll again")
			var fe *fusion.Error
			if errors.As(err, &fe) && fe.RetryAfter > wait {
				wait = fe.RetryAfter
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for request %s: %w", id, ctx.Err())
		case <-woke:
		case <-time.After(wait):
		}
		delay = min(delay*2, s.cfg.MaxPollInterval)
	}
}

// jobLog returns the tail of a failed job's log, for the batch's record.
func (s *Service) jobLog(ctx context.Context, batchID string, j fusion.Job) string {
	files, err := s.fusion.DownloadExecutionDetails(ctx, j.RequestID, "log")
	if err != nil {
		return ""
	}
	s.keepLog(ctx, batchID, j.RequestID, files)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.Write(files[n])
	}
	text := strings.TrimSpace(b.String())
	if len(text) > 300 {
		text = "…" + text[len(text)-300:]
	}
	return text
}

// keepLog stores ESS output in the job-logs object store for review.
func (s *Service) keepLog(ctx context.Context, batchID, requestID string, files map[string][]byte) {
	store, err := s.bus.JetStream().ObjectStore(ctx, streams.ObjJobLogs)
	if err != nil {
		return
	}
	for name, b := range files {
		key := streams.Token(batchID) + "/" + requestID + "/" + name
		if _, err := store.PutBytes(ctx, key, b); err != nil {
			s.log.Warn().Err(err).Str("request", requestID).Msg("keeping ESS output")
		}
	}
}

// loadAndImport finds the load job and the import job in a chain's tree.
func loadAndImport(jobs []fusion.Job) (load, imp *fusion.Job) {
	for i := range jobs {
		j := &jobs[i]
		switch {
		case isImport(*j):
			imp = j
		case load == nil:
			load = j
		}
	}
	return load, imp
}

func findImport(jobs []fusion.Job) *fusion.Job {
	for i := range jobs {
		if isImport(jobs[i]) {
			return &jobs[i]
		}
	}
	return nil
}

func isImport(j fusion.Job) bool {
	return strings.Contains(j.Path, "generalLedger") || strings.HasPrefix(j.Name, "Import Journals")
}

func treeTerminal(j fusion.Job) bool {
	if !j.Status.Terminal() {
		return false
	}
	return allTerminal(j.Children)
}

func allTerminal(jobs []fusion.Job) bool {
	for _, j := range jobs {
		if !treeTerminal(j) {
			return false
		}
	}
	return true
}

// refused reports whether Fusion answered a submission with a refusal that
// proves it was not taken (429, 4xx), as against a 5xx or a lost answer.
func refused(err error) bool {
	var fe *fusion.Error
	return errors.As(err, &fe) && fe.StatusCode >= 400 && fe.StatusCode < 500 && fe.StatusCode != 408
}

func firstGroup(st *batchstate.State, step string) *batchstate.Group {
	for i := range st.Groups {
		if st.Groups[i].Step == step {
			return &st.Groups[i]
		}
	}
	return nil
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
