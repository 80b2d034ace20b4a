package gmail_test

import (
	"net/url"
	"strings"
	"testing"

	"example.com/gmailoauth/internal/gmail"
)

func TestCanList(t *testing.T) {
	tests := []struct {
		name    string
		granted []string
		want    bool
	}{
		{"readonly", []string{"openid", gmail.ScopeReadonly}, true},
		{"modify", []string{"https://www.googleapis.com/auth/gmail.modify"}, true},
		{"full", []string{"https://mail.google.com/"}, true},
		{"metadata only", []string{"https://www.googleapis.com/auth/gmail.metadata"}, false},
		{"send only", []string{"https://www.googleapis.com/auth/gmail.send"}, false},
		{"prefix look-alike", []string{gmail.ScopeReadonly + ".evil"}, false},
		{"identity only", []string{"openid", "email"}, false},
		{"none", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gmail.CanList(tt.granted); got != tt.want {
				t.Errorf("CanList(%v): got %v, want %v", tt.granted, got, tt.want)
			}
		})
	}
}

// TestClassify: each call the functions make is charged Google's 2026
// price; messages.get and drafts.get cost three times as much for a whole
// message (format full, raw or html, or no format, which means full).
func TestClassify(t *testing.T) {
	for _, c := range []struct {
		method, url, want string
		cost              int
	}{
		{"GET", "/gmail/v1/users/me/messages?maxResults=100", gmail.MethodMessagesList, 5},
		{"GET", "/gmail/v1/users/me/messages/abc?format=metadata&metadataHeaders=Subject", gmail.MethodMessagesGet, 20},
		{"GET", "/gmail/v1/users/me/messages/abc?format=minimal", gmail.MethodMessagesGet, 20},
		{"GET", "/gmail/v1/users/me/messages/abc?format=METADATA", gmail.MethodMessagesGet, 20},
		{"GET", "/gmail/v1/users/me/messages/abc?format=full", gmail.MethodMessagesGet, 60},
		{"GET", "/gmail/v1/users/me/messages/abc?format=raw", gmail.MethodMessagesGet, 60},
		{"GET", "/gmail/v1/users/me/messages/abc", gmail.MethodMessagesGet, 60},
		{"GET", "/gmail/v1/users/me/messages/abc/attachments/x1", gmail.MethodAttachmentsGet, 20},
		{"POST", "/gmail/v1/users/me/messages/abc/trash", gmail.MethodMessagesTrash, 20},
		{"GET", "/gmail/v1/users/me/drafts/d1?format=metadata", gmail.MethodDraftsGet, 20},
		{"GET", "/gmail/v1/users/me/drafts/d1", gmail.MethodDraftsGet, 60},
		{"GET", "/gmail/v1/users/me/history?startHistoryId=1", gmail.MethodHistoryList, 2},
		{"GET", "/gmail/v1/users/me/profile", gmail.MethodGetProfile, 1},
		{"GET", "/gmail/v1/users/me/labels", gmail.MethodLabelsList, 1},
		{"GET", "/gmail/v1/users/me/labels/INBOX", gmail.MethodLabelsGet, 1},
		{"GET", "/gmail/v1/users/me/threads", gmail.MethodThreadsList, 10},
		{"GET", "/gmail/v1/users/me/threads/t1?format=metadata", gmail.MethodThreadsGet, 40},
		{"POST", "/gmail/v1/users/me/watch", gmail.MethodWatch, 100},
		{"POST", "/gmail/v1/users/me/stop", gmail.MethodStop, 50},
		{"POST", "/batch/gmail/v1", gmail.MethodBatch, 0},
		{"POST", "/sandbox/batch/gmail/v1", gmail.MethodBatch, 0},
		{"GET", "/gmail/v1/users/me/settings/imap", gmail.MethodOther, gmail.OtherCost},
		{"DELETE", "/gmail/v1/users/me/messages/abc", gmail.MethodOther, gmail.OtherCost},
		{"GET", "/elsewhere", gmail.MethodOther, gmail.OtherCost},
	} {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatal(err)
		}
		if m, cost := gmail.Classify(c.method, u); m != c.want || cost != c.cost {
			t.Errorf("Classify(%s %s) = %s %d, want %s %d", c.method, c.url, m, cost, c.want, c.cost)
		}
	}
}

func TestMetadataPageCost(t *testing.T) {
	if got := gmail.MetadataPageCost(100); got != 2005 {
		t.Errorf("a page of 100 with metadata costs %d units, want 5 + 100 × 20 = 2005", got)
	}
}

// TestParseBatch: parts with and without the protocol version and the
// blank line are read; more than 100 calls are refused, as Google does.
func TestParseBatch(t *testing.T) {
	body := "--xyz\r\nContent-Type: application/http\r\nContent-ID: <a1>\r\n\r\nGET /gmail/v1/users/me/messages/a?format=metadata\r\n" +
		"--xyz\r\nContent-Type: application/http\r\n\r\nGET /gmail/v1/users/me/profile HTTP/1.1\r\nAccept: application/json\r\n\r\n\r\n--xyz--\r\n"
	calls, err := gmail.ParseBatch("multipart/mixed; boundary=xyz", []byte(body))
	if err != nil || len(calls) != 2 || calls[0].ContentID != "a1" || calls[1].Request.URL.Path != "/gmail/v1/users/me/profile" {
		t.Fatalf("ParseBatch: %+v, %v", calls, err)
	}
	if n, err := gmail.BatchCost("multipart/mixed; boundary=xyz", []byte(body)); n != 21 || err != nil {
		t.Errorf("BatchCost = %d, %v; want 20 + 1", n, err)
	}
	var many strings.Builder
	for range gmail.MaxBatchCalls + 1 {
		many.WriteString("--xyz\r\nContent-Type: application/http\r\n\r\nGET /gmail/v1/users/me/profile\r\n")
	}
	many.WriteString("--xyz--\r\n")
	if _, err := gmail.ParseBatch("multipart/mixed; boundary=xyz", []byte(many.String())); err == nil {
		t.Errorf("a batch of %d calls was accepted", gmail.MaxBatchCalls+1)
	}
	if _, err := gmail.ParseBatch("application/json", []byte(body)); err == nil {
		t.Errorf("a body that is not multipart/mixed was accepted")
	}
}
