package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// batchAnswer is one part of a batch's answer.
type batchAnswer struct {
	contentID string
	status    int
	body      string
}

// sendBatch posts calls (request lines) as one batch with tok.
func (h *harness) sendBatch(t *testing.T, tok *oauth2.Token, calls []string) (int, []batchAnswer) {
	t.Helper()
	var b strings.Builder
	for i, c := range calls {
		fmt.Fprintf(&b, "--B\r\nContent-Type: application/http\r\nContent-ID: <item%d>\r\n\r\n%s\r\n\r\n", i, c)
	}
	b.WriteString("--B--\r\n")
	req, _ := http.NewRequest("POST", h.srv.URL+"/batch/gmail/v1", strings.NewReader(b.String()))
	req.Header.Set("Content-Type", "multipart/mixed; boundary=B")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return resp.StatusCode, nil
	}
	_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("answer's Content-Type: %v", err)
	}
	var out []batchAnswer
	mr := multipart.NewReader(resp.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		r, err := http.ReadResponse(bufio.NewReader(p), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		out = append(out, batchAnswer{p.Header.Get("Content-ID"), r.StatusCode, string(body)})
	}
	return resp.StatusCode, out
}

// TestBatch: a batch runs each call as if sent alone, answers them in
// order, and costs what its calls cost, so the user's limit refuses the
// calls beyond it one by one.
func TestBatch(t *testing.T) {
	h := newHarness(t)
	tok := h.connect(t, "batch@example.com")
	svc := h.gmail(t, tok)
	list, err := svc.Users.Messages.List("me").MaxResults(4).Do()
	if err != nil {
		t.Fatal(err)
	}
	h.sb.ResetStats()
	calls := []string{
		"GET /gmail/v1/users/me/messages/" + list.Messages[0].Id + "?format=metadata&metadataHeaders=Subject",
		"GET /gmail/v1/users/me/profile",
		"GET /gmail/v1/users/me/messages/ffffffffffffffff?format=metadata",
	}
	status, got := h.sendBatch(t, tok, calls)
	if status != 200 || len(got) != 3 {
		t.Fatalf("batch: %d with %d parts, want 200 with 3", status, len(got))
	}
	for i, want := range []struct {
		status int
		has    string
	}{{200, `"Subject"`}, {200, `"emailAddress":"batch@example.com"`}, {404, "notFound"}} {
		if got[i].contentID != fmt.Sprintf("<response-item%d>", i) || got[i].status != want.status || !strings.Contains(got[i].body, want.has) {
			t.Errorf("part %d = %+v, want <response-item%d> %d with %s", i, got[i], i, want.status, want.has)
		}
	}
	st := h.sb.Stats()
	if st.QuotaUnits != 20+1+20 || st.GmailCalls["batch"] != 1 || st.GmailCalls["messages.get"] != 2 {
		t.Errorf("stats: %d units, calls %v; want 41 units, 1 batch of 2 messages.get and a profile", st.QuotaUnits, st.GmailCalls)
	}

	h.sb.SetQuotaLimits(QuotaLimits{UserPerMinute: 60})
	h.clk.Advance(2 * time.Minute)
	four := make([]string, 4)
	for i := range four {
		four[i] = "GET /gmail/v1/users/me/messages/" + list.Messages[i].Id + "?format=metadata"
	}
	_, got = h.sendBatch(t, tok, four)
	if len(got) != 4 || got[0].status != 200 || got[2].status != 200 || got[3].status != 429 || !strings.Contains(got[3].body, "userRateLimitExceeded") {
		t.Errorf("a batch of 4 × 20 units with 60 a minute: %+v, want the 4th refused with 429", got)
	}

	many := make([]string, 101)
	for i := range many {
		many[i] = "GET /gmail/v1/users/me/profile"
	}
	if status, _ := h.sendBatch(t, tok, many); status != 400 {
		t.Errorf("a batch of 101 calls: %d, want 400", status)
	}
}

// TestFields: Google's partial response keeps only the selected fields
// (paths and sub-selections) and costs the same.
func TestFields(t *testing.T) {
	h := newHarness(t)
	tok := h.connect(t, "fields@example.com")
	svc := h.gmail(t, tok)
	list, err := svc.Users.Messages.List("me").MaxResults(2).Fields("messages(id)", "nextPageToken").Do()
	if err != nil || len(list.Messages) != 2 || list.Messages[0].ThreadId != "" || list.Messages[0].Id == "" || list.NextPageToken == "" ||
		list.ResultSizeEstimate != 0 {
		t.Fatalf("messages(id),nextPageToken: %+v, %v", list, err)
	}
	h.sb.ResetStats()
	m, err := svc.Users.Messages.Get("me", list.Messages[0].Id).Format("metadata").MetadataHeaders("Subject").
		Fields("id", "labelIds", "payload/headers").Do()
	if err != nil || m.Id == "" || len(m.LabelIds) == 0 || m.Snippet != "" || m.ThreadId != "" || m.Payload == nil ||
		len(m.Payload.Headers) != 1 || m.Payload.Headers[0].Name != "Subject" || m.Payload.MimeType != "" {
		t.Fatalf("id,labelIds,payload/headers: %+v, %v", m, err)
	}
	if st := h.sb.Stats(); st.QuotaUnits != 20 {
		t.Errorf("a partial messages.get cost %d units, want 20", st.QuotaUnits)
	}
	if _, err := svc.Users.Messages.Get("me", list.Messages[0].Id).Fields("id(").Do(); googleErr(t, err).Code != 400 {
		t.Errorf("a malformed fields: want 400")
	}
}
