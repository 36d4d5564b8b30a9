package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	sinewv1 "github.com/sinewhq/sinew/proto/sinew/v1"

	"github.com/sinewhq/sinew/pkg/dlq"
	"github.com/sinewhq/sinew/pkg/streams"
)

// dlqShown bounds the letters the DLQ page lists.
const dlqShown = 500

// codeCount is one reason code's waiting letters.
type codeCount struct {
	Code string
	N    int
}

// dlqPage lists dead letters (waiting ones, or every one with all=1),
// with the waiting count per reason code and the replay / discard form.
func (w *web) dlqPage(rw http.ResponseWriter, r *http.Request, s *session) {
	all := r.FormValue("all") == "1"
	code := r.FormValue("code")
	st, err := dlq.Open(r.Context(), w.js, nil)
	var rows []*dlq.Entry
	waiting := 0
	codes := map[string]int{}
	if err == nil {
		err = st.List(r.Context(), "", func(e *dlq.Entry) error {
			if !e.Handled() {
				waiting++
				codes[orDash(e.Letter.GetReasonCode())]++
			}
			if (all || !e.Handled()) && (code == "" || dlq.Selector{Code: code, Replayed: true}.Match(e)) && len(rows) < dlqShown {
				rows = append(rows, e)
			}
			return nil
		})
	}
	var byCode []codeCount
	for c, n := range codes {
		byCode = append(byCode, codeCount{c, n})
	}
	sort.Slice(byCode, func(i, j int) bool { return byCode[i].Code < byCode[j].Code })
	data := map[string]any{"Letters": rows, "Waiting": waiting, "Codes": byCode, "All": all, "Code": code, "Msg": r.FormValue("msg")}
	if err != nil {
		data["Error"] = err.Error()
	}
	w.render(rw, "dlq", s, data)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// dlqAct replays or discards dead letters: the ticked ones (seq), or
// every waiting letter of a reason code (bulk_code). A reason is required;
// the store audits each replay and discard (as `sinew dlq replay|discard`
// does), a bulk action also its selection.
func (w *web) dlqAct(rw http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	action, reason := r.FormValue("action"), strings.TrimSpace(r.FormValue("reason"))
	back := func(msg string) {
		http.Redirect(rw, r, "/dlq?msg="+url.QueryEscape(msg), http.StatusSeeOther)
	}
	if action != "replay" && action != "discard" {
		http.Error(rw, "action: replay or discard", http.StatusBadRequest)
		return
	}
	if reason == "" {
		back(action + ": a reason is required (it goes to the audit trail)")
		return
	}
	actor := "console:" + s.user.Name
	st, err := dlq.Open(ctx, w.js, w.audit)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	var entries []*dlq.Entry
	desc := ""
	if code := r.FormValue("bulk_code"); code != "" {
		// Every waiting letter of the code, as `sinew dlq replay --code`.
		if entries, err = st.Select(ctx, "", dlq.Selector{Code: code}); err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		desc = "code=" + strconv.Quote(code)
	} else {
		for _, v := range r.Form["seq"] {
			seq, err := strconv.ParseUint(v, 10, 64)
			if err != nil || seq == 0 {
				http.Error(rw, "seq: a DLQ sequence", http.StatusBadRequest)
				return
			}
			e, err := st.Get(ctx, seq)
			if err != nil {
				http.Error(rw, err.Error(), http.StatusNotFound)
				return
			}
			entries = append(entries, e)
		}
		if len(entries) > 1 {
			desc = strconv.Itoa(len(entries)) + " ticked"
		}
	}
	if len(entries) == 0 {
		back(action + ": tick dead letters or choose a reason code")
		return
	}
	if desc != "" {
		if err := w.audit.Write(ctx, &sinewv1.AuditEvent{Actor: actor, Action: "bulk-" + action, Hop: streams.HopReplay, Outcome: "started",
			Detail: fmt.Sprintf("%d dead letters selected by %s: %s", len(entries), desc, reason)}); err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	var done, failed int
	var firstErr error
	count := func(e *dlq.Entry, err error) error {
		if err != nil {
			failed++
			if firstErr == nil {
				firstErr = fmt.Errorf("seq %d: %w", e.Seq, err)
			}
			return ctx.Err()
		}
		done++
		return nil
	}
	if action == "replay" {
		err = st.ReplayAll(ctx, entries, actor, reason, false, func(e *dlq.Entry, _ *dlq.ReplayInfo, err error) error { return count(e, err) })
	} else {
		err = st.DiscardAll(ctx, entries, actor, reason, func(e *dlq.Entry, _ *dlq.DiscardInfo, err error) error { return count(e, err) })
	}
	if err != nil && !errors.Is(err, ctx.Err()) {
		firstErr = err
	}
	msg := fmt.Sprintf("%d %s, %d failed", done, map[string]string{"replay": "replayed", "discard": "discarded"}[action], failed)
	if firstErr != nil {
		msg += " (" + firstErr.Error() + ")"
	}
	back(msg)
}
