package syncer_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/syncer"
)

// TestSweepResumesFromStoredState starts a sweep on a new Syncer (another
// instance) from a sweep state found in the store: it continues the round
// after the stored user, skips a user already synced in the round, and
// resets the state when the round ends.
func TestSweepResumesFromStoredState(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind, envOpts{mailboxSize: 5})
		ids := sortedCopy(e.connectMany(t, "cur", 5))
		ctx := context.Background()

		roundStart := time.Now().Add(-time.Minute)
		if _, err := e.syncer.SyncOne(ctx, ids[3]); err != nil {
			t.Fatal(err)
		}
		if err := e.store.PutSweepState(ctx, store.SweepState{After: ids[1], RoundStart: roundStart}); err != nil {
			t.Fatal(err)
		}
		other := &syncer.Syncer{Store: e.store, Gmail: e.syncer.Gmail, Log: e.syncer.Log}
		sum, err := other.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Users != 2 || sum.Synced != 2 || sum.Skipped != 1 || !sum.Complete || sum.Cursor != "" {
			t.Fatalf("sweep = %+v, want the 3 users after the stored cursor (2 synced, 1 skipped), complete", sum)
		}
		for i, id := range ids {
			_, err := e.store.GetMailbox(ctx, id)
			if synced := err == nil; synced != (i >= 2) {
				t.Fatalf("user %d synced = %v (%v), want %v", i, synced, err, i >= 2)
			}
		}
		st, err := e.store.GetSweepState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.After != "" || !st.RoundStart.IsZero() || st.UpdatedAt.IsZero() {
			t.Fatalf("sweep state after the round = %+v, want reset (and stamped)", st)
		}

		// The next sweep starts a new round with every user.
		sum, err = other.Sweep(ctx)
		if err != nil || sum.Users != 5 || sum.Synced != 5 || !sum.Complete {
			t.Fatalf("next sweep = %+v, %v; want a new round of 5", sum, err)
		}
	})
}

// getMessagesCounter counts the Store's message reads.
type getMessagesCounter struct {
	store.Store
	mu        sync.Mutex
	gets, ids int
	lists     int
	getErr    error
}

func (c *getMessagesCounter) GetMailboxMessages(ctx context.Context, userID string, ids []string) ([]*store.MessageMeta, error) {
	c.mu.Lock()
	c.gets++
	c.ids += len(ids)
	err := c.getErr
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return c.Store.GetMailboxMessages(ctx, userID, ids)
}

func (c *getMessagesCounter) ListMailboxMessages(ctx context.Context, userID, after string, limit int) ([]*store.MessageMeta, error) {
	c.mu.Lock()
	c.lists++
	c.mu.Unlock()
	return c.Store.ListMailboxMessages(ctx, userID, after, limit)
}

// relabelAdd is a label the sandbox knows (its one user label).
const relabelAdd = "Label_1"

// TestRelabelReadsStoredMessagesAtOnce changes the labels of many stored
// messages and of a few outside the synced window: one store read, no Gmail
// fetch, labels applied, other metadata kept, nothing new stored.
func TestRelabelReadsStoredMessagesAtOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind, envOpts{})
		e.syncer.Query = "newer_than:30d"
		email := "relabel@example.com"
		uid := e.connect(t, email)
		ctx := context.Background()
		if _, err := e.syncer.SyncUser(ctx, uid); err != nil {
			t.Fatal(err)
		}
		stored := e.stored(t, uid)
		e.syncer.Query = ""
		var outside []string
		for _, id := range e.gmailIDs(t, uid) {
			if !slices.Contains(stored, id) {
				outside = append(outside, id)
			}
		}
		e.syncer.Query = "newer_than:30d"
		if len(stored) < 40 || len(outside) < 3 {
			t.Fatalf("%d stored, %d outside the window; the test needs 40 and 3", len(stored), len(outside))
		}
		before := map[string]*store.MessageMeta{}
		msgs, err := e.store.ListMailboxMessages(ctx, uid, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			before[m.ID] = m
		}
		// Relabel 40 stored messages that do not carry the label yet.
		var relabeled []string
		for _, id := range stored {
			if len(relabeled) < 40 && !slices.Contains(before[id].LabelIDs, relabelAdd) {
				relabeled = append(relabeled, id)
			}
		}
		if len(relabeled) < 40 {
			t.Fatalf("only %d stored messages without %s", len(relabeled), relabelAdd)
		}
		changed := append(slices.Clone(relabeled), outside[:3]...)
		for _, id := range changed {
			if err := e.sb.ModifyLabels(email, id, []string{relabelAdd}, []string{"UNREAD"}); err != nil {
				t.Fatal(err)
			}
		}
		cnt := &getMessagesCounter{Store: e.store}
		e.syncer.Store = cnt
		e.sb.ResetStats()
		res, err := e.syncer.SyncUser(ctx, uid)
		if err != nil {
			t.Fatalf("SyncUser: %v", err)
		}
		if res.Kind != syncer.KindIncremental || res.Added != 0 || res.Removed != 0 {
			t.Fatalf("result = %+v, want an incremental sync with label changes only", res)
		}
		if calls := e.sb.Stats().GmailCalls; calls["messages.get"] != 0 || calls["history.list"] != 1 {
			t.Fatalf("gmail calls = %v, want one history.list and no messages.get", calls)
		}
		// The messages outside the window are asked for too (only the store
		// knows they are not there).
		if cnt.gets != 1 || cnt.ids < len(relabeled) || cnt.ids > len(changed) || cnt.lists != 0 {
			t.Fatalf("store reads: %d GetMailboxMessages of %d ids, %d ListMailboxMessages; want 1 of %d to %d, 0",
				cnt.gets, cnt.ids, cnt.lists, len(relabeled), len(changed))
		}
		wantSame(t, "stored after relabelling", e.stored(t, uid), stored)
		got, err := e.store.GetMailboxMessages(ctx, uid, stored)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range got {
			was := before[m.ID]
			if slices.Contains(relabeled, m.ID) {
				if !slices.Contains(m.LabelIDs, relabelAdd) || slices.Contains(m.LabelIDs, "UNREAD") {
					t.Fatalf("labels of relabelled %s = %v, was %v", m.ID, m.LabelIDs, was.LabelIDs)
				}
			} else if !slices.Equal(m.LabelIDs, was.LabelIDs) {
				t.Fatalf("labels of untouched %s = %v, was %v", m.ID, m.LabelIDs, was.LabelIDs)
			}
			if m.Subject != was.Subject || m.Snippet != was.Snippet || m.ThreadID != was.ThreadID || m.InternalDate != was.InternalDate {
				t.Fatalf("relabelling changed metadata of %s: %+v, was %+v", m.ID, m, was)
			}
		}

		// A store failure while reading fails the sync and keeps the checkpoint.
		cp := e.mailbox(t, uid).HistoryID
		if err := e.sb.ModifyLabels(email, stored[0], []string{"STARRED"}, nil); err != nil {
			t.Fatal(err)
		}
		cnt.mu.Lock()
		cnt.getErr = store.ErrUnavailable
		cnt.mu.Unlock()
		if _, err := e.syncer.SyncUser(ctx, uid); err == nil {
			t.Fatal("SyncUser succeeded although the store failed")
		}
		if got := e.mailbox(t, uid).HistoryID; got != cp {
			t.Fatalf("checkpoint moved from %d to %d on a failed sync", cp, got)
		}
	})
}
