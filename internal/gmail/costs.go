package gmail

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
)

// Method names, as Google's quota table names them.
const (
	MethodMessagesList   = "messages.list"
	MethodMessagesGet    = "messages.get"
	MethodAttachmentsGet = "messages.attachments.get"
	MethodMessagesTrash  = "messages.trash"
	MethodDraftsGet      = "drafts.get"
	MethodHistoryList    = "history.list"
	MethodGetProfile     = "getProfile"
	MethodLabelsList     = "labels.list"
	MethodLabelsGet      = "labels.get"
	MethodThreadsList    = "threads.list"
	MethodThreadsGet     = "threads.get"
	MethodWatch          = "watch"
	MethodStop           = "stop"
	// MethodBatch is the envelope of a batch request (POST /batch/gmail/v1).
	// Google counts a batch of n calls as n calls, so the envelope costs
	// nothing and each part is charged as if sent alone (BatchCost).
	MethodBatch = "batch"
	MethodOther = "other"
)

// QuotaPage is Google's current Gmail quota reference: the limits and the
// per-method prices below come from it.
const QuotaPage = "https://developers.google.com/workspace/gmail/api/reference/quota"

// Price is what one call of a method costs in quota units.
type Price struct {
	// Units is the price of one call.
	Units int
	// FullUnits, when not 0, is the price of a call that asks for a whole
	// message (format full, raw or html, or no format, which means full).
	FullUnits int
	// Source says where the value comes from.
	Source string
}

// Where the prices come from.
const (
	SourceQuotaPage = "Google's quota page, limits as of 2026-05-01"
	SourceOldPage   = "the last official table that listed it (Google's pre-2026 quota page); not found on the 2026 page"
	SourceSecondary = "secondary sources (not found on the 2026 quota page)"
)

// Costs is the one table of what each Gmail method the functions call (or
// will call) costs in quota units, under the limits Google applies to
// projects created since 2026-05-01 (QuotaPage, "As of May 1, 2026"). A
// method not listed is charged OtherCost. The sandbox charges this same
// table.
//
// Each row says where its value comes from (Source): QuotaPage for all but
// threads.list and threads.get (secondary sources) and watch and stop (the
// last official table that listed them). README.md's cost table is
// generated from this one (go test ./internal/apidoc -update).
//
// Before 2026-05-01 messages.get, messages.attachments.get, messages.trash
// and drafts.get cost 5 and threads.get 10; a project still on those
// limits is charged less by Google than by this table, which only makes
// the functions more careful than they need to be.
var Costs = map[string]Price{
	MethodMessagesList:   {Units: 5, Source: SourceQuotaPage},
	MethodMessagesGet:    {Units: 20, FullUnits: 60, Source: SourceQuotaPage},
	MethodAttachmentsGet: {Units: 20, Source: SourceQuotaPage},
	MethodMessagesTrash:  {Units: 20, Source: SourceQuotaPage},
	MethodDraftsGet:      {Units: 20, FullUnits: 60, Source: SourceQuotaPage},
	MethodHistoryList:    {Units: 2, Source: SourceQuotaPage},
	MethodGetProfile:     {Units: 1, Source: SourceQuotaPage},
	MethodLabelsList:     {Units: 1, Source: SourceQuotaPage},
	MethodLabelsGet:      {Units: 1, Source: SourceQuotaPage},
	MethodThreadsList:    {Units: 10, Source: SourceSecondary},
	MethodThreadsGet:     {Units: 40, Source: SourceSecondary},
	MethodWatch:          {Units: 100, Source: SourceOldPage},
	MethodStop:           {Units: 50, Source: SourceOldPage},
}

// OtherCost is charged for a request Classify cannot name.
const OtherCost = 5

// MaxBatchCalls is the most calls Google accepts in one batch request.
const MaxBatchCalls = 100

// Classify returns the Gmail method of a request and its cost in quota
// units; u's query matters for the methods whose price depends on the
// format. A batch envelope is MethodBatch at 0 units: see BatchCost.
func Classify(method string, u *url.URL) (string, int) {
	name := methodOf(method, u.Path)
	if name == MethodBatch {
		return name, 0
	}
	p, ok := Costs[name]
	if !ok {
		return MethodOther, OtherCost
	}
	if p.FullUnits != 0 {
		switch strings.ToLower(u.Query().Get("format")) {
		case "", "full", "raw", "html":
			return name, p.FullUnits
		}
	}
	return name, p.Units
}

// methodOf names the Gmail method of a request line.
func methodOf(method, path string) string {
	if method == http.MethodPost && strings.HasSuffix(strings.TrimSuffix(path, "/"), "/batch/gmail/v1") {
		return MethodBatch
	}
	i := strings.Index(path, "/gmail/v1/users/")
	if i < 0 {
		return MethodOther
	}
	rest := path[i+len("/gmail/v1/users/"):]
	p := strings.Split(strings.Trim(rest, "/"), "/") // {userId}/messages/{id}/...
	get, post := method == http.MethodGet, method == http.MethodPost
	switch {
	case get && len(p) == 2 && p[1] == "messages":
		return MethodMessagesList
	case get && len(p) == 3 && p[1] == "messages":
		return MethodMessagesGet
	case get && len(p) == 5 && p[1] == "messages" && p[3] == "attachments":
		return MethodAttachmentsGet
	case post && len(p) == 4 && p[1] == "messages" && p[3] == "trash":
		return MethodMessagesTrash
	case get && len(p) == 3 && p[1] == "drafts":
		return MethodDraftsGet
	case get && len(p) == 2 && p[1] == "history":
		return MethodHistoryList
	case get && len(p) == 2 && p[1] == "profile":
		return MethodGetProfile
	case get && len(p) == 2 && p[1] == "labels":
		return MethodLabelsList
	case get && len(p) == 3 && p[1] == "labels":
		return MethodLabelsGet
	case get && len(p) == 2 && p[1] == "threads":
		return MethodThreadsList
	case get && len(p) == 3 && p[1] == "threads":
		return MethodThreadsGet
	case post && len(p) == 2 && p[1] == "watch":
		return MethodWatch
	case post && len(p) == 2 && p[1] == "stop":
		return MethodStop
	}
	return MethodOther
}

// BatchCall is one call inside a batch request.
type BatchCall struct {
	// ContentID is the part's Content-ID header, which the answer's part
	// echoes ("response-" + ContentID).
	ContentID string
	Request   *http.Request
}

// ParseBatch reads the calls of a batch request body (multipart/mixed,
// each part an application/http request), as Google's batch endpoint
// does. It refuses more than MaxBatchCalls calls.
func ParseBatch(contentType string, body []byte) ([]BatchCall, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/mixed" || params["boundary"] == "" {
		return nil, errors.New("gmail batch: the body is not multipart/mixed with a boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var calls []BatchCall
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("gmail batch: %w", err)
		}
		if len(calls) == MaxBatchCalls {
			return nil, fmt.Errorf("gmail batch: more than %d calls", MaxBatchCalls)
		}
		req, err := readPartRequest(part)
		if err != nil {
			return nil, fmt.Errorf("gmail batch: part %d: %w", len(calls)+1, err)
		}
		calls = append(calls, BatchCall{ContentID: strings.Trim(part.Header.Get("Content-ID"), "<>"), Request: req})
	}
	return calls, nil
}

// readPartRequest reads one part's request. Google's examples write the
// request line with or without the protocol version, and with or without
// a blank line after the headers; all are accepted. A body is ignored
// (the batch calls the functions make are reads).
func readPartRequest(part io.Reader) (*http.Request, error) {
	data, err := io.ReadAll(io.LimitReader(part, 64<<10))
	if err != nil {
		return nil, err
	}
	text := strings.TrimLeft(string(data), "\r\n")
	line, rest, _ := strings.Cut(text, "\n")
	line = strings.TrimRight(line, "\r")
	if f := strings.Fields(line); len(f) == 2 {
		line += " HTTP/1.1"
	}
	return http.ReadRequest(bufio.NewReader(strings.NewReader(line + "\r\n" + rest + "\r\n\r\n")))
}

// BatchCost returns what a batch request costs: the sum of its calls'
// prices, as Google counts it ("a set of n requests batched together
// counts toward your usage limit as n requests, not as one request").
func BatchCost(contentType string, body []byte) (int, error) {
	calls, err := ParseBatch(contentType, body)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, c := range calls {
		_, n := Classify(c.Request.Method, c.Request.URL)
		total += n
	}
	return total, nil
}

// ScopeReadonly is the scope that lets the functions list and read mail.
const ScopeReadonly = "https://www.googleapis.com/auth/gmail.readonly"

// CanList reports whether granted includes a scope that can list mail:
// gmail.readonly, gmail.modify or full access (gmail.metadata cannot search).
func CanList(granted []string) bool {
	for _, s := range granted {
		switch s {
		case ScopeReadonly, "https://www.googleapis.com/auth/gmail.modify", "https://mail.google.com/":
			return true
		}
	}
	return false
}
