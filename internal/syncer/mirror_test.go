package syncer_test

import (
	"context"
	"slices"
	"testing"

	"example.com/gmailoauth/internal/store"
)

// TestFullSyncRecordsTheMirrorHorizon: a first sync with a date query
// lists spam and trash too, and records the oldest internal date it listed
// as the mirror's horizon; every message from the horizon on is stored.
func TestFullSyncRecordsTheMirrorHorizon(t *testing.T) {
	e := newEnv(t, memStore, envOpts{mailboxSize: 260})
	uid := e.connect(t, "horizon@example.com")
	e.syncer.Query = "newer_than:30d"
	if _, err := e.syncer.SyncUser(context.Background(), uid); err != nil {
		t.Fatal(err)
	}
	mb := e.mailbox(t, uid)
	msgs, err := e.store.ListMirror(context.Background(), uid, store.MirrorQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if !mb.MirrorReady() || len(msgs) == 0 || len(msgs) >= 260 {
		t.Fatalf("after the first sync: ready %v, %d messages stored; want ready and part of the 260", mb.MirrorReady(), len(msgs))
	}
	if oldest := msgs[len(msgs)-1].InternalDate; mb.MirrorHorizon != oldest {
		t.Errorf("horizon = %d, want the oldest stored internal date %d", mb.MirrorHorizon, oldest)
	}
	var spam bool
	for _, m := range msgs {
		spam = spam || store.InSpamOrTrash(m.LabelIDs)
	}
	if !spam {
		t.Errorf("no spam or trash message stored: the first sync must list them too")
	}
	wantSame(t, "stored", e.stored(t, uid), e.gmailIDs(t, uid))

	// Every query lists the whole mailbox.
	e2 := newEnv(t, memStore, envOpts{mailboxSize: 20})
	uid2 := e2.connect(t, "all@example.com")
	if _, err := e2.syncer.SyncUser(context.Background(), uid2); err != nil {
		t.Fatal(err)
	}
	if h := e2.mailbox(t, uid2).MirrorHorizon; h != store.HorizonAll {
		t.Errorf("horizon after listing every message = %d, want HorizonAll", h)
	}
}

// TestCheckpointWithoutHorizonSyncsInFull: a mailbox synced before the
// mirror kept its horizon is listed again in full (not incrementally), and
// what Gmail no longer has is dropped.
func TestCheckpointWithoutHorizonSyncsInFull(t *testing.T) {
	e := newEnv(t, memStore, envOpts{mailboxSize: 30})
	uid := e.connect(t, "old@example.com")
	ctx := context.Background()
	if _, err := e.syncer.SyncUser(ctx, uid); err != nil {
		t.Fatal(err)
	}
	// As an older version left it: no horizon, and a message deleted in
	// Gmail since is still stored.
	mb := e.mailbox(t, uid)
	mb.MirrorHorizon = 0
	ghost := &store.MessageMeta{ID: "00000000000000ff", ThreadID: "00000000000000ff", LabelIDs: []string{"INBOX"}, InternalDate: 1}
	if err := e.store.SaveSync(ctx, uid, mb, []*store.MessageMeta{ghost}, nil); err != nil {
		t.Fatal(err)
	}
	res, err := e.syncer.SyncUser(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != "full" || !res.Fallback || res.Removed != 1 {
		t.Errorf("result = %+v, want a full fallback sync removing 1", res)
	}
	if got := e.stored(t, uid); slices.Contains(got, ghost.ID) {
		t.Errorf("the stale message is still stored")
	}
	if !e.mailbox(t, uid).MirrorReady() {
		t.Errorf("mirror not ready after the full sync")
	}
}
