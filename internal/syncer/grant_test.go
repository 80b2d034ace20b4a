package syncer_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/syncer"
)

// disconnectingStore disconnects a user (as DELETE /authorize does)
// right before the sync's write number at, as if the disconnect landed
// while the sync was between its reads and that write.
type disconnectingStore struct {
	store.Store
	disconnect func()
	at         int
	mu         sync.Mutex
	n          int
}

func (d *disconnectingStore) SaveSync(ctx context.Context, userID string, mb *store.Mailbox, up []*store.MessageMeta, del []string) error {
	d.mu.Lock()
	d.n++
	now := d.n == d.at
	d.mu.Unlock()
	if now {
		d.disconnect()
	}
	return d.Store.SaveSync(ctx, userID, mb, up, del)
}

// TestSyncWritesDoNotOutliveTheGrant is issue 15 item 17: a disconnect
// that lands during a sync, before its final write, leaves none of the
// user's mail behind.
func TestSyncWritesDoNotOutliveTheGrant(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind, envOpts{mailboxSize: 1001, userQuota: -1, projQuota: -1}) // two pages: 500 and the rest (spam and trash are not listed)
		uid := e.connect(t, "leaving@example.com")
		ctx := context.Background()
		c, err := e.store.GetCredential(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		e.syncer.Store = &disconnectingStore{Store: e.store, at: 2, disconnect: func() {
			if _, err := e.flow.Revoke(ctx, uid, c.Grant); err != nil {
				t.Errorf("disconnect: %v", err)
			}
		}}
		_, err = e.syncer.SyncUser(ctx, uid)
		if !syncer.IsRevoked(err) {
			t.Errorf("SyncUser across a disconnect: err %v, want the grant reported gone", err)
		}
		if left := e.stored(t, uid); len(left) != 0 {
			t.Errorf("%d messages left behind after the disconnect, want none", len(left))
		}
		if _, err := e.store.GetMailbox(ctx, uid); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("checkpoint after the disconnect: %v, want none", err)
		}
	})
}

// TestSweepRemovesMailboxesWithoutCredential is item 17's second half: a
// mailbox whose credential is gone (a disconnect whose mailbox deletion
// failed, an older version's leftovers) is removed by the sweep; connected
// users' mailboxes stay.
func TestSweepRemovesMailboxesWithoutCredential(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind, envOpts{mailboxSize: 20})
		ctx := context.Background()
		uid := e.connect(t, "staying@example.com")
		const ghost = "100000000000000000001"
		if err := e.store.SaveSync(ctx, ghost, &store.Mailbox{HistoryID: 9}, []*store.MessageMeta{{ID: "a1"}, {ID: "a2"}}, nil); err != nil {
			t.Fatal(err)
		}
		sum, err := e.syncer.Sweep(ctx)
		if err != nil || !sum.Complete {
			t.Fatalf("Sweep: %+v, %v; want a complete round", sum, err)
		}
		if left := e.stored(t, ghost); len(left) != 0 {
			t.Errorf("%d messages of a user without a credential left after the sweep, want none", len(left))
		}
		if _, err := e.store.GetMailbox(ctx, ghost); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("checkpoint of a user without a credential: %v, want removed", err)
		}
		if len(e.stored(t, uid)) == 0 {
			t.Errorf("the connected user's synced mail was removed")
		}
	})
}
