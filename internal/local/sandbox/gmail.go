package sandbox

import (
	"encoding/base64"
	"html"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"example.com/gmailoauth/internal/gmail"
)

// ---- wire types (Google's field names and encodings; see gmail/v1 struct tags) ----

type gHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type gBody struct {
	Size int    `json:"size"`
	Data string `json:"data,omitempty"`
}

type gPart struct {
	PartID   string    `json:"partId"`
	MimeType string    `json:"mimeType"`
	Filename string    `json:"filename"`
	Headers  []gHeader `json:"headers,omitempty"`
	Body     *gBody    `json:"body,omitempty"`
	Parts    []*gPart  `json:"parts,omitempty"`
}

type gMessage struct {
	ID           string   `json:"id"`
	ThreadID     string   `json:"threadId"`
	LabelIDs     []string `json:"labelIds,omitempty"`
	Snippet      string   `json:"snippet,omitempty"`
	Payload      *gPart   `json:"payload,omitempty"`
	SizeEstimate int      `json:"sizeEstimate,omitempty"`
	HistoryID    uint64   `json:"historyId,omitempty,string"`
	InternalDate int64    `json:"internalDate,omitempty,string"`
	Raw          string   `json:"raw,omitempty"`
}

type gMsgRef struct {
	Message *gMessage `json:"message"`
}

type gLabelChange struct {
	Message  *gMessage `json:"message"`
	LabelIDs []string  `json:"labelIds"`
}

type gHistory struct {
	ID              uint64          `json:"id,string"`
	Messages        []*gMessage     `json:"messages,omitempty"`
	MessagesAdded   []*gMsgRef      `json:"messagesAdded,omitempty"`
	MessagesDeleted []*gMsgRef      `json:"messagesDeleted,omitempty"`
	LabelsAdded     []*gLabelChange `json:"labelsAdded,omitempty"`
	LabelsRemoved   []*gLabelChange `json:"labelsRemoved,omitempty"`
}

type gLabel struct {
	ID                    string `json:"id"`
	Name                  string `json:"name"`
	MessageListVisibility string `json:"messageListVisibility,omitempty"`
	LabelListVisibility   string `json:"labelListVisibility,omitempty"`
	Type                  string `json:"type"`
	MessagesTotal         *int   `json:"messagesTotal,omitempty"`
	MessagesUnread        *int   `json:"messagesUnread,omitempty"`
	ThreadsTotal          *int   `json:"threadsTotal,omitempty"`
	ThreadsUnread         *int   `json:"threadsUnread,omitempty"`
}

// ---- errors ----

type gErrItem struct {
	Message      string `json:"message"`
	Domain       string `json:"domain"`
	Reason       string `json:"reason"`
	Location     string `json:"location,omitempty"`
	LocationType string `json:"locationType,omitempty"`
}

func gmailError(w http.ResponseWriter, code int, status, message string, item gErrItem) {
	writeJSON(w, code, map[string]any{"error": map[string]any{
		"code":    code,
		"message": message,
		"errors":  []gErrItem{item},
		"status":  status,
	}})
}

func gmailUnauthenticated(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
	gmailError(w, http.StatusUnauthorized, "UNAUTHENTICATED",
		"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
		gErrItem{Message: "Invalid Credentials", Domain: "global", Reason: "authError", Location: "Authorization", LocationType: "header"})
}

func gmailInsufficientScope(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="insufficient_scope", scope="`+
		strings.Join([]string{ScopeMailGoogle, ScopeGmailModify, ScopeGmailReadonly, ScopeGmailMetadata}, " ")+`"`)
	gmailError(w, http.StatusForbidden, "PERMISSION_DENIED", "Request had insufficient authentication scopes.",
		gErrItem{Message: "Insufficient Permission", Domain: "global", Reason: "insufficientPermissions"})
}

func gmailForbidden(w http.ResponseWriter, msg string) {
	gmailError(w, http.StatusForbidden, "PERMISSION_DENIED", msg, gErrItem{Message: msg, Domain: "global", Reason: "forbidden"})
}

func gmailBadRequest(w http.ResponseWriter, msg string) {
	gmailError(w, http.StatusBadRequest, "INVALID_ARGUMENT", msg, gErrItem{Message: msg, Domain: "global", Reason: "invalidArgument"})
}

func gmailNotFound(w http.ResponseWriter) {
	gmailError(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.",
		gErrItem{Message: "Requested entity was not found.", Domain: "global", Reason: "notFound"})
}

func (s *Sandbox) gmailNotFound(w http.ResponseWriter, r *http.Request) { gmailNotFound(w) }

// ---- request pipeline: faults, auth, scope, user, quota ----

type gmailReq struct {
	email        string
	mb           *mailbox
	metadataOnly bool // only the gmail.metadata scope was granted
	now          time.Time
}

// gmail wraps a Gmail method's handler: faults, authentication, scope,
// user, then the quota, charged from gmail.Costs (the functions' own
// table) for the method and format the request names.
func (s *Sandbox) gmail(h func(http.ResponseWriter, *http.Request, *gmailReq)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		method, cost := gmail.Classify(r.Method, r.URL)
		s.bumpStat(func(st *Stats) { st.GmailCalls[method]++ })
		s.mu.Lock()
		faults := s.gmailFaults
		fail := s.gmailFaults.FailNext > 0
		if fail {
			s.gmailFaults.FailNext--
		}
		limited := !fail && s.gmailFaults.RateLimitNext > 0
		if limited {
			s.gmailFaults.RateLimitNext--
		}
		s.mu.Unlock()
		if !inBatch(r) {
			sleep(r, faults.Latency) // a batch waits once for all its calls
		}
		if fail {
			s.bumpStat(func(st *Stats) { st.GmailFailures++ })
			gmailError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "The service is currently unavailable.",
				gErrItem{Message: "The service is currently unavailable.", Domain: "global", Reason: "backendError"})
			return
		}
		if limited {
			s.bumpStat(func(st *Stats) { st.RateLimited++ })
			retryAfter(w, time.Second)
			gmailError(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "User-rate limit exceeded.",
				gErrItem{Message: "User-rate limit exceeded.", Domain: "usageLimits", Reason: "userRateLimitExceeded"})
			return
		}

		now := s.now()
		s.mu.Lock()
		u, t := s.lookupAccessLocked(bearer(r), now)
		if u == nil {
			s.mu.Unlock()
			gmailUnauthenticated(w)
			return
		}
		full := hasScope(t.scopes, ScopeGmailReadonly, ScopeGmailModify, ScopeMailGoogle)
		if !full && !hasScope(t.scopes, ScopeGmailMetadata) {
			s.mu.Unlock()
			gmailInsufficientScope(w)
			return
		}
		if id := r.PathValue("userId"); id != "me" && normEmail(id) != u.email {
			s.mu.Unlock()
			gmailForbidden(w, "Delegation denied for "+u.email)
			return
		}
		if !s.chargeLocked(w, u, cost, now) {
			s.mu.Unlock()
			return
		}
		mb := s.ensureMailboxLocked(u, now)
		email := u.email
		s.mu.Unlock()
		s.bumpStat(func(st *Stats) {
			st.QuotaUnits += int64(cost)
			st.QuotaUnitsByUser[email] += int64(cost)
			st.QuotaUnitsByMethod[method] += int64(cost)
		})
		withFields(w, r, func(w http.ResponseWriter) { h(w, r, &gmailReq{email: email, mb: mb, metadataOnly: !full, now: now}) })
	}
}

// ensureMailboxLocked returns u's mailbox, creating it. s.mu must be held.
func (s *Sandbox) ensureMailboxLocked(u *user, now time.Time) *mailbox {
	if u.mb == nil {
		size := u.mailboxSize
		switch size {
		case 0:
			size = s.defaultSize
		case -1: // explicitly empty
			size = 0
		}
		u.mb = newMailbox(u.email, size, now)
	}
	return u.mb
}

func parseMax(r *http.Request) (int, bool) {
	v := r.URL.Query().Get("maxResults")
	if v == "" {
		return 100, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, false
	}
	if n == 0 {
		return 100, true
	}
	return min(n, 500), true
}

func encodePageToken(n int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("sbx:" + strconv.FormatInt(n, 10)))
}

func decodePageToken(tok string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(b), "sbx:") {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b[4:]), 10, 64)
	return n, err == nil
}

// ---- users.messages.list ----

func (s *Sandbox) gmailListMessages(w http.ResponseWriter, r *http.Request, g *gmailReq) {
	qp := r.URL.Query()
	q := qp.Get("q")
	if q != "" && g.metadataOnly {
		gmailForbidden(w, "Metadata scope does not support 'q' parameter")
		return
	}
	maxResults, ok := parseMax(r)
	if !ok {
		gmailBadRequest(w, "Invalid value for maxResults")
		return
	}
	labelIDs := qp["labelIds"]
	for _, l := range labelIDs {
		if !knownLabel(l) {
			gmailBadRequest(w, "Invalid label: "+l)
			return
		}
	}
	includeST := false
	if v := qp.Get("includeSpamTrash"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			gmailBadRequest(w, "Invalid value for includeSpamTrash")
			return
		}
		includeST = b
	}
	var from *int
	if tok := qp.Get("pageToken"); tok != "" {
		n, ok := decodePageToken(tok)
		if !ok {
			gmailBadRequest(w, "Invalid pageToken")
			return
		}
		ref := int(n)
		from = &ref
	}
	f := newFilter(q, labelIDs, includeST, g.now)
	mb := g.mb
	mb.mu.Lock()
	refs, next, total := mb.list(f, q, from, maxResults)
	out := struct {
		Messages           []gMessage `json:"messages,omitempty"`
		NextPageToken      string     `json:"nextPageToken,omitempty"`
		ResultSizeEstimate int        `json:"resultSizeEstimate"`
	}{ResultSizeEstimate: total}
	for _, ref := range refs {
		out.Messages = append(out.Messages, gMessage{ID: idOf(ref), ThreadID: mb.threadOf(ref)})
	}
	mb.mu.Unlock()
	if next != nil {
		out.NextPageToken = encodePageToken(int64(*next))
	}
	writeJSON(w, http.StatusOK, out)
}

// ---- users.messages.get ----

func messageIDHeader(id string) string { return "<" + id + ".sandbox@mail.example.com>" }

func boundaryFor(id string) string { return "000000000000" + id[:12] }

// render builds the Gmail representation of ref. mb.mu must be held.
func (mb *mailbox) render(ref int, format string, only []string) *gMessage {
	id := idOf(ref)
	c := mb.contentOf(ref)
	date := mb.dateOf(ref)
	labels := sortedLabels(mb.labelsOf(ref))
	m := &gMessage{
		ID: id, ThreadID: mb.threadOf(ref), LabelIDs: labels,
		Snippet:   html.EscapeString(c.snippet),
		HistoryID: mb.historyOf(ref), InternalDate: date.UnixMilli(),
	}
	boundary := boundaryFor(id)
	var headers []gHeader
	if !strings.Contains(c.from, mb.email) {
		headers = append(headers, gHeader{"Delivered-To", mb.email})
	}
	headers = append(headers,
		gHeader{"MIME-Version", "1.0"},
		gHeader{"Date", date.UTC().Format(time.RFC1123Z)},
		gHeader{"Message-ID", messageIDHeader(id)},
		gHeader{"Subject", c.subject},
		gHeader{"From", c.from},
		gHeader{"To", c.to},
		gHeader{"Content-Type", `multipart/alternative; boundary="` + boundary + `"`},
	)
	name := c.from
	if i := strings.Index(name, " <"); i > 0 {
		name = name[:i]
	}
	plain := c.snippet + "\r\n\r\nThis message was generated by the Gmail sandbox; message " + id + ".\r\n\r\n-- \r\n" + name + "\r\n"
	htm := `<div dir="ltr">` + html.EscapeString(c.snippet) + "<br><br>This message was generated by the Gmail sandbox.</div>\r\n"
	var raw strings.Builder
	for _, h := range headers {
		raw.WriteString(h.Name + ": " + h.Value + "\r\n")
	}
	raw.WriteString("\r\n--" + boundary + "\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\n\r\n" + plain +
		"\r\n--" + boundary + "\r\nContent-Type: text/html; charset=\"UTF-8\"\r\n\r\n" + htm +
		"\r\n--" + boundary + "--\r\n")
	m.SizeEstimate = raw.Len()

	switch format {
	case "minimal":
	case "raw":
		m.Raw = base64.URLEncoding.EncodeToString([]byte(raw.String()))
	case "metadata":
		hs := headers
		if len(only) > 0 {
			hs = nil
			for _, h := range headers {
				if slices.ContainsFunc(only, func(o string) bool { return strings.EqualFold(o, h.Name) }) {
					hs = append(hs, h)
				}
			}
		}
		m.Payload = &gPart{MimeType: "multipart/alternative", Headers: hs}
	default: // full
		part := func(pid, mime, text string) *gPart {
			return &gPart{PartID: pid, MimeType: mime,
				Headers: []gHeader{{"Content-Type", mime + `; charset="UTF-8"`}},
				Body:    &gBody{Size: len(text), Data: base64.URLEncoding.EncodeToString([]byte(text))}}
		}
		m.Payload = &gPart{MimeType: "multipart/alternative", Headers: headers, Body: &gBody{},
			Parts: []*gPart{part("0", "text/plain", plain), part("1", "text/html", htm)}}
	}
	return m
}

func (s *Sandbox) gmailGetMessage(w http.ResponseWriter, r *http.Request, g *gmailReq) {
	qp := r.URL.Query()
	format := strings.ToLower(qp.Get("format"))
	switch format {
	case "":
		format = "full" // Gmail's default
	case "minimal", "metadata", "full", "raw":
	default:
		gmailBadRequest(w, "Invalid value at 'format'")
		return
	}
	if g.metadataOnly && (format == "full" || format == "raw") {
		gmailForbidden(w, "Metadata scope doesn't allow format "+strings.ToUpper(format))
		return
	}
	id := r.PathValue("id")
	ref, ok := refOf(id)
	if !ok {
		if _, err := strconv.ParseUint(id, 16, 64); err != nil || len(id) > 16 {
			gmailBadRequest(w, "Invalid id value")
			return
		}
		gmailNotFound(w)
		return
	}
	mb := g.mb
	mb.mu.Lock()
	if !mb.exists(ref) {
		mb.mu.Unlock()
		gmailNotFound(w)
		return
	}
	m := mb.render(ref, format, qp["metadataHeaders"])
	mb.mu.Unlock()
	writeJSON(w, http.StatusOK, m)
}

// ---- users.history.list ----

var historyTypes = []string{"messageAdded", "messageDeleted", "labelAdded", "labelRemoved"}

func (s *Sandbox) gmailListHistory(w http.ResponseWriter, r *http.Request, g *gmailReq) {
	qp := r.URL.Query()
	sv := qp.Get("startHistoryId")
	if sv == "" {
		gmailBadRequest(w, "Missing required field: startHistoryId")
		return
	}
	start, err := strconv.ParseUint(sv, 10, 64)
	if err != nil {
		gmailBadRequest(w, "Invalid startHistoryId")
		return
	}
	types := qp["historyTypes"]
	for _, t := range types {
		if !slices.Contains(historyTypes, t) {
			gmailBadRequest(w, "Invalid value at 'history_types'")
			return
		}
	}
	labelID := qp.Get("labelId")
	maxResults, ok := parseMax(r)
	if !ok {
		gmailBadRequest(w, "Invalid value for maxResults")
		return
	}
	var after uint64 // records with id > after
	if tok := qp.Get("pageToken"); tok != "" {
		n, ok := decodePageToken(tok)
		if !ok || n < 0 {
			gmailBadRequest(w, "Invalid pageToken")
			return
		}
		after = uint64(n)
	}
	after = max(after, start)

	mb := g.mb
	mb.mu.Lock()
	if start < mb.floor {
		mb.mu.Unlock()
		gmailNotFound(w)
		return
	}
	out := struct {
		History       []*gHistory `json:"history,omitempty"`
		NextPageToken string      `json:"nextPageToken,omitempty"`
		HistoryID     uint64      `json:"historyId,string"`
	}{HistoryID: mb.historyID}
	i, _ := slices.BinarySearchFunc(mb.history, after+1, func(h histRec, id uint64) int {
		switch {
		case h.id < id:
			return -1
		case h.id > id:
			return 1
		}
		return 0
	})
	for ; i < len(mb.history); i++ {
		rec := mb.history[i]
		if len(types) > 0 && !slices.Contains(types, rec.typ) {
			continue
		}
		if labelID != "" && !slices.Contains(rec.labels, labelID) && !slices.Contains(rec.changed, labelID) {
			continue
		}
		if len(out.History) == maxResults {
			out.NextPageToken = encodePageToken(int64(out.History[len(out.History)-1].ID))
			break
		}
		id, thread := idOf(rec.ref), mb.threadOf(rec.ref)
		h := &gHistory{ID: rec.id, Messages: []*gMessage{{ID: id, ThreadID: thread}}}
		full := &gMessage{ID: id, ThreadID: thread, LabelIDs: sortedLabels(rec.labels)}
		switch rec.typ {
		case "messageAdded":
			h.MessagesAdded = []*gMsgRef{{full}}
		case "messageDeleted":
			h.MessagesDeleted = []*gMsgRef{{full}}
		case "labelAdded":
			h.LabelsAdded = []*gLabelChange{{full, rec.changed}}
		case "labelRemoved":
			h.LabelsRemoved = []*gLabelChange{{full, rec.changed}}
		}
		out.History = append(out.History, h)
	}
	mb.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// ---- users.getProfile, users.labels ----

// counts returns (messages, threads) over live messages satisfying keep.
func (mb *mailbox) counts2(keep func(ref int) bool) (msgs, threads int) {
	seen := map[string]bool{}
	mb.each(nil, func(ref int) bool {
		if keep == nil || keep(ref) {
			msgs++
			t := mb.threadOf(ref)
			if !seen[t] {
				seen[t] = true
				threads++
			}
		}
		return true
	})
	return msgs, threads
}

func (s *Sandbox) gmailProfile(w http.ResponseWriter, r *http.Request, g *gmailReq) {
	mb := g.mb
	mb.mu.Lock()
	msgs, threads := mb.counts2(nil)
	hid := mb.historyID
	mb.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		EmailAddress  string `json:"emailAddress"`
		MessagesTotal int    `json:"messagesTotal"`
		ThreadsTotal  int    `json:"threadsTotal"`
		HistoryID     uint64 `json:"historyId,string"`
	}{g.email, msgs, threads, hid})
}

func labelMeta(id string) gLabel {
	if id == receiptsLabelID {
		return gLabel{ID: id, Name: receiptsLabelName, MessageListVisibility: "show", LabelListVisibility: "labelShow", Type: "user"}
	}
	l := gLabel{ID: id, Name: id, Type: "system"}
	switch id {
	case "INBOX", "SENT", "UNREAD", "STARRED", "IMPORTANT", "DRAFT", "TRASH", "SPAM":
		if id == "INBOX" || id == "SENT" || id == "DRAFT" {
			l.MessageListVisibility, l.LabelListVisibility = "hide", "labelShow"
		}
	}
	return l
}

func (s *Sandbox) gmailListLabels(w http.ResponseWriter, r *http.Request, g *gmailReq) {
	var out struct {
		Labels []gLabel `json:"labels"`
	}
	for _, id := range append(slices.Clone(systemLabels), receiptsLabelID) {
		out.Labels = append(out.Labels, labelMeta(id))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Sandbox) gmailGetLabel(w http.ResponseWriter, r *http.Request, g *gmailReq) {
	id := r.PathValue("id")
	if !knownLabel(id) {
		gmailNotFound(w)
		return
	}
	l := labelMeta(id)
	mb := g.mb
	mb.mu.Lock()
	mt, tt := mb.counts2(func(ref int) bool { return slices.Contains(mb.labelsOf(ref), id) })
	mu, tu := mb.counts2(func(ref int) bool {
		ls := mb.labelsOf(ref)
		return slices.Contains(ls, id) && slices.Contains(ls, "UNREAD")
	})
	mb.mu.Unlock()
	l.MessagesTotal, l.ThreadsTotal, l.MessagesUnread, l.ThreadsUnread = &mt, &tt, &mu, &tu
	writeJSON(w, http.StatusOK, l)
}
