package devserver_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/local/sandbox"
)

// TestOneUserCannotHoldListMessages (issue 15, item 13): 20 concurrent
// max_results=500&format=metadata requests of one user used to hold a slot
// each for 26-30 s and end in 503 upstream_unavailable, although the app's
// own limiter had refused them. Now a metadata page is cut to what the
// user's budget can pay at once (294 messages), at most 5 of the user's
// requests run at once, and a request the budget cannot serve within the
// frontend's patience is answered 429 rate_limited with a Retry-After from
// the budget, without a Gmail call and without blaming Gmail; another user
// is served meanwhile.
func TestOneUserCannotHoldListMessages(t *testing.T) {
	// No push: the user's budget is the frontend's alone here (with push, the
	// first sync after the connect spends part of the same minute).
	s := devtest.Start(t, devtest.Options{NoPush: true})
	const email = "greedy@example.com"
	if err := s.Sandbox.SetMailboxSize(email, 1000); err != nil {
		t.Fatal(err)
	}
	session, _ := s.Connect(t, email)
	otherSession, _ := s.Connect(t, "bystander@example.com")
	s.Sandbox.SetGmailFaults(sandbox.GmailFaults{Latency: 20 * time.Millisecond})
	s.Sandbox.ResetStats()

	const n = 20
	answers := make([]*devtest.Response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			answers[i] = s.Get(t, "/list-messages?max_results=500&format=metadata", devtest.Bearer(session))
		})
	}
	other := s.Get(t, "/list-messages?max_results=10&format=metadata", devtest.Bearer(otherSession))
	wg.Wait()

	served, refused := 0, 0
	for i, r := range answers {
		switch {
		case r.Status == http.StatusOK:
			served++
			var page struct {
				Messages []struct{} `json:"messages"`
				Next     string     `json:"next_page_token"`
			}
			r.JSON(t, &page)
			if len(page.Messages) != 294 || page.Next == "" {
				t.Errorf("request %d: a page of %d messages, next %q; want 294 and a next_page_token", i, len(page.Messages), page.Next)
			}
		case r.Status == http.StatusTooManyRequests && r.ErrorCode() == "rate_limited":
			refused++
			ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 60 {
				t.Errorf("request %d: Retry-After %q, want 1-60 s from the user's budget", i, r.Header.Get("Retry-After"))
			}
			if strings.Contains(string(r.Body), "Gmail's") {
				t.Errorf("request %d: %s blames Gmail for the app's own limit", i, r.Body)
			}
		default:
			t.Errorf("request %d: %d %s, want 200 or 429 rate_limited", i, r.Status, r.Body)
		}
	}
	if served < 1 || refused < n-5 {
		t.Errorf("%d served, %d refused; want at least 1 served and the rest (beyond a minute's budget) refused", served, refused)
	}
	if other.Status != http.StatusOK {
		t.Errorf("another user during the burst: %d %s, want 200", other.Status, other.Body)
	}
	st := s.Sandbox.Stats()
	if u := st.QuotaUnitsByUser[email]; u > 6000 {
		t.Errorf("Gmail was asked for %d units of the user, more than a minute's 6,000: refused requests were sent", u)
	}
	if st.RateLimited != 0 {
		t.Errorf("Gmail answered %d rate-limit errors: the app should have refused first", st.RateLimited)
	}
	if strings.Contains(s.Logs.String(), `"code":"upstream_unavailable"`) {
		t.Errorf("a refusal of the app's own limiter was logged as upstream_unavailable")
	}
}
