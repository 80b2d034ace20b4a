package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"example.com/gmailoauth/internal/gmail"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/syncer"
)

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

func wantSame(t *testing.T, what string, got, want []string) {
	t.Helper()
	got, want = sortedCopy(got), sortedCopy(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %d ids, want %d\n got: %v\nwant: %v", what, len(got), len(want), head(got), head(want))
	}
}

func head(s []string) []string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

func TestFirstSync(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind, envOpts{})
		e.syncer.Query = "newer_than:30d"
		email := "first@example.com"
		uid := e.connect(t, email)
		e.sb.ResetStats()

		res, err := e.syncer.SyncUser(context.Background(), uid)
		if err != nil {
			t.Fatalf("SyncUser: %v", err)
		}
		st := e.sb.Stats()
		want := e.gmailIDs(t, uid)
		if len(want) == 0 || len(want) >= 260 {
			t.Fatalf("query should select some but not all of the 260 seeded messages, got %d", len(want))
		}
		if res.Kind != syncer.KindFull || !res.Complete || res.Added != len(want) {
			t.Fatalf("result = %+v, want a complete full sync adding %d", res, len(want))
		}
		wantSame(t, "stored messages", e.stored(t, uid), want)
		mb := e.mailbox(t, uid)
		if mb.HistoryID != e.sb.HistoryID(email) || mb.PendingHistoryID != 0 || mb.FullSyncPageToken != "" || mb.LastSyncAt.IsZero() {
			t.Fatalf("checkpoint = %+v, want history id %d and no pending full sync", mb, e.sb.HistoryID(email))
		}
		if mb.MessageCount != len(want) {
			t.Fatalf("MessageCount = %d, want %d", mb.MessageCount, len(want))
		}
		msgs, err := e.store.ListMailboxMessages(context.Background(), uid, "", 5)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Subject == "" || m.From == "" || m.Date == "" || m.Snippet == "" || len(m.LabelIDs) == 0 || m.ThreadID == "" || m.InternalDate == 0 {
				t.Fatalf("metadata incomplete: %+v", m)
			}
		}
		// One page of ids (≤500), one metadata call per message, one profile.
		if st.GmailCalls["messages.list"] != 1 || st.GmailCalls["messages.get"] != len(want) || st.GmailCalls["getProfile"] != 1 {
			t.Fatalf("gmail calls = %v", st.GmailCalls)
		}
	})
}

func TestIncrementalSync(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind, envOpts{mailboxSize: 40})
		email := "incr@example.com"
		uid := e.connect(t, email)
		ctx := context.Background()
		if _, err := e.syncer.SyncUser(ctx, uid); err != nil {
			t.Fatal(err)
		}
		before := e.stored(t, uid)
		added := e.sb.AddMessages(email, 7)
		if err := e.sb.DeleteMessages(email, before[0], before[1], before[2]); err != nil {
			t.Fatal(err)
		}
		if err := e.sb.ModifyLabels(email, before[5], []string{"STARRED"}, []string{"UNREAD"}); err != nil {
			t.Fatal(err)
		}
		// A message that comes and goes between two syncs is never fetched.
		gone := e.sb.AddMessages(email, 1)
		if err := e.sb.DeleteMessages(email, gone...); err != nil {
			t.Fatal(err)
		}
		e.sb.ResetStats()

		res, err := e.syncer.SyncUser(ctx, uid)
		if err != nil {
			t.Fatalf("SyncUser: %v", err)
		}
		if res.Kind != syncer.KindIncremental || res.Added != 7 || res.Removed != 4 || !res.Complete {
			t.Fatalf("result = %+v, want incremental +7 -4", res)
		}
		st := e.sb.Stats()
		wantSame(t, "stored after incremental", e.stored(t, uid), e.gmailIDs(t, uid))
		for _, id := range added {
			if !slices.Contains(e.stored(t, uid), id) {
				t.Fatalf("added message %s not stored", id)
			}
		}
		if st.GmailCalls["history.list"] != 1 || st.GmailCalls["messages.get"] != 7 || st.GmailCalls["messages.list"] != 0 {
			t.Fatalf("gmail calls = %v, want 1 history.list and 7 messages.get", st.GmailCalls)
		}
		msgs, _ := e.store.ListMailboxMessages(ctx, uid, "", 0)
		for _, m := range msgs {
			if m.ID == before[5] {
				if !slices.Contains(m.LabelIDs, "STARRED") || slices.Contains(m.LabelIDs, "UNREAD") {
					t.Fatalf("labels of relabelled message = %v", m.LabelIDs)
				}
				if m.Subject == "" {
					t.Fatalf("relabelling lost metadata: %+v", m)
				}
			}
		}
		if got := e.mailbox(t, uid).HistoryID; got != e.sb.HistoryID(email) {
			t.Fatalf("checkpoint %d, want %d", got, e.sb.HistoryID(email))
		}
	})
}

func TestDeletedMessagesRemoved(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind, envOpts{mailboxSize: 30})
		email := "del@example.com"
		uid := e.connect(t, email)
		ctx := context.Background()
		if _, err := e.syncer.SyncUser(ctx, uid); err != nil {
			t.Fatal(err)
		}
		ids := e.stored(t, uid)
		victims := []string{ids[3], ids[10], ids[len(ids)-1]}
		if err := e.sb.DeleteMessages(email, victims...); err != nil {
			t.Fatal(err)
		}
		res, err := e.syncer.SyncUser(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		if res.Removed != 3 {
			t.Fatalf("removed = %d, want 3", res.Removed)
		}
		got := e.stored(t, uid)
		for _, v := range victims {
			if slices.Contains(got, v) {
				t.Fatalf("deleted message %s still stored", v)
			}
		}
		if len(got) != len(ids)-3 {
			t.Fatalf("stored %d, want %d", len(got), len(ids)-3)
		}
	})
}

func TestFallbackFullSyncOn404(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind, envOpts{mailboxSize: 50})
		email := "fallback@example.com"
		uid := e.connect(t, email)
		ctx := context.Background()
		if _, err := e.syncer.SyncUser(ctx, uid); err != nil {
			t.Fatal(err)
		}
		ids := e.stored(t, uid)
		e.sb.AddMessages(email, 4)
		if err := e.sb.DeleteMessages(email, ids[0], ids[7]); err != nil {
			t.Fatal(err)
		}
		e.sb.ExpireHistory(email)
		e.sb.ResetStats()
		res, err := e.syncer.SyncUser(ctx, uid)
		if err != nil {
			t.Fatalf("SyncUser: %v", err)
		}
		if !res.Fallback || res.Kind != syncer.KindFull || !res.Complete || res.Removed != 2 {
			t.Fatalf("result = %+v, want a complete fallback full sync removing 2", res)
		}
		if st := e.sb.Stats(); st.GmailCalls["history.list"] != 1 || st.GmailCalls["messages.list"] != 1 || st.GmailCalls["getProfile"] != 1 {
			t.Fatalf("gmail calls = %v", st.GmailCalls)
		}
		wantSame(t, "stored after fallback", e.stored(t, uid), e.gmailIDs(t, uid))
		if got := e.mailbox(t, uid).HistoryID; got != e.sb.HistoryID(email) {
			t.Fatalf("checkpoint %d, want %d", got, e.sb.HistoryID(email))
		}
		// And the next sync is incremental again.
		e.sb.AddMessages(email, 1)
		res, err = e.syncer.SyncUser(ctx, uid)
		if err != nil || res.Kind != syncer.KindIncremental || res.Added != 1 {
			t.Fatalf("after fallback: %+v, %v", res, err)
		}
	})
}

func TestNoChangeSyncMakesOneCallAndWritesNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind, envOpts{mailboxSize: 20})
		cs := &countingStore{Store: e.store}
		e.syncer.Store = cs
		uid := e.connect(t, "idle@example.com")
		ctx := context.Background()
		if _, err := e.syncer.SyncUser(ctx, uid); err != nil {
			t.Fatal(err)
		}
		saves, _ := cs.writes()
		e.sb.ResetStats()
		res, err := e.syncer.SyncUser(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		if res.Wrote || res.Added != 0 || res.Removed != 0 {
			t.Fatalf("result = %+v, want nothing written", res)
		}
		if got, _ := cs.writes(); got != saves {
			t.Fatalf("store writes = %d, want none", got-saves)
		}
		if st := e.sb.Stats(); e.gmailCalls() != 1 || st.GmailCalls["history.list"] != 1 {
			t.Fatalf("gmail calls = %v, want one history.list", st.GmailCalls)
		}
	})
}

// panickyTokens panics for one user, as a bug in one user's sync would.
type panickyTokens struct {
	gmail.Tokens
	user string
}

func (p panickyTokens) AccessToken(ctx context.Context, userID string) (string, error) {
	if userID == p.user {
		panic("boom for one user")
	}
	return p.Tokens.AccessToken(ctx, userID)
}

// insufficientScope answers every Gmail call made for one user (the user of
// the request's context, see gmail.WithUser) as Gmail answers a token
// without Gmail read access: 403 insufficientPermissions, which is not
// retried. The real flow never stores such a grant (the callback refuses
// it), so the test stands in for Gmail for that user.
type insufficientScope struct {
	user string
	base http.RoundTripper
}

const insufficientScopeBody = `{"error":{"code":403,"message":"Request had insufficient authentication scopes.",` +
	`"errors":[{"message":"Insufficient Permission","domain":"global","reason":"insufficientPermissions"}],"status":"PERMISSION_DENIED"}}`

func (f insufficientScope) RoundTrip(r *http.Request) (*http.Response, error) {
	if gmail.UserFrom(r.Context()) != f.user {
		return f.base.RoundTrip(r)
	}
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{
		Status: "403 Forbidden", StatusCode: http.StatusForbidden, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json; charset=UTF-8"}},
		Body:          io.NopCloser(strings.NewReader(insufficientScopeBody)),
		ContentLength: int64(len(insufficientScopeBody)), Request: r,
	}, nil
}

func TestSweepRevokedUserMidSweepOthersComplete(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind, envOpts{mailboxSize: 25})
		e.syncer.Query = "newer_than:30d"
		ids := e.connectMany(t, "sweep", 12)
		revokedEmail, panicUser := "sweep00003@example.com", ids[7]
		revokedID := sandbox.SubFor(revokedEmail)
		// The user removes the app at Google: the stored grant still looks
		// active, so the sweep finds out from Gmail (401) and the token endpoint.
		e.sb.Revoke(revokedEmail)
		// One user's Gmail answers an error the sweep does not retry: 403,
		// the grant cannot read mail.
		gmailErrID := e.connect(t, "meta@example.com")
		orig := e.syncer.Gmail // this test's own Service, over the same transport
		e.syncer.Gmail = &gmail.Service{BaseURL: orig.BaseURL, Retry: orig.Retry, Now: orig.Now,
			HTTP:   &http.Client{Timeout: orig.HTTP.Timeout, Transport: insufficientScope{user: gmailErrID, base: orig.HTTP.Transport}},
			Tokens: panickyTokens{Tokens: e.flow, user: panicUser}}
		e.syncer.UserConcurrency = 4

		sum, err := e.syncer.Sweep(context.Background())
		if err != nil {
			t.Fatalf("Sweep: %v", err)
		}
		if sum.Users != 13 || sum.Revoked != 1 || sum.Failed != 2 || sum.Synced != 10 || !sum.Complete {
			t.Fatalf("summary = %+v, want 13 users: 10 synced, 1 revoked, 2 failed, complete", sum)
		}
		c, err := e.store.GetCredential(context.Background(), revokedID)
		if err != nil || c.Status != store.StatusRevoked || c.RevokedReason == "" || c.RevokedAt.IsZero() {
			t.Fatalf("revoked user's credential = %+v, %v; want marked revoked with a reason", c, err)
		}
		for _, id := range ids {
			if id == revokedID || id == panicUser {
				continue
			}
			wantSame(t, "stored of "+id, e.stored(t, id), e.gmailIDs(t, id))
		}
		if mb := e.mailbox(t, gmailErrID); mb.LastError == "" || mb.HistoryID != 0 {
			t.Fatalf("failed user's checkpoint = %+v, want the error recorded and no checkpoint", mb)
		}
		// A second sweep no longer lists the revoked user.
		sum, err = e.syncer.Sweep(context.Background())
		if err != nil || sum.Users != 12 || sum.Revoked != 0 {
			t.Fatalf("second sweep = %+v, %v", sum, err)
		}
	})
}

func TestSweepDeadlineStopAndResume(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind, envOpts{mailboxSize: 1200, userQuota: -1})
		e.syncer.UserConcurrency = 2
		e.syncer.MetadataConcurrency = 4
		e.syncer.UsersPageSize = 2
		e.syncer.Deadline = 150 * time.Millisecond
		e.sb.SetGmailFaults(sandbox.GmailFaults{Latency: 5 * time.Millisecond})
		ids := e.connectMany(t, "resume", 5)
		e.sb.ResetStats()
		ctx := context.Background()

		var runs, incomplete int
		addedMail, addedTo := false, -1 // mail that arrived after addedTo's full listing
		for runs = 1; runs <= 200; runs++ {
			sum, err := e.syncer.Sweep(ctx)
			if err != nil {
				t.Fatalf("sweep %d: %v", runs, err)
			}
			st, err := e.store.GetSweepState(ctx)
			if err != nil {
				t.Fatalf("GetSweepState after sweep %d: %v", runs, err)
			}
			if st.After != sum.Cursor || st.RoundStart.IsZero() == !sum.Complete {
				t.Fatalf("sweep %d: stored sweep state %+v, summary %+v", runs, st, sum)
			}
			if !sum.Complete {
				incomplete++
				if sum.Cursor == "" && sum.Partial == 0 && sum.Users == 0 {
					t.Fatalf("sweep %d stopped without progress: %+v", runs, sum)
				}
				// Mail keeps arriving between runs; none may be lost.
				if !addedMail {
					for i, id := range ids {
						if mb, err := e.store.GetMailbox(ctx, id); err == nil && mb.HistoryID != 0 && mb.PendingHistoryID == 0 {
							e.sb.AddMessages(fmt.Sprintf("resume%05d@example.com", i), 3)
							addedMail, addedTo = true, i
							break
						}
					}
				}
				continue
			}
			break
		}
		if !addedMail {
			e.sb.AddMessages("resume00000@example.com", 3)
			addedTo = 0
		}
		if incomplete == 0 {
			t.Fatalf("the first sweep was not stopped by its deadline; the test proves nothing")
		}
		if runs > 200 {
			t.Fatalf("the sweep never completed")
		}
		// One more round picks up anything that arrived after a user's sync.
		if _, err := e.syncer.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		st := e.sb.Stats()
		total, pages := 0, 0
		for i, id := range ids {
			want := e.gmailIDs(t, id)
			total += len(want)
			listed := len(want)
			if i == addedTo {
				listed -= 3 // synced from the history, not listed
			}
			pages += (listed + gmail.SyncPageSize - 1) / gmail.SyncPageSize
			got := e.stored(t, id)
			wantSame(t, "stored of "+id, got, want)
			if mb := e.mailbox(t, id); mb.MessageCount != len(want) || mb.PendingHistoryID != 0 {
				t.Fatalf("checkpoint of %s = %+v, want %d messages and no pending sync", id, mb, len(want))
			}
		}
		// Nothing fetched twice, nothing listed twice: every stopped full
		// sync resumed from its saved page.
		if st.GmailCalls["messages.list"] != pages || st.GmailCalls["messages.get"] != total || st.GmailCalls["getProfile"] != 5 {
			t.Fatalf("gmail calls = %v, want %d lists (pages of %d), %d gets, 5 profiles", st.GmailCalls, pages, gmail.SyncPageSize, total)
		}
		t.Logf("%d runs, %d stopped by the deadline", runs, incomplete)
	})
}

func TestRateLimitStormRecoversWithinQuota(t *testing.T) {
	e := newEnv(t, memStore, envOpts{mailboxSize: 60, userQuota: 1_000_000})
	email := "storm@example.com"
	uid := e.connect(t, email)
	// Gmail allows 400 units/s for this user with a one-second allowance;
	// the client believes in far more: a storm of 429s, plus a few 503s.
	e.sb.SetQuotaLimits(sandbox.QuotaLimits{UserPerMinute: 24_000, Window: time.Second})
	e.sb.SetGmailFaults(sandbox.GmailFaults{FailNext: 3})
	e.sb.ResetStats()
	start := time.Now()
	res, err := e.syncer.SyncUser(context.Background(), uid)
	if err != nil {
		t.Fatalf("SyncUser: %v", err)
	}
	elapsed := time.Since(start)
	st := e.sb.Stats()
	if st.RateLimited == 0 {
		t.Fatalf("no 429 was answered; the test proves nothing")
	}
	e.sb.SetQuotaLimits(sandbox.QuotaLimits{UserPerMinute: -1})
	e.sb.SetGmailFaults(sandbox.GmailFaults{})
	want := e.gmailIDs(t, uid)
	if res.Added != len(want) {
		t.Fatalf("added %d, want %d", res.Added, len(want))
	}
	wantSame(t, "stored", e.stored(t, uid), want)
	// The sandbox admits at most its allowance (400) plus 400 units/s.
	if max := 400 + 400*elapsed.Seconds() + 10; float64(st.QuotaUnitsByUser[email]) > max {
		t.Fatalf("units admitted %d > quota bound %.0f", st.QuotaUnitsByUser[email], max)
	}
	// Pausing the user on a 429 keeps the storm short: far fewer 429s than calls.
	if st.RateLimited > 61 {
		t.Fatalf("%d 429s for 62 calls: the client kept hammering", st.RateLimited)
	}
	t.Logf("429s: %d, 503s: %d, calls: %v", st.RateLimited, st.GmailFailures, st.GmailCalls)

	// With the client's budget set to Gmail's limit (a minute's allowance
	// here too), no 429 at all, also past the first minute's burst: 600
	// messages cost 12,000 units and more.
	e2 := newEnv(t, memStore, envOpts{mailboxSize: 650, userQuota: 12_000})
	uid2 := e2.connect(t, email)
	e2.sb.SetQuotaLimits(sandbox.QuotaLimits{UserPerMinute: 12_000})
	e2.sb.ResetStats()
	if _, err := e2.syncer.SyncUser(context.Background(), uid2); err != nil {
		t.Fatal(err)
	}
	if st := e2.sb.Stats(); st.RateLimited != 0 || st.QuotaUnitsByUser[email] <= 12_000 {
		t.Fatalf("%d 429s for %d units with the client's budget at Gmail's limit, want 0 for more than 12,000", st.RateLimited, st.QuotaUnitsByUser[email])
	}
}

func TestIdempotentRerun(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind, envOpts{mailboxSize: 15})
		cs := &countingStore{Store: e.store}
		e.syncer.Store = cs
		ids := e.connectMany(t, "idem", 6)
		ctx := context.Background()
		first, err := e.syncer.Sweep(ctx)
		perUser := len(e.gmailIDs(t, ids[0]))
		if err != nil || first.Synced != 6 || first.MessagesAdded != int64(6*perUser) {
			t.Fatalf("first sweep = %+v, %v", first, err)
		}
		snapshot := map[string][]string{}
		for _, id := range ids {
			snapshot[id] = e.stored(t, id)
		}
		saves, _ := cs.writes()
		e.sb.ResetStats()
		second, err := e.syncer.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if second.Synced != 6 || second.MessagesAdded != 0 || second.MessagesRemoved != 0 || second.GmailCalls != 6 || !second.Complete {
			t.Fatalf("second sweep = %+v, want 6 synced, nothing changed, 6 Gmail calls", second)
		}
		if st := e.sb.Stats(); st.GmailCalls["history.list"] != 6 || e.gmailCalls() != 6 {
			t.Fatalf("gmail calls = %v", st.GmailCalls)
		}
		if got, _ := cs.writes(); got != saves {
			t.Fatalf("second sweep wrote %d times, want 0", got-saves)
		}
		for _, id := range ids {
			if !slices.Equal(e.stored(t, id), snapshot[id]) {
				t.Fatalf("stored messages of %s changed", id)
			}
		}
	})
}

func TestSyncOne(t *testing.T) {
	e := newEnv(t, memStore, envOpts{mailboxSize: 10})
	uid := e.connect(t, "one@example.com")
	e.connect(t, "other@example.com")
	sum, err := e.syncer.SyncOne(context.Background(), uid)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(e.gmailIDs(t, uid)))
	// getProfile 1, messages.list 5, messages.get (format=metadata) 20 each.
	if sum.Users != 1 || sum.Synced != 1 || sum.MessagesAdded != n || sum.GmailCalls != 2+n || sum.QuotaUnits != 1+5+20*n {
		t.Fatalf("summary = %+v", sum)
	}
	// The day's count across instances includes this sync's units.
	if sum.QuotaDay == "" || sum.QuotaUnitsToday < sum.QuotaUnits || sum.QuotaDailyThreshold != 80_000_000 || sum.DeferringOptional {
		t.Fatalf("summary's quota of the day = %+v", sum)
	}
	if _, err := e.store.GetMailbox(context.Background(), sandbox.SubFor("other@example.com")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the other user was synced too: %v", err)
	}
	if _, err := e.syncer.SyncOne(context.Background(), "999"); !errors.Is(err, syncer.ErrUnknownUser) {
		t.Fatalf("unknown user: err = %v", err)
	}
}

var _ = fmt.Sprint
var _ atomic.Int64
