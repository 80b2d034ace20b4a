package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// call sends a JSON admin request and decodes the JSON answer into out (if not nil).
func call(t *testing.T, method, u, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, u, b, err)
		}
	}
	return resp.StatusCode
}

func TestAdminHTTP(t *testing.T) {
	h := newHarness(t)
	const me = "admin@example.com"
	a := h.srv.URL + "/admin"
	u := a + "/users/" + me

	if code := call(t, "PUT", u+"/knobs", `{"drop_scopes":["gmail.readonly"],"access_token_ttl":"90s","withhold_refresh_token":true}`, nil); code != 200 {
		t.Fatalf("PUT knobs: %d", code)
	}
	want := Knobs{DropScopes: []string{"gmail.readonly"}, AccessTokenTTL: 90 * time.Second, WithholdRefreshToken: true}
	if diff := cmp.Diff(want, h.sb.UserKnobs(me)); diff != "" {
		t.Errorf("knobs (-want +got):\n%s", diff)
	}
	var kj map[string]any
	call(t, "GET", u+"/knobs", "", &kj)
	if kj["access_token_ttl"] != "1m30s" {
		t.Errorf("GET knobs = %v", kj)
	}
	if code := call(t, "PUT", u+"/knobs", `{"deny":true}`, nil); code != 400 {
		t.Errorf("unknown knob field: %d, want 400", code)
	}
	call(t, "PUT", u+"/knobs", `{}`, nil)

	tok := h.connect(t, me)
	var info UserInfo
	call(t, "GET", u, "", &info)
	if info.Sub != SubFor(me) || !info.GrantActive || info.MailboxSize != 260 || info.HistoryID == 0 {
		t.Errorf("user info = %+v", info)
	}
	start := info.HistoryID

	var added struct{ IDs []string }
	if code := call(t, "POST", u+"/messages", `{"count":2}`, &added); code != 200 || len(added.IDs) != 2 {
		t.Fatalf("add messages: %d %v", code, added)
	}
	if code := call(t, "POST", u+"/messages/"+added.IDs[0]+"/modify", `{"add_label_ids":["STARRED"]}`, nil); code != 200 {
		t.Errorf("modify: %d", code)
	}
	if code := call(t, "POST", u+"/messages/delete", `{"ids":["`+added.IDs[1]+`"]}`, nil); code != 200 {
		t.Errorf("delete: %d", code)
	}
	if code := call(t, "POST", u+"/messages/delete", `{"ids":["0000000000000000"]}`, nil); code != 404 {
		t.Errorf("delete unknown: %d, want 404", code)
	}
	svc := h.gmail(t, tok)
	r, err := svc.Users.History.List("me").StartHistoryId(start).Do()
	if err != nil || len(r.History) != 4 {
		t.Errorf("history after admin changes: %d records, %v", len(r.History), err)
	}
	call(t, "POST", u+"/expire-history", "", nil)
	if _, err := svc.Users.History.List("me").StartHistoryId(start).Do(); googleErr(t, err).Code != 404 {
		t.Errorf("after expire-history: want 404")
	}

	call(t, "PUT", a+"/gmail-faults", `{"fail_next":1,"latency":5}`, nil)
	if _, err := svc.Users.GetProfile("me").Do(); googleErr(t, err).Code != 503 {
		t.Errorf("gmail-faults fail_next: want 503")
	}
	var gf map[string]any
	call(t, "GET", a+"/gmail-faults", "", &gf)
	if gf["latency"] != "5ms" || gf["fail_next"] != 0.0 {
		t.Errorf("GET gmail-faults = %v", gf)
	}
	call(t, "PUT", a+"/gmail-faults", `{}`, nil)
	// The exchange above fixed the oauth2 client's auth style, so a refresh is a single attempt.
	call(t, "PUT", a+"/token-faults", `{"fail_next":1}`, nil)
	tok.Expiry = time.Now().Add(-time.Hour)
	if _, err := h.oauth.TokenSource(h.ctx, tok).Token(); retrieveErr(t, err).Response.StatusCode != 503 {
		t.Errorf("token-faults: want 503")
	}

	var idt struct {
		IDToken string `json:"id_token"`
	}
	if code := call(t, "POST", a+"/id-token", `{"audience":"https://fn.example/list","email":"sched@p.iam.gserviceaccount.com"}`, &idt); code != 200 {
		t.Fatalf("id-token: %d", code)
	}
	if _, err := h.verifier(t, "https://fn.example/list").Verify(h.ctx, idt.IDToken); err != nil {
		t.Errorf("admin id-token: %v", err)
	}
	if code := call(t, "POST", a+"/id-token", `{"email":"x@y"}`, nil); code != 400 {
		t.Errorf("id-token without audience: %d, want 400", code)
	}

	var q map[string]any
	call(t, "GET", a+"/quota", "", &q)
	if q["user_per_minute"] != 6000.0 || q["project_per_minute"] != 1_200_000.0 || q["window"] != "1m0s" {
		t.Errorf("GET quota = %v, want Gmail's 2026 limits", q)
	}
	call(t, "PUT", a+"/quota", `{"user_per_minute":1,"project_per_minute":-1}`, &q)
	if q["user_per_minute"] != 1.0 || q["project_per_minute"] != -1.0 {
		t.Errorf("PUT quota answered %v", q)
	}
	if _, err := svc.Users.History.List("me").StartHistoryId(start).Do(); googleErr(t, err).Code != 429 {
		t.Errorf("user_per_minute 1: want 429 for a 2-unit call")
	}
	if code := call(t, "PUT", a+"/quota", `{"window":"-1s"}`, nil); code != 400 {
		t.Errorf("negative window: %d, want 400", code)
	}
	call(t, "PUT", a+"/quota", `{}`, nil)

	var st Stats
	call(t, "GET", a+"/stats", "", &st)
	if st.GmailCalls["history.list"] != 3 || st.TokenCalls["authorization_code"] != 1 || st.TokenFailures != 1 || st.GmailFailures != 1 ||
		st.RateLimited != 1 || st.QuotaUnitsByMethod["history.list"] != 2*2 || st.QuotaUnitsByUser[me] == 0 {
		t.Errorf("stats = %+v", st)
	}
	call(t, "POST", a+"/stats/reset", "", nil)
	if st := h.sb.Stats(); len(st.GmailCalls) != 0 || st.QuotaUnits != 0 {
		t.Errorf("stats after reset = %+v", st)
	}

	var rv map[string]bool
	call(t, "POST", u+"/revoke", "", &rv)
	if !rv["was_active"] {
		t.Errorf("revoke = %v", rv)
	}
	if code := call(t, "PUT", a+"/users/fresh@example.com/mailbox-size", `{"size":7}`, nil); code != 200 {
		t.Errorf("mailbox-size: %d", code)
	}
	if code := call(t, "PUT", u+"/mailbox-size", `{"size":7}`, nil); code != 409 {
		t.Errorf("mailbox-size after use: %d, want 409", code)
	}
	call(t, "PUT", a+"/mailbox-size", `{"size":3}`, nil)
	if got := h.sb.UserInfo("later@example.com").MailboxSize; got != 3 {
		t.Errorf("default mailbox size = %d, want 3", got)
	}
	if code := call(t, "GET", a+"/nope", "", nil); code != 404 {
		t.Errorf("unknown admin path: %d", code)
	}
	resp, err := http.Get(a)
	if err != nil {
		t.Fatal(err)
	}
	help, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(help), "/admin/users/{email}/knobs") {
		t.Errorf("GET /admin = %q", help)
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		q    string
		want []clause
		st   bool
	}{
		{`from:Bob subject:"Q3 plan" hello`, []clause{{{op: "from", val: "bob"}}, {{op: "subject", val: "q3 plan"}}, {{val: "hello"}}}, false},
		{`-in:inbox "exact phrase"`, []clause{{{neg: true, op: "in", val: "inbox"}}, {{val: "exact phrase"}}}, false},
		{`is:starred OR label:receipts in:spam`, []clause{{{op: "is", val: "starred"}, {op: "label", val: "receipts"}}, {{op: "in", val: "spam"}}}, true},
		{`weird:op x:`, []clause{{{val: "weird:op"}}, {{val: "x:"}}}, false},
		{`  `, nil, false},
	}
	for _, tc := range tests {
		got := parseQuery(tc.q)
		if diff := cmp.Diff(tc.want, got.clauses, cmp.AllowUnexported(term{})); diff != "" {
			t.Errorf("parseQuery(%q) (-want +got):\n%s", tc.q, diff)
		}
		if got.mentionsSpamTrash != tc.st {
			t.Errorf("parseQuery(%q).mentionsSpamTrash = %v", tc.q, got.mentionsSpamTrash)
		}
	}
}

func TestMessageIDs(t *testing.T) {
	for _, ref := range []int{0, 1, 259, 9999, -1, -2, -500} {
		id := idOf(ref)
		got, ok := refOf(id)
		if !ok || got != ref || len(id) != 16 {
			t.Errorf("refOf(idOf(%d)=%q) = %d, %v", ref, id, got, ok)
		}
	}
	for _, id := range []string{"", "xyz", "0000000000000000", "ffffffffffffffff", idOf(3)[:15] + "0"} {
		if ref, ok := refOf(id); ok && idOf(ref) != id {
			t.Errorf("refOf(%q) accepted", id)
		}
	}
}
