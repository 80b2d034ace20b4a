package sandbox

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
	"google.golang.org/api/gmail/v1"
)

// msgInfo is what a test knows about a message, read back through the API.
type msgInfo struct {
	id, from, to, subject, snippet string
	labels                         []string
	date                           time.Time
}

func (m msgInfo) has(l string) bool { return slices.Contains(m.labels, l) }

// allMessages reads the whole mailbox (spam and trash included) through the
// real client: the oracle the query tests compare against.
func allMessages(t *testing.T, svc *gmail.Service) []msgInfo {
	t.Helper()
	var out []msgInfo
	err := svc.Users.Messages.List("me").IncludeSpamTrash(true).MaxResults(500).Pages(t.Context(), func(r *gmail.ListMessagesResponse) error {
		for _, m := range r.Messages {
			full, err := svc.Users.Messages.Get("me", m.Id).Format("metadata").Do()
			if err != nil {
				return err
			}
			mi := msgInfo{id: full.Id, labels: full.LabelIds, snippet: full.Snippet, date: time.UnixMilli(full.InternalDate)}
			for _, h := range full.Payload.Headers {
				switch h.Name {
				case "From":
					mi.from = h.Value
				case "To":
					mi.to = h.Value
				case "Subject":
					mi.subject = h.Value
				}
			}
			out = append(out, mi)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the mailbox: %v", err)
	}
	return out
}

func listIDs(t *testing.T, call *gmail.UsersMessagesListCall) (ids []string, pages int) {
	t.Helper()
	err := call.Pages(t.Context(), func(r *gmail.ListMessagesResponse) error {
		pages++
		for _, m := range r.Messages {
			ids = append(ids, m.Id)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	return ids, pages
}

func TestListPaging(t *testing.T) {
	h := newHarness(t)
	svc := h.gmail(t, h.connect(t, "pager@example.com"))
	all := allMessages(t, svc)
	if len(all) != DefaultMailboxSize {
		t.Fatalf("mailbox has %d messages, want %d", len(all), DefaultMailboxSize)
	}
	var want []string
	for _, m := range all {
		if !m.has("SPAM") && !m.has("TRASH") {
			want = append(want, m.id)
		}
	}
	for i := 1; i < len(all); i++ {
		if !all[i].date.Before(all[i-1].date) {
			t.Fatalf("messages not newest first at %d: %v then %v", i, all[i-1].date, all[i].date)
		}
	}
	if got := all[0].date.Sub(all[1].date); got != 8*time.Hour {
		t.Errorf("spacing = %v, want 8h", got)
	}

	first, err := svc.Users.Messages.List("me").MaxResults(100).Do()
	if err != nil {
		t.Fatal(err)
	}
	if first.ResultSizeEstimate != int64(len(want)) || first.NextPageToken == "" || len(first.Messages) != 100 {
		t.Errorf("first page: %d messages, estimate %d, next %q; want 100, %d, a token", len(first.Messages), first.ResultSizeEstimate, first.NextPageToken, len(want))
	}
	got, pages := listIDs(t, svc.Users.Messages.List("me").MaxResults(100))
	if pages != 3 {
		t.Errorf("pages = %d, want 3", pages)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("paged ids (-want +got):\n%s", diff)
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] || len(id) != 16 {
			t.Errorf("duplicate or malformed id %q", id)
		}
		seen[id] = true
	}
	// maxResults above 500 clamps; default is 100.
	r, err := svc.Users.Messages.List("me").MaxResults(1000).IncludeSpamTrash(true).Do()
	if err != nil || len(r.Messages) != 260 {
		t.Errorf("maxResults 1000: %d messages, err %v", len(r.Messages), err)
	}
	r, err = svc.Users.Messages.List("me").Do()
	if err != nil || len(r.Messages) != 100 {
		t.Errorf("default page: %d messages, err %v", len(r.Messages), err)
	}
	// Another user sees the same ids.
	other := h.gmail(t, h.connect(t, "twin@example.com"))
	got2, _ := listIDs(t, other.Users.Messages.List("me").MaxResults(500))
	if diff := cmp.Diff(want, got2); diff != "" {
		t.Errorf("second user's mailbox differs (-want +got):\n%s", diff)
	}
}

func TestListFilters(t *testing.T) {
	h := newHarness(t)
	const me = "filters@example.com"
	svc := h.gmail(t, h.connect(t, me))
	all := allMessages(t, svc)
	now := h.clk.Now()
	day := func(d time.Time) string { return d.UTC().Format("2006/01/02") }
	afterDay := now.AddDate(0, 0, -20).UTC().Truncate(24 * time.Hour)
	beforeDay := now.AddDate(0, 0, -10).UTC().Truncate(24 * time.Hour)
	normal := func(m msgInfo) bool { return !m.has("SPAM") && !m.has("TRASH") }
	ci := func(s, sub string) bool { return strings.Contains(strings.ToLower(s), sub) }
	tests := []struct {
		q        string
		labelIDs []string
		spam     bool
		want     func(m msgInfo) bool
		nonEmpty bool
	}{
		{q: "", want: normal, nonEmpty: true},
		{q: "", spam: true, want: func(msgInfo) bool { return true }},
		{q: "newer_than:30d", want: func(m msgInfo) bool { return normal(m) && m.date.After(now.AddDate(0, 0, -30)) }, nonEmpty: true},
		{q: "older_than:60d", want: func(m msgInfo) bool { return normal(m) && m.date.Before(now.AddDate(0, 0, -60)) }, nonEmpty: true},
		{q: "in:sent", want: func(m msgInfo) bool { return normal(m) && m.has("SENT") }, nonEmpty: true},
		{q: "in:inbox is:unread", want: func(m msgInfo) bool { return normal(m) && m.has("INBOX") && m.has("UNREAD") }, nonEmpty: true},
		{q: "is:read", want: func(m msgInfo) bool { return normal(m) && !m.has("UNREAD") }, nonEmpty: true},
		{q: "is:starred", want: func(m msgInfo) bool { return normal(m) && m.has("STARRED") }, nonEmpty: true},
		{q: "label:Receipts", want: func(m msgInfo) bool { return normal(m) && m.has("Label_1") }, nonEmpty: true},
		{q: "from:github", want: func(m msgInfo) bool { return normal(m) && ci(m.from, "github") }, nonEmpty: true},
		{q: "from:me", want: func(m msgInfo) bool { return normal(m) && ci(m.from, me) }, nonEmpty: true},
		{q: "to:alice.martin@example.org", want: func(m msgInfo) bool { return normal(m) && ci(m.to, "alice.martin@example.org") }},
		{q: `subject:"pull request"`, want: func(m msgInfo) bool { return normal(m) && ci(m.subject, "pull request") }, nonEmpty: true},
		{q: `"fresh fruit"`, want: func(m msgInfo) bool {
			return normal(m) && (ci(m.subject, "fresh fruit") || ci(m.snippet, "fresh fruit"))
		}, nonEmpty: true},
		{q: "COFFEE", want: func(m msgInfo) bool {
			return normal(m) && (ci(m.subject, "coffee") || ci(m.from, "coffee") || ci(m.snippet, "coffee"))
		}, nonEmpty: true},
		{q: "in:spam", want: func(m msgInfo) bool { return m.has("SPAM") }, nonEmpty: true},
		{q: "in:trash", want: func(m msgInfo) bool { return m.has("TRASH") }, nonEmpty: true},
		{q: "-in:inbox", want: func(m msgInfo) bool { return normal(m) && !m.has("INBOX") }, nonEmpty: true},
		{q: "after:" + day(afterDay) + " before:" + day(beforeDay), want: func(m msgInfo) bool {
			return normal(m) && !m.date.Before(afterDay) && m.date.Before(beforeDay)
		}, nonEmpty: true},
		{q: "is:starred OR label:Receipts", want: func(m msgInfo) bool { return normal(m) && (m.has("STARRED") || m.has("Label_1")) }, nonEmpty: true},
		{q: "frobnicate:yes", want: func(msgInfo) bool { return false }},
		{labelIDs: []string{"INBOX", "UNREAD"}, want: func(m msgInfo) bool { return m.has("INBOX") && m.has("UNREAD") }, nonEmpty: true},
		{labelIDs: []string{"Label_1"}, q: "newer_than:30d", want: func(m msgInfo) bool {
			return m.has("Label_1") && m.date.After(now.AddDate(0, 0, -30))
		}, nonEmpty: true},
		{labelIDs: []string{"TRASH"}, want: func(m msgInfo) bool { return m.has("TRASH") }, nonEmpty: true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("q=%s labels=%v spam=%v", tc.q, tc.labelIDs, tc.spam), func(t *testing.T) {
			var want []string
			for _, m := range all {
				if tc.want(m) {
					want = append(want, m.id)
				}
			}
			if tc.nonEmpty && len(want) == 0 {
				t.Fatalf("test data has no match; the case tests nothing")
			}
			call := svc.Users.Messages.List("me").Q(tc.q).MaxResults(37).IncludeSpamTrash(tc.spam)
			if len(tc.labelIDs) > 0 {
				call = call.LabelIds(tc.labelIDs...)
			}
			got, _ := listIDs(t, call)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			r, err := svc.Users.Messages.List("me").Q(tc.q).LabelIds(tc.labelIDs...).IncludeSpamTrash(tc.spam).MaxResults(1).Do()
			if err != nil {
				t.Fatal(err)
			}
			if r.ResultSizeEstimate != int64(len(want)) {
				t.Errorf("resultSizeEstimate = %d, want %d", r.ResultSizeEstimate, len(want))
			}
			if len(want) == 0 && r.Messages != nil {
				t.Errorf("empty result has messages = %v, want omitted", r.Messages)
			}
		})
	}
	if _, err := svc.Users.Messages.List("me").LabelIds("Label_99").Do(); googleErr(t, err).Code != 400 {
		t.Errorf("unknown label: want 400")
	}
}

func TestGetMessage(t *testing.T) {
	h := newHarness(t)
	const me = "getter@example.com"
	svc := h.gmail(t, h.connect(t, me))
	list, err := svc.Users.Messages.List("me").MaxResults(1).Do()
	if err != nil {
		t.Fatal(err)
	}
	id := list.Messages[0].Id

	m, err := svc.Users.Messages.Get("me", id).Format("metadata").MetadataHeaders("From", "subject", "Date").Do()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, hd := range m.Payload.Headers {
		names = append(names, hd.Name)
		if hd.Value == "" {
			t.Errorf("header %s is empty", hd.Name)
		}
		if hd.Name == "Date" {
			if _, err := time.Parse(time.RFC1123Z, hd.Value); err != nil {
				t.Errorf("Date %q is not RFC 5322: %v", hd.Value, err)
			}
		}
		if hd.Name == "From" && !strings.Contains(hd.Value, " <") {
			t.Errorf("From %q is not \"Name <addr>\"", hd.Value)
		}
	}
	if diff := cmp.Diff([]string{"Date", "Subject", "From"}, names); diff != "" {
		t.Errorf("metadata headers (-want +got):\n%s", diff)
	}
	if m.Id != id || m.ThreadId == "" || m.HistoryId == 0 || m.InternalDate != h.clk.Now().UnixMilli() || m.SizeEstimate == 0 || m.Snippet == "" || len(m.LabelIds) == 0 {
		t.Errorf("metadata message = %+v", m)
	}

	min, err := svc.Users.Messages.Get("me", id).Format("minimal").Do()
	if err != nil || min.Payload != nil || min.HistoryId != m.HistoryId {
		t.Errorf("minimal: %+v, %v", min, err)
	}
	full, err := svc.Users.Messages.Get("me", id).Do() // default format is full
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Payload.Parts) != 2 {
		t.Fatalf("full payload parts = %d, want 2", len(full.Payload.Parts))
	}
	body, err := base64.URLEncoding.DecodeString(full.Payload.Parts[0].Body.Data)
	if err != nil || !strings.Contains(string(body), id) {
		t.Errorf("text/plain body %q, %v", body, err)
	}
	raw, err := svc.Users.Messages.Get("me", id).Format("raw").Do()
	if err != nil {
		t.Fatal(err)
	}
	rb, err := base64.URLEncoding.DecodeString(raw.Raw)
	if err != nil || !strings.Contains(string(rb), "Delivered-To: "+me) || int64(len(rb)) != raw.SizeEstimate {
		t.Errorf("raw: %v, size %d vs %d", err, len(rb), raw.SizeEstimate)
	}

	// By email instead of "me".
	if _, err := svc.Users.Messages.Get(me, id).Format("minimal").Do(); err != nil {
		t.Errorf("userId = email: %v", err)
	}
	_, err = svc.Users.Messages.Get("someone.else@example.com", id).Do()
	if ge := googleErr(t, err); ge.Code != 403 {
		t.Errorf("other user: %d, want 403", ge.Code)
	}
	_, err = svc.Users.Messages.Get("me", "18f3a5c0ffffffff").Do()
	ge := googleErr(t, err)
	want := [4]any{404, "Requested entity was not found.", "notFound", "NOT_FOUND"}
	got := [4]any{ge.Code, ge.Message, "", ""}
	if len(ge.Errors) == 1 {
		got[2] = ge.Errors[0].Reason
	}
	if strings.Contains(ge.Body, `"status": "NOT_FOUND"`) || strings.Contains(ge.Body, `"status":"NOT_FOUND"`) {
		got[3] = "NOT_FOUND"
	}
	if got != want {
		t.Errorf("unknown id: got %v, want %v (body %s)", got, want, ge.Body)
	}
	if _, err := svc.Users.Messages.Get("me", "zzz").Do(); googleErr(t, err).Code != 400 {
		t.Errorf("malformed id: want 400")
	}
}

func TestHistory(t *testing.T) {
	h := newHarness(t)
	const me = "hist@example.com"
	svc := h.gmail(t, h.connect(t, me))
	prof, err := svc.Users.GetProfile("me").Do()
	if err != nil {
		t.Fatal(err)
	}
	if prof.EmailAddress != me || prof.MessagesTotal != 260 || prof.ThreadsTotal == 0 || prof.ThreadsTotal >= 260 || prof.HistoryId == 0 {
		t.Errorf("profile = %+v", prof)
	}
	start := prof.HistoryId

	empty, err := svc.Users.History.List("me").StartHistoryId(start).Do()
	if err != nil || empty.History != nil || empty.HistoryId != start {
		t.Fatalf("no changes: %+v, %v", empty, err)
	}

	added := h.sb.AddMessages(me, 3)
	list, _ := svc.Users.Messages.List("me").MaxResults(2).Do()
	seeded := list.Messages[1].Id // the newest seeded message
	if list.Messages[0].Id != added[2] {
		t.Errorf("newest message = %s, want the last added %s", list.Messages[0].Id, added[2])
	}
	if err := h.sb.DeleteMessages(me, seeded); err != nil {
		t.Fatal(err)
	}
	if err := h.sb.ModifyLabels(me, added[0], []string{"STARRED"}, []string{"UNREAD"}); err != nil {
		t.Fatal(err)
	}

	type rec struct {
		Type   string
		ID     string
		Labels []string
	}
	flatten := func(r *gmail.ListHistoryResponse) []rec {
		var out []rec
		for _, hh := range r.History {
			if len(hh.Messages) != 1 || hh.Id <= start {
				t.Errorf("history record %d has %d messages", hh.Id, len(hh.Messages))
			}
			for _, a := range hh.MessagesAdded {
				out = append(out, rec{"added", a.Message.Id, a.Message.LabelIds})
			}
			for _, d := range hh.MessagesDeleted {
				out = append(out, rec{"deleted", d.Message.Id, nil})
			}
			for _, l := range hh.LabelsAdded {
				out = append(out, rec{"labelAdded", l.Message.Id, l.LabelIds})
			}
			for _, l := range hh.LabelsRemoved {
				out = append(out, rec{"labelRemoved", l.Message.Id, l.LabelIds})
			}
		}
		return out
	}
	r, err := svc.Users.History.List("me").StartHistoryId(start).Do()
	if err != nil {
		t.Fatal(err)
	}
	want := []rec{
		{"added", added[0], []string{"INBOX", "UNREAD"}},
		{"added", added[1], []string{"INBOX", "UNREAD"}},
		{"added", added[2], []string{"INBOX", "UNREAD"}},
		{"deleted", seeded, nil},
		{"labelAdded", added[0], []string{"STARRED"}},
		{"labelRemoved", added[0], []string{"UNREAD"}},
	}
	if diff := cmp.Diff(want, flatten(r)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	prof2, _ := svc.Users.GetProfile("me").Do()
	if r.HistoryId != prof2.HistoryId || r.HistoryId != start+6 || prof2.MessagesTotal != 262 {
		t.Errorf("historyId %d, profile %+v; want %d and 262 messages", r.HistoryId, prof2, start+6)
	}

	r, err = svc.Users.History.List("me").StartHistoryId(start).HistoryTypes("messageDeleted").Do()
	if err != nil || !cmp.Equal(flatten(r), []rec{{"deleted", seeded, nil}}) {
		t.Errorf("historyTypes=messageDeleted: %v, %v", flatten(r), err)
	}
	r, err = svc.Users.History.List("me").StartHistoryId(start).LabelId("STARRED").Do()
	if err != nil || len(flatten(r)) != 2 { // labelAdded STARRED, and labelRemoved (message now STARRED)
		t.Errorf("labelId=STARRED: %v, %v", flatten(r), err)
	}
	var paged []rec
	pages := 0
	err = svc.Users.History.List("me").StartHistoryId(start).MaxResults(4).Pages(t.Context(), func(r *gmail.ListHistoryResponse) error {
		pages++
		paged = append(paged, flatten(r)...)
		return nil
	})
	if err != nil || pages != 2 || !cmp.Equal(paged, want) {
		t.Errorf("paged history: %d pages, %v, %v", pages, paged, err)
	}
	if _, err := svc.Users.Messages.Get("me", seeded).Do(); googleErr(t, err).Code != 404 {
		t.Errorf("deleted message: want 404")
	}
	if err := h.sb.DeleteMessages(me, seeded); err == nil {
		t.Errorf("deleting twice succeeded")
	}

	h.sb.ExpireHistory(me)
	_, err = svc.Users.History.List("me").StartHistoryId(start).Do()
	if ge := googleErr(t, err); ge.Code != 404 || len(ge.Errors) != 1 || ge.Errors[0].Reason != "notFound" {
		t.Errorf("expired startHistoryId: %+v, want 404 notFound", ge)
	}
	if r, err := svc.Users.History.List("me").StartHistoryId(prof2.HistoryId).Do(); err != nil || r.History != nil {
		t.Errorf("current startHistoryId after expiry: %+v, %v", r, err)
	}
	_, err = svc.Users.History.List("me").Do()
	if ge := googleErr(t, err); ge.Code != 400 {
		t.Errorf("missing startHistoryId: %d, want 400", ge.Code)
	}
}

// TestQuotaAndFaults: the sandbox charges gmail.Costs and enforces a
// per-minute allowance per user (429 userRateLimitExceeded) and per project
// (403 rateLimitExceeded), each refilling continuously; a refused call
// costs nothing. Stats show units by user and by method.
func TestQuotaAndFaults(t *testing.T) {
	h := newHarness(t)
	if l := h.sb.QuotaLimits(); l.UserPerMinute != 6000 || l.ProjectPerMinute != 1_200_000 || l.Window != time.Minute {
		t.Fatalf("default limits = %+v, want Gmail's 2026 limits (6,000 per user, 1,200,000 per project, per minute)", l)
	}
	tok := h.connect(t, "quota@example.com")
	svc := h.gmail(t, tok)
	list, err := svc.Users.Messages.List("me").MaxResults(3).Do()
	if err != nil {
		t.Fatal(err)
	}
	id := list.Messages[0].Id
	h.sb.ResetStats()
	h.sb.SetQuotaLimits(QuotaLimits{UserPerMinute: 60})              // 60 units at once, then 1 a second
	if _, err := svc.Users.Messages.Get("me", id).Do(); err != nil { // format full: 60 units
		t.Fatalf("a full messages.get within the allowance: %v", err)
	}
	_, err = svc.Users.Messages.List("me").Do()
	ge := googleErr(t, err)
	if ge.Code != 429 || len(ge.Errors) != 1 || ge.Errors[0].Reason != "userRateLimitExceeded" || !strings.Contains(ge.Body, `"usageLimits"`) ||
		ge.Header.Get("Retry-After") != "5" || !strings.Contains(ge.Body, "RESOURCE_EXHAUSTED") {
		t.Errorf("over the user's limit: %+v Retry-After %q, want 429 userRateLimitExceeded, Retry-After 5", ge, ge.Header.Get("Retry-After"))
	}
	h.clk.Advance(20 * time.Second)
	if _, err := svc.Users.Messages.Get("me", id).Format("metadata").Do(); err != nil { // 20 units
		t.Errorf("after 20 s: %v", err)
	}
	if _, err := svc.Users.History.List("me").StartHistoryId(1).Do(); googleErr(t, err).Code != 429 {
		t.Errorf("history.list (2 units) with an empty allowance: want 429")
	}
	// Another user has an allowance of their own.
	other := h.gmail(t, h.connect(t, "quota2@example.com"))
	if _, err := other.Users.GetProfile("me").Do(); err != nil {
		t.Errorf("other user: %v", err)
	}
	st := h.sb.Stats()
	if st.RateLimited != 2 || st.QuotaUnits != 60+20+1 || st.QuotaUnitsByUser["quota@example.com"] != 80 ||
		st.QuotaUnitsByMethod["messages.get"] != 80 || st.QuotaUnitsByMethod["getProfile"] != 1 || st.QuotaUnitsByMethod["messages.list"] != 0 {
		t.Errorf("stats: rate limited %d, units %d, by user %v, by method %v", st.RateLimited, st.QuotaUnits, st.QuotaUnitsByUser, st.QuotaUnitsByMethod)
	}

	// The project's limit: 403 rateLimitExceeded, and the refused call
	// leaves the user's allowance alone.
	h.clk.Advance(time.Minute)
	h.sb.ResetStats()
	h.sb.SetQuotaLimits(QuotaLimits{UserPerMinute: 60, ProjectPerMinute: 30})
	if _, err := svc.Users.Messages.Get("me", id).Format("metadata").Do(); err != nil { // project 30 → 10
		t.Fatalf("within both limits: %v", err)
	}
	_, err = svc.Users.Messages.Get("me", id).Format("metadata").Do()
	ge = googleErr(t, err)
	if ge.Code != 403 || len(ge.Errors) != 1 || ge.Errors[0].Reason != "rateLimitExceeded" || ge.Header.Get("Retry-After") != "20" {
		t.Errorf("over the project's limit: %+v Retry-After %q, want 403 rateLimitExceeded, Retry-After 20", ge, ge.Header.Get("Retry-After"))
	}
	h.sb.SetQuotaLimits(QuotaLimits{UserPerMinute: 60, ProjectPerMinute: -1})
	if _, err := svc.Users.Messages.Get("me", id).Format("metadata").Do(); err != nil { // user 40 → 20 only if the refused call was refunded
		t.Errorf("the refused call took the user's units: %v", err)
	}
	if _, err := svc.Users.Messages.Get("me", id).Format("metadata").Do(); err != nil {
		t.Errorf("the refused call took the user's units: %v", err)
	}
	if st := h.sb.Stats(); st.RateLimited != 1 || st.RateLimitedProject != 1 {
		t.Errorf("stats: %d rate-limited, %d by the project; want 1 and 1", st.RateLimited, st.RateLimitedProject)
	}

	// A shorter window refills within seconds; unlimited refuses nothing.
	h.sb.SetQuotaLimits(QuotaLimits{UserPerMinute: 600, Window: time.Second}) // 10 units at once, 10 a second
	h.clk.Advance(time.Second)
	for range 2 {
		if _, err := svc.Users.Messages.List("me").Do(); err != nil {
			t.Fatalf("within a one-second window: %v", err)
		}
	}
	if _, err := svc.Users.Messages.List("me").Do(); googleErr(t, err).Code != 429 {
		t.Errorf("past a one-second window: want 429")
	}
	h.clk.Advance(time.Second)
	if _, err := svc.Users.Messages.List("me").Do(); err != nil {
		t.Errorf("a second later: %v", err)
	}
	h.sb.SetQuotaLimits(QuotaLimits{UserPerMinute: -1, ProjectPerMinute: -1})
	for range 20 {
		if _, err := svc.Users.Messages.Get("me", id).Do(); err != nil {
			t.Fatalf("unlimited: %v", err)
		}
	}
	h.sb.SetQuotaLimits(QuotaLimits{})

	h.sb.SetGmailFaults(GmailFaults{RateLimitNext: 1})
	_, err = svc.Users.GetProfile("me").Do()
	if ge := googleErr(t, err); ge.Code != 429 || ge.Errors[0].Reason != "userRateLimitExceeded" || ge.Header.Get("Retry-After") != "1" {
		t.Errorf("RateLimitNext: %+v", ge)
	}
	if _, err := svc.Users.GetProfile("me").Do(); err != nil {
		t.Errorf("after RateLimitNext: %v", err)
	}

	h.sb.SetGmailFaults(GmailFaults{FailNext: 2})
	for i := range 2 {
		_, err := svc.Users.GetProfile("me").Do()
		if ge := googleErr(t, err); ge.Code != 503 || ge.Errors[0].Reason != "backendError" {
			t.Errorf("fault %d: %+v", i, ge)
		}
	}
	if _, err := svc.Users.GetProfile("me").Do(); err != nil {
		t.Errorf("after faults: %v", err)
	}

	h.sb.SetGmailFaults(GmailFaults{Latency: 50 * time.Millisecond})
	t0 := time.Now()
	if _, err := svc.Users.GetProfile("me").Do(); err != nil || time.Since(t0) < 50*time.Millisecond {
		t.Errorf("latency: %v after %v", err, time.Since(t0))
	}
}

func TestMetadataScope(t *testing.T) {
	h := newHarness(t)
	q := h.code(t, connectOpts{email: "meta@example.com", scopes: "openid https://www.googleapis.com/auth/gmail.metadata"})
	tok, err := h.oauth.Exchange(h.ctx, q.Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	svc := h.gmail(t, tok)
	list, err := svc.Users.Messages.List("me").LabelIds("INBOX").Do()
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if _, err := svc.Users.Messages.Get("me", list.Messages[0].Id).Format("metadata").Do(); err != nil {
		t.Errorf("metadata get: %v", err)
	}
	if _, err := svc.Users.Messages.List("me").Q("is:unread").Do(); googleErr(t, err).Code != 403 {
		t.Errorf("q with metadata scope: want 403")
	}
	if _, err := svc.Users.Messages.Get("me", list.Messages[0].Id).Format("full").Do(); googleErr(t, err).Code != 403 {
		t.Errorf("format=full with metadata scope: want 403")
	}
}

func TestLabels(t *testing.T) {
	h := newHarness(t)
	svc := h.gmail(t, h.connect(t, "labels@example.com"))
	r, err := svc.Users.Labels.List("me").Do()
	if err != nil {
		t.Fatal(err)
	}
	var receipts *gmail.Label
	for _, l := range r.Labels {
		if l.Id == "Label_1" {
			receipts = l
		}
	}
	if receipts == nil || receipts.Name != "Receipts" || receipts.Type != "user" {
		t.Fatalf("Label_1 = %+v", receipts)
	}
	l, err := svc.Users.Labels.Get("me", "Label_1").Do()
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := listIDs(t, svc.Users.Messages.List("me").LabelIds("Label_1").IncludeSpamTrash(true).MaxResults(500))
	if l.MessagesTotal != int64(len(ids)) || l.MessagesTotal == 0 {
		t.Errorf("Label_1 messagesTotal = %d, list says %d", l.MessagesTotal, len(ids))
	}
}

func TestConcurrentCalls(t *testing.T) {
	h := newHarness(t)
	const users = 20
	toks := make([]*oauth2.Token, users)
	svcs := make([]*gmail.Service, users)
	for i := range users {
		toks[i] = h.connect(t, fmt.Sprintf("c%d@example.com", i))
		svcs[i] = h.gmail(t, toks[i])
	}
	h.sb.ResetStats()
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := i % users
			var err error
			switch i % 5 {
			case 0:
				_, err = svcs[u].Users.Messages.List("me").Q("newer_than:30d").Do()
			case 1:
				_, err = svcs[u].Users.Messages.Get("me", idOf(i%200)).Format("metadata").Do()
			case 2:
				_, err = svcs[u].Users.GetProfile("me").Do()
			case 3:
				tok := *toks[u]
				tok.Expiry = time.Now().Add(-time.Minute)
				_, err = h.oauth.TokenSource(h.ctx, &tok).Token()
			case 4:
				h.sb.AddMessages(fmt.Sprintf("c%d@example.com", u), 1)
				_, err = svcs[u].Users.History.List("me").StartHistoryId(historyBase + 260).Do()
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent call: %v", err)
	}
	st := h.sb.Stats()
	want := map[string]int{"messages.list": 200, "messages.get": 200, "getProfile": 200, "history.list": 200}
	if diff := cmp.Diff(want, st.GmailCalls); diff != "" {
		t.Errorf("GmailCalls (-want +got):\n%s", diff)
	}
	if st.TokenCalls["refresh_token"] != 200 {
		t.Errorf("refresh calls = %d, want 200", st.TokenCalls["refresh_token"])
	}
}

// TestManyLargeMailboxes checks 1,000 users with 10,000 messages each stay
// small in memory and a first sync listing stays fast.
func TestManyLargeMailboxes(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MailboxSize = 10_000 })
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 1000 {
		email := "big" + strconv.Itoa(i) + "@example.com"
		if got := h.sb.UserInfo(email).MailboxSize; got != 10_000 {
			t.Fatalf("mailbox size = %d", got)
		}
		h.sb.AddMessages(email, 2)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 32<<20 {
		t.Errorf("1,000 mailboxes of 10,000 messages took %d MiB", grew>>20)
	}
	svc := h.gmail(t, h.connect(t, "big7@example.com"))
	t0 := time.Now()
	ids, _ := listIDs(t, svc.Users.Messages.List("me").Q("newer_than:30d").MaxResults(500))
	if len(ids) < 80 || len(ids) > 92 {
		t.Errorf("newer_than:30d over 10,000 messages: %d ids", len(ids))
	}
	all, pages := listIDs(t, svc.Users.Messages.List("me").MaxResults(500).IncludeSpamTrash(true))
	if len(all) != 10_002 || pages != 21 {
		t.Errorf("full listing: %d ids in %d pages, want 10002 in 21", len(all), pages)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("listing took %v", d)
	}
	if err := h.sb.SetMailboxSize("big7@example.com", 5); err == nil {
		t.Errorf("SetMailboxSize after first use succeeded")
	}
	if err := h.sb.SetMailboxSize("small@example.com", 5); err != nil {
		t.Fatal(err)
	}
	if got := h.sb.UserInfo("small@example.com").MailboxSize; got != 5 {
		t.Errorf("small mailbox size = %d", got)
	}
}

func TestGmailNeedsBearer(t *testing.T) {
	h := newHarness(t)
	resp, err := http.Get(h.srv.URL + "/gmail/v1/users/me/profile")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error struct {
			Code   int    `json:"code"`
			Status string `json:"status"`
			Errors []struct {
				Reason, Location, LocationType string
			} `json:"errors"`
		} `json:"error"`
	}
	decodeJSON(t, resp, &body)
	if resp.StatusCode != 401 || body.Error.Code != 401 || body.Error.Status != "UNAUTHENTICATED" ||
		len(body.Error.Errors) != 1 || body.Error.Errors[0].Reason != "authError" || body.Error.Errors[0].LocationType != "header" {
		t.Errorf("no token: %d %+v", resp.StatusCode, body)
	}
}

func BenchmarkListMessages10k(b *testing.B) {
	sb, srv, err := StartServer(Config{ClientID: "c", ClientSecret: "s", RedirectURIs: []string{testRedirect}, MailboxSize: 10_000, SigningKey: sharedKey(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	mb := sb.mailboxFor("bench@example.com")
	f := newFilter("newer_than:30d", nil, false, time.Now())
	b.ResetTimer()
	for b.Loop() {
		mb.mu.Lock()
		var from *int
		for {
			_, next, _ := mb.list(f, "newer_than:30d", from, 500)
			if next == nil {
				break
			}
			from = next
		}
		mb.mu.Unlock()
	}
}
