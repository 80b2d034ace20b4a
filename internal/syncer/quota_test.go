package syncer_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"example.com/gmailoauth/internal/gmail"
	"example.com/gmailoauth/internal/logging"
	"example.com/gmailoauth/internal/store"
)

// savesRecorder records the messages of each SaveSync, in order.
type savesRecorder struct {
	store.Store
	mu    sync.Mutex
	saves [][]*store.MessageMeta
}

func (r *savesRecorder) SaveSync(ctx context.Context, userID string, mb *store.Mailbox, up []*store.MessageMeta, del []string) error {
	if len(up) > 0 {
		r.mu.Lock()
		r.saves = append(r.saves, up)
		r.mu.Unlock()
	}
	return r.Store.SaveSync(ctx, userID, mb, up, del)
}

// TestFirstSyncSavesNewestFirst: a first sync saves its messages a page
// of at most gmail.SyncPageSize at a time, the newest page first, so a
// user's first screen of mail is in the store after the first page's
// 2,005 units, well within the user's first budget minute.
func TestFirstSyncSavesNewestFirst(t *testing.T) {
	e := newEnv(t, memStore, envOpts{mailboxSize: 260})
	rec := &savesRecorder{Store: e.syncer.Store}
	e.syncer.Store = rec
	uid := e.connect(t, "newest@example.com")
	if _, err := e.syncer.SyncUser(context.Background(), uid); err != nil {
		t.Fatal(err)
	}
	all, err := e.store.ListMailboxMessages(context.Background(), uid, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(all, func(a, b *store.MessageMeta) int { return int(b.InternalDate - a.InternalDate) })
	if len(rec.saves) < 2 {
		t.Fatalf("%d saves of messages for %d messages, want one a page", len(rec.saves), len(all))
	}
	for i, s := range rec.saves {
		if len(s) > gmail.SyncPageSize {
			t.Errorf("save %d held %d messages, want at most %d", i, len(s), gmail.SyncPageSize)
		}
	}
	first := map[string]bool{}
	for _, m := range rec.saves[0] {
		first[m.ID] = true
	}
	for _, m := range all[:gmail.SyncPageSize] {
		if !first[m.ID] {
			t.Fatalf("the first save lacks message %s, one of the %d newest", m.ID, gmail.SyncPageSize)
		}
	}
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNearTheDailyThresholdOlderMailWaits: once the project's Gmail usage
// of the day passes 90 % of GMAIL_QUOTA_PROJECT_PER_DAY, a first sync
// saves its newest page and leaves the older mail for later, while new
// mail of synced users keeps coming; the summary and the logs say so, and
// the deferred sync continues, without listing again, once the budget
// allows it.
func TestNearTheDailyThresholdOlderMailWaits(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		logs := &syncBuffer{}
		e := newEnv(t, kind, envOpts{mailboxSize: 260, logger: logging.New(logs, "", slog.LevelInfo)})
		ctx := context.Background()
		early := e.connect(t, "early@example.com")
		if _, err := e.syncer.SyncUser(ctx, early); err != nil { // about 5,000 units
			t.Fatal(err)
		}
		e.syncer.Budget.PerDay = 6000 // 90 %: 5,400; the first page of the next user passes it
		late := e.connect(t, "late@example.com")
		e.sb.AddMessages("early@example.com", 2)
		e.sb.ResetStats()

		sum, err := e.syncer.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Deferred != 1 || sum.Synced != 1 || !sum.Complete || !sum.DeferringOptional ||
			sum.QuotaDailyThreshold != 6000 || sum.QuotaUnitsToday < 5400 || sum.QuotaDay == "" {
			t.Fatalf("summary = %+v, want 1 synced, 1 deferred, complete, the day's usage past 90 %% of 6,000", sum)
		}
		if got := len(e.stored(t, early)); got != len(e.gmailIDs(t, early)) {
			t.Errorf("the synced user's new mail was not synced: %d stored", got)
		}
		mb := e.mailbox(t, late)
		if n := len(e.stored(t, late)); n != gmail.SyncPageSize || mb.PendingHistoryID == 0 || mb.FullSyncPageToken == "" {
			t.Fatalf("deferred first sync: %d stored, checkpoint %+v; want the newest %d and the rest pending", n, mb, gmail.SyncPageSize)
		}
		out := logs.String()
		for _, want := range []string{`"deferred":1`, `"deferring_optional":true`, `"quota_units_today":`, "near the daily billing threshold"} {
			if !strings.Contains(out, want) {
				t.Errorf("logs lack %s:\n%s", want, out)
			}
		}

		e.syncer.Budget.PerDay = 1_000_000 // a new day, as far as the budget is concerned
		lists := e.sb.Stats().GmailCalls["messages.list"]
		sum, err = e.syncer.Sweep(ctx)
		if err != nil || sum.Deferred != 0 || sum.DeferringOptional {
			t.Fatalf("sweep with room in the budget: %+v, %v", sum, err)
		}
		if got := e.sb.Stats().GmailCalls["messages.list"] - lists; got != 2 {
			t.Errorf("the rest of the listing took %d messages.list calls, want 2 (pages 2 and 3, not the first again)", got)
		}
		wantSame(t, "stored after the deferral", e.stored(t, late), e.gmailIDs(t, late))
	})
}
