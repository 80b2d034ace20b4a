package mailbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/local/testenv"
	"example.com/gmailoauth/internal/mailbox"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/fsstore/fstest"
	"example.com/gmailoauth/internal/store/memstore"
)

// The sandbox's labels: every label a message can carry there.
var sandboxLabels = []string{
	"CHAT", "SENT", "INBOX", "IMPORTANT", "TRASH", "DRAFT", "SPAM",
	"CATEGORY_FORUMS", "CATEGORY_UPDATES", "CATEGORY_PERSONAL", "CATEGORY_PROMOTIONS",
	"CATEGORY_SOCIAL", "STARRED", "UNREAD", "Label_1",
}

// start is the clock's start: the sandbox seeds mailboxes back from it.
var start = time.Date(2026, 11, 20, 9, 30, 15, 123_456_789, time.UTC)

// fixture is one connected user over the sandbox and the functions' wiring.
type fixture struct {
	env     *testenv.Env
	clock   *testenv.Clock
	reads   *testenv.CountingStore
	email   string
	uid     string
	session string
}

func stores(t *testing.T) map[string]func(t *testing.T) store.Store {
	return map[string]func(t *testing.T) store.Store{
		"memstore":  func(*testing.T) store.Store { return memstore.New() },
		"firestore": func(t *testing.T) store.Store { return fstest.NewStore(t) },
	}
}

func newFixture(t *testing.T, st store.Store, size int, env map[string]string) *fixture {
	t.Helper()
	if st == nil {
		st = memstore.New()
	}
	clock := testenv.NewClock(start)
	cs := &testenv.CountingStore{Store: st}
	// The clock stands still, so the client's quota buckets would never
	// refill: no quota here.
	cfg := map[string]string{"GMAIL_QUOTA_USER_PER_MIN": strconv.Itoa(testenv.Unlimited), "GMAIL_QUOTA_PROJECT_PER_MIN": strconv.Itoa(testenv.Unlimited)}
	maps.Copy(cfg, env)
	e := testenv.New(t, testenv.Options{Store: cs, MailboxSize: size, Now: clock.Now, Env: cfg})
	e.Sandbox.SetQuotaLimits(sandbox.QuotaLimits{UserPerMinute: -1, ProjectPerMinute: -1}) // nor in the sandbox
	f := &fixture{env: e, clock: clock, reads: cs, email: "alice@example.com"}
	f.uid, f.session = e.Connect(t, f.email)
	return f
}

// list answers one request through the read path, failing the test on an error.
func (f *fixture) list(t *testing.T, req mailbox.ListRequest) *mailbox.ListResult {
	t.Helper()
	res, err := f.env.Deps.Mailbox.List(context.Background(), f.uid, req)
	if err != nil {
		t.Fatalf("List(%+v): %v", req, err)
	}
	return res
}

// page is one answer of a listing and the Gmail calls it made.
type page struct {
	res   *mailbox.ListResult
	calls int
	took  time.Duration // benchmarks only
}

// listAll pages req to the end, following next_page_token.
func (f *fixture) listAll(t *testing.T, req mailbox.ListRequest) ([]mailbox.Message, []page) {
	t.Helper()
	var msgs []mailbox.Message
	var pages []page
	req.PageToken = ""
	for {
		before := f.env.GmailCalls()
		res := f.list(t, req)
		pages = append(pages, page{res: res, calls: f.env.GmailCalls() - before})
		msgs = append(msgs, res.Messages...)
		if req.PageToken = res.NextPageToken; req.PageToken == "" {
			return msgs, pages
		}
		if len(pages) > 2000 {
			t.Fatalf("listing %+v does not end", req)
		}
	}
}

// checkPages checks what every listing must show: mirror pages make no
// Gmail call and say when the mirror was synced; Gmail pages say gmail;
// once a listing has gone to Gmail it stays there.
func checkPages(t *testing.T, what string, pages []page) (mirror, gmail int) {
	t.Helper()
	for i, p := range pages {
		switch p.res.Source {
		case mailbox.SourceMirror:
			mirror++
			if p.calls != 0 {
				t.Errorf("%s: page %d from the mirror made %d Gmail calls, want 0", what, i+1, p.calls)
			}
			if p.res.SyncedAt.IsZero() {
				t.Errorf("%s: page %d from the mirror has no synced_at", what, i+1)
			}
			if gmail > 0 {
				t.Errorf("%s: page %d from the mirror after a page from Gmail", what, i+1)
			}
		case mailbox.SourceGmail:
			gmail++
			if !p.res.SyncedAt.IsZero() {
				t.Errorf("%s: page %d from Gmail has synced_at", what, i+1)
			}
		default:
			t.Errorf("%s: page %d has source %q", what, i+1, p.res.Source)
		}
	}
	return mirror, gmail
}

// liveIDs lists every message id (spam and trash included) from Gmail.
func (f *fixture) liveIDs(t *testing.T) []string {
	t.Helper()
	msgs, _ := f.listAll(t, mailbox.ListRequest{MaxResults: 500, Format: mailbox.FormatIDs, Source: mailbox.SourceGmail, IncludeSpamTrash: true})
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	return ids
}

// change applies a random round of changes to the sandbox mailbox: new
// mail (several at one instant, so internal dates tie), deletions and
// label changes, anywhere in the mailbox (inside the mirror's window or
// older).
func (f *fixture) change(t *testing.T, r *rand.Rand) string {
	t.Helper()
	sb := f.env.Sandbox
	var did []string
	for range r.IntN(3) + 1 {
		if r.IntN(3) > 0 {
			f.clock.Advance(time.Duration(r.IntN(7200)) * time.Second)
		} else {
			f.clock.Advance(time.Duration(r.IntN(900)) * time.Microsecond) // often the same millisecond
		}
		n := r.IntN(4)
		sb.AddMessages(f.email, n)
		did = append(did, fmt.Sprintf("add %d", n))
	}
	live := f.liveIDs(t)
	for range r.IntN(4) {
		id := live[r.IntN(len(live))]
		if err := sb.DeleteMessages(f.email, id); err == nil {
			did = append(did, "delete "+id)
		}
	}
	pool := []string{"INBOX", "UNREAD", "STARRED", "IMPORTANT", "SPAM", "TRASH", "Label_1", "CATEGORY_SOCIAL", "CHAT"}
	for range r.IntN(8) + 3 {
		id := live[r.IntN(len(live))]
		var add, remove []string
		for _, l := range pool {
			switch r.IntN(6) {
			case 0:
				add = append(add, l)
			case 1:
				remove = append(remove, l)
			}
		}
		if err := sb.ModifyLabels(f.email, id, add, remove); err == nil {
			did = append(did, fmt.Sprintf("relabel %s +%v -%v", id, add, remove))
		}
	}
	return strings.Join(did, "; ")
}

// listings are the filters the comparison runs: no label, every label, and
// label sets (Gmail's AND), with and without spam and trash, in both
// formats.
func listings() []mailbox.ListRequest {
	labelSets := [][]string{nil, {"INBOX", "UNREAD"}, {"STARRED", "IMPORTANT"}, {"UNREAD", "Label_1", "INBOX"}, {"TRASH", "CATEGORY_UPDATES"}}
	for _, l := range sandboxLabels {
		labelSets = append(labelSets, []string{l})
	}
	var out []mailbox.ListRequest
	for _, labels := range labelSets {
		for _, spam := range []bool{false, true} {
			for _, format := range []string{mailbox.FormatIDs, mailbox.FormatMetadata} {
				out = append(out, mailbox.ListRequest{LabelIDs: labels, IncludeSpamTrash: spam, Format: format, MaxResults: 37})
			}
		}
	}
	return out
}

// compare pages every listing with auto and live from Gmail and wants the
// same messages in the same order.
func (f *fixture) compare(t *testing.T, round string) (mirrorPages int) {
	t.Helper()
	for _, req := range listings() {
		what := fmt.Sprintf("%s: labels %v include_spam_trash=%v format=%s", round, req.LabelIDs, req.IncludeSpamTrash, req.Format)
		req.Source = mailbox.SourceAuto
		got, pages := f.listAll(t, req)
		m, _ := checkPages(t, what, pages)
		mirrorPages += m
		req.Source = mailbox.SourceGmail
		want, _ := f.listAll(t, req)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%s: auto listing differs from Gmail's (-gmail +auto):\n%s", what, diff)
		}
	}
	return mirrorPages
}

// TestMirrorAnswersAsGmail is the mirror's correctness test: a seeded
// random sequence of changes to a sandbox mailbox, each round followed by
// a sync, after which every listing (no label, every label, label sets;
// include_spam_trash both ways; both formats) paged to the end with
// source=auto equals Gmail's own listing, id for id and field for field,
// across the seam to Gmail's older messages.
func TestMirrorAnswersAsGmail(t *testing.T) {
	seeds := map[string][]uint64{"memstore": {1, 2, 3}, "firestore": {4}}
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for _, seed := range seeds[name] {
				t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
					f := newFixture(t, newStore(t), 0, nil)
					r := rand.New(rand.NewPCG(seed, 11))
					f.env.Sync(t, f.uid)
					total := f.compare(t, "after the first sync")
					for round := 1; round <= 3; round++ {
						did := f.change(t, r)
						f.env.Sync(t, f.uid)
						total += f.compare(t, fmt.Sprintf("round %d (%s)", round, did))
					}
					if total == 0 {
						t.Fatal("no page came from the mirror: the test compared Gmail with itself")
					}
					t.Logf("seed %d: %d pages from the mirror", seed, total)
				})
			}
		})
	}
}

// TestSeam pages across the mirror's horizon: the mirror's pages first
// (the last one may be short), then Gmail's older messages, with nothing
// lost or repeated, for page sizes that end a page just before, at and
// after the horizon.
func TestSeam(t *testing.T) {
	f := newFixture(t, nil, 0, nil) // SYNC_QUERY is newer_than:30d: a third of the 260 messages
	f.env.Sync(t, f.uid)
	mirrored, err := f.env.Store.ListMirror(context.Background(), f.uid, store.MirrorQuery{ExcludeSpamTrash: true})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := f.env.Store.GetMailbox(context.Background(), f.uid)
	if err != nil {
		t.Fatal(err)
	}
	if mb.MirrorHorizon%1000 == 0 {
		t.Fatalf("horizon %d is a whole second: the test would not cover the rounding at the seam", mb.MirrorHorizon)
	}
	// The oldest mirrored message lies in the seam's last second: Gmail
	// serves it (before:<seam>), not the mirror.
	n := len(mirrored) - 1
	live := f.liveIDs(t)
	for _, size := range []int{n - 1, n, n + 1, 7, 1, 500} {
		req := mailbox.ListRequest{MaxResults: int64(size), Format: mailbox.FormatIDs, Source: mailbox.SourceAuto}
		got, pages := f.listAll(t, req)
		what := fmt.Sprintf("pages of %d", size)
		m, g := checkPages(t, what, pages)
		if m == 0 || g == 0 {
			t.Errorf("%s: %d pages from the mirror and %d from Gmail, want both", what, m, g)
		}
		req.Source = mailbox.SourceGmail
		want, _ := f.listAll(t, req)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%s: auto differs from Gmail (-gmail +auto):\n%s", what, diff)
		}
		var fromMirror []string
		for _, p := range pages {
			if p.res.Source == mailbox.SourceMirror {
				for _, msg := range p.res.Messages {
					fromMirror = append(fromMirror, msg.ID)
				}
			}
		}
		if len(fromMirror) != n {
			t.Errorf("%s: %d messages from the mirror, want %d (all but the one in the seam's second)", what, len(fromMirror), n)
		}
	}
	if len(live) <= n {
		t.Fatalf("the mailbox has nothing past the horizon")
	}

	// A label only older messages carry: the first page comes from Gmail at once.
	old := live[len(live)-1]
	if err := f.env.Sandbox.ModifyLabels(f.email, old, []string{"CHAT"}, nil); err != nil {
		t.Fatal(err)
	}
	f.env.Sync(t, f.uid)
	res := f.list(t, mailbox.ListRequest{LabelIDs: []string{"CHAT"}, MaxResults: 10, Format: mailbox.FormatIDs, Source: mailbox.SourceAuto})
	if res.Source != mailbox.SourceGmail || len(res.Messages) != 1 || res.Messages[0].ID != old || res.NextPageToken != "" {
		t.Errorf("label on an old message only: got %+v, want its one message from Gmail", res)
	}
}

// TestMirrorPageCost: a page from the mirror makes no Gmail call, and its
// store reads are the page and a few more (credential, checkpoint, one
// document to know whether more follow, one count), not the mailbox;
// with several labels they stay within the scan budget. On both stores.
func TestMirrorPageCost(t *testing.T) {
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, newStore(t), 1000, map[string]string{"SYNC_QUERY": "newer_than:2y"})
			f.env.Sync(t, f.uid)
			for _, req := range []mailbox.ListRequest{
				{MaxResults: 100, Format: mailbox.FormatMetadata},
				{MaxResults: 100, Format: mailbox.FormatIDs, LabelIDs: []string{"INBOX"}},
				{MaxResults: 50, Format: mailbox.FormatMetadata, IncludeSpamTrash: true},
				{MaxResults: 100, Format: mailbox.FormatMetadata, LabelIDs: []string{"INBOX", "UNREAD"}},
			} {
				req.Source = mailbox.SourceAuto
				for i := range 3 { // the first page and two more
					calls, reads := f.env.GmailCalls(), f.reads.Reads()
					res := f.list(t, req)
					calls, reads = f.env.GmailCalls()-calls, f.reads.Reads()-reads
					what := fmt.Sprintf("labels %v page %d", req.LabelIDs, i+1)
					if res.Source != mailbox.SourceMirror || calls != 0 {
						t.Errorf("%s: source %s, %d Gmail calls; want the mirror and none", what, res.Source, calls)
					}
					bound := req.MaxResults + 4 // credential, checkpoint, the page + 1, the count
					if len(req.LabelIDs) > 1 {
						bound = max(4*(req.MaxResults+1), 200) + 3
					}
					if reads > bound || len(res.Messages) == 0 {
						t.Errorf("%s: %d messages for %d store reads, want at most %d reads", what, len(res.Messages), reads, bound)
					}
					t.Logf("%s: %d messages, %d reads", what, len(res.Messages), reads)
					req.PageToken = res.NextPageToken
				}
			}
		})
	}
}

// get sends GET /list-messages?query as the user, through the handlers.
func (f *fixture) get(t *testing.T, session, query string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/list-messages?"+query, nil)
	r.Header.Set("Authorization", "Bearer "+session)
	return f.env.Serve(r)
}

func nextToken(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("got %d %s, want 200", w.Code, w.Body)
	}
	var p struct {
		Next   string `json:"next_page_token"`
		Source string `json:"source"`
	}
	if err := jsonDecode(w, &p); err != nil || p.Next == "" {
		t.Fatalf("answer %s: want a next_page_token (%v)", w.Body, err)
	}
	return p.Next
}

func wantCode(t *testing.T, what string, w *httptest.ResponseRecorder, status int, code apperr.Code) {
	t.Helper()
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = jsonDecode(w, &e)
	if w.Code != status || e.Error.Code != string(code) {
		t.Errorf("%s: got %d %s, want %d %s", what, w.Code, w.Body, status, code)
	}
}

// TestPageTokens: page tokens of both kinds are bound to the user and to
// the listing's filters, and cannot be forged or altered; max_results and
// format may change between pages; tokens survive a key rotation.
func TestPageTokens(t *testing.T) {
	f := newFixture(t, nil, 0, nil)
	_, bob := f.env.Connect(t, "bob@example.com")
	f.env.Sync(t, f.uid)

	mirrorTok := nextToken(t, f.get(t, f.session, "max_results=5"))
	gmailTok := nextToken(t, f.get(t, f.session, "max_results=5&source=gmail"))
	seamTok := ""
	for tok := mirrorTok; ; {
		w := f.get(t, f.session, "max_results=50&page_token="+url.QueryEscape(tok))
		if strings.Contains(w.Body.String(), `"source":"gmail"`) {
			break
		}
		tok = nextToken(t, w)
		seamTok = tok
	}
	sandboxTok := nextToken(t, f.get(t, f.session, "max_results=5&source=gmail")) // ours, wrapping Gmail's
	raw := []byte(mirrorTok)
	raw[len(raw)/2] ^= 0x01

	for _, tc := range []struct {
		what, session, query string
	}{
		{"another user's mirror token", bob, "max_results=5&page_token=" + mirrorTok},
		{"another user's Gmail token", bob, "max_results=5&source=gmail&page_token=" + gmailTok},
		{"another user's seam token", bob, "page_token=" + seamTok},
		{"an altered token", f.session, "page_token=" + url.QueryEscape(string(raw))},
		{"a made-up token", f.session, "page_token=bm90IGEgdG9rZW4gYXQgYWxs"},
		{"Gmail's own token format", f.session, "page_token=c2J4OjEw"},
		{"other labels", f.session, "label_ids=INBOX&page_token=" + mirrorTok},
		{"spam and trash", f.session, "include_spam_trash=true&page_token=" + mirrorTok},
		{"a query", f.session, "q=is%3Aunread&page_token=" + mirrorTok},
		{"a mirror token for Gmail", f.session, "source=gmail&page_token=" + mirrorTok},
		{"a Gmail token for the mirror", f.session, "source=mirror&page_token=" + gmailTok},
		{"a Gmail token for a query", f.session, "q=is%3Aunread&page_token=" + sandboxTok},
	} {
		wantCode(t, tc.what, f.get(t, tc.session, tc.query), http.StatusBadRequest, apperr.InvalidPageToken)
	}

	for _, q := range []string{
		"max_results=20&page_token=" + mirrorTok,
		"format=metadata&page_token=" + mirrorTok,
		"source=mirror&page_token=" + mirrorTok,
		"page_token=" + gmailTok, // a Gmail token continues under auto
		"label_ids=UNREAD&label_ids=INBOX&page_token=" + nextToken(t, f.get(t, f.session, "label_ids=INBOX&label_ids=UNREAD&max_results=3")),
	} {
		if w := f.get(t, f.session, q); w.Code != http.StatusOK {
			t.Errorf("%s: got %d %s, want 200", q, w.Code, w.Body)
		}
	}

	// After a key rotation a new instance still accepts the tokens issued
	// before it.
	f.env.RotateKeys(t, "next")
	d := f.env.Instance(t, nil)
	req, err := mailbox.ParseListRequest(url.Values{"page_token": {mirrorTok}, "max_results": {"5"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Mailbox.List(context.Background(), f.uid, req); err != nil {
		t.Errorf("a token issued before the rotation: %v", err)
	}
}

// TestSourceMirror: before the first sync, source=mirror is 409
// mirror_not_ready and auto lists from Gmail; after it, source=mirror
// never calls Gmail and ends at the mirror's horizon.
func TestSourceMirror(t *testing.T) {
	f := newFixture(t, nil, 0, nil)
	wantCode(t, "source=mirror before the first sync", f.get(t, f.session, "source=mirror"), http.StatusConflict, apperr.MirrorNotReady)
	if res := f.list(t, mailbox.ListRequest{MaxResults: 10, Format: mailbox.FormatIDs, Source: mailbox.SourceAuto}); res.Source != mailbox.SourceGmail {
		t.Errorf("auto before the first sync: source %s, want gmail", res.Source)
	}
	f.env.Sync(t, f.uid)
	calls := f.env.GmailCalls()
	got, pages := f.listAll(t, mailbox.ListRequest{MaxResults: 20, Format: mailbox.FormatIDs, Source: mailbox.SourceMirror})
	if m, g := checkPages(t, "source=mirror", pages); g != 0 || m == 0 {
		t.Errorf("source=mirror: %d pages from Gmail", g)
	}
	if n := f.env.GmailCalls() - calls; n != 0 {
		t.Errorf("source=mirror made %d Gmail calls", n)
	}
	live, _ := f.listAll(t, mailbox.ListRequest{MaxResults: 500, Format: mailbox.FormatIDs, Source: mailbox.SourceGmail})
	if len(got) == 0 || len(got) >= len(live) || !cmp.Equal(got, live[:len(got)]) {
		t.Errorf("source=mirror listed %d messages; want the first part of Gmail's %d, in order", len(got), len(live))
	}
}

// TestMirrorRefusesARevokedGrant: once the grant is known to be revoked (a
// sync found out) or gone (disconnect), the mirror answers as Gmail would:
// reauthorization_required; a session of an earlier grant is refused once
// the user has connected again.
func TestMirrorRefusesARevokedGrant(t *testing.T) {
	f := newFixture(t, nil, 0, nil)
	f.env.Sync(t, f.uid)
	if w := f.get(t, f.session, "max_results=3"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"source":"mirror"`) {
		t.Fatalf("after the sync: got %d %s, want a page from the mirror", w.Code, w.Body)
	}
	f.env.Sandbox.Revoke(f.email)
	f.clock.Advance(2 * time.Hour) // the access token expires: the sync must refresh, and learns of the revocation
	if _, err := f.env.Deps.Syncer.SyncUser(context.Background(), f.uid); !apperr.Is(err, apperr.ReauthorizationRequired) {
		t.Fatalf("sync after the revocation: %v, want reauthorization_required", err)
	}
	// The session has expired too with the clock moved: check the read path itself.
	_, err := f.env.Deps.Mailbox.List(context.Background(), f.uid, mailbox.ListRequest{MaxResults: 3, Format: mailbox.FormatIDs, Source: mailbox.SourceMirror})
	if !apperr.Is(err, apperr.ReauthorizationRequired) {
		t.Errorf("mirror listing of a revoked grant: %v, want reauthorization_required", err)
	}
	cred, err := f.env.Store.GetCredential(context.Background(), f.uid)
	if err != nil {
		t.Fatal(err)
	}
	oldGrant := cred.Grant
	if _, err := f.env.Deps.Flow.Revoke(context.Background(), f.uid, oldGrant); err != nil {
		t.Fatal(err)
	}
	auto := mailbox.ListRequest{MaxResults: 3, Format: mailbox.FormatIDs, Source: mailbox.SourceAuto}
	if _, err = f.env.Deps.Mailbox.List(context.Background(), f.uid, auto); !apperr.Is(err, apperr.ReauthorizationRequired) {
		t.Errorf("listing after disconnect: %v, want reauthorization_required", err)
	}

	// The user connects again and is synced: a session of the earlier
	// grant still reads nothing, the new one reads the new mirror.
	f.env.Sandbox.SetUserKnobs(f.email, sandbox.Knobs{})
	f.env.Connect(t, f.email)
	f.env.Sync(t, f.uid)
	cred, err = f.env.Store.GetCredential(context.Background(), f.uid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.env.Deps.Mailbox.List(oauthflow.WithSessionGrant(context.Background(), oldGrant), f.uid, auto); !apperr.Is(err, apperr.InvalidSession) {
		t.Errorf("a session of the earlier grant: %v, want invalid_session", err)
	}
	res, err := f.env.Deps.Mailbox.List(oauthflow.WithSessionGrant(context.Background(), cred.Grant), f.uid, auto)
	if err != nil || res.Source != mailbox.SourceMirror {
		t.Errorf("a session of the new grant: %+v, %v; want a page from the mirror", res, err)
	}
}

func jsonDecode(w *httptest.ResponseRecorder, v any) error { return json.Unmarshal(w.Body.Bytes(), v) }
