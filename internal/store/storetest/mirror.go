package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"example.com/gmailoauth/internal/store"
)

// mirrorTests are the contract of the mirror's listings (ListMirror,
// CountMirror) and of the checkpoint's horizon. What they pin down:
//
//   - the order is Gmail's: InternalDate descending, then ID descending
//     (byte order) for equal dates;
//   - Label keeps messages carrying the label, ExcludeSpamTrash leaves out
//     those labelled SPAM or TRASH (as stored after the last SaveSync),
//     Since is inclusive, After exclusive, and they combine;
//   - a cursor need not name a stored message: it is a position;
//   - Limit bounds both calls; CountMirror counts what ListMirror would
//     list without a limit;
//   - an unknown user lists nothing; the results are copies.
var mirrorTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"Mirror/Order", testMirrorOrder},
	{"Mirror/Filters", testMirrorFilters},
	{"Mirror/Paging", testMirrorPaging},
	{"Mirror/AfterChanges", testMirrorAfterChanges},
	{"Mirror/UnknownUser", testMirrorUnknownUser},
	{"Mirror/ReturnsCopies", testMirrorCopies},
	{"Mirror/CancelledContext", testMirrorCancelled},
	{"Mailbox/MirrorHorizon", testMirrorHorizon},
}

func mirrorMessage(id string, date int64, labels ...string) *store.MessageMeta {
	m := message(id)
	m.InternalDate, m.LabelIDs = date, labels
	return m
}

func listMirror(t *testing.T, s store.Store, userID string, q store.MirrorQuery) []*store.MessageMeta {
	t.Helper()
	msgs, err := s.ListMirror(t.Context(), userID, q)
	if err != nil {
		t.Fatalf("ListMirror(%s, %+v): %v", userID, q, err)
	}
	return msgs
}

func countMirror(t *testing.T, s store.Store, userID string, q store.MirrorQuery) int {
	t.Helper()
	n, err := s.CountMirror(t.Context(), userID, q)
	if err != nil {
		t.Fatalf("CountMirror(%s, %+v): %v", userID, q, err)
	}
	return n
}

func saveMessages(t *testing.T, s store.Store, userID string, msgs []*store.MessageMeta) {
	t.Helper()
	for len(msgs) > 0 {
		n := min(len(msgs), 400)
		if err := s.SaveSync(t.Context(), userID, nil, msgs[:n], nil); err != nil {
			t.Fatalf("SaveSync: %v", err)
		}
		msgs = msgs[n:]
	}
}

func testMirrorOrder(t *testing.T, s store.Store) {
	saveMessages(t, s, "u1", []*store.MessageMeta{
		mirrorMessage("18a0", 3000, "INBOX"),
		mirrorMessage("18b0", 5000, "INBOX"),
		mirrorMessage("18a1", 3000, "INBOX"), // same date: the greater ID first
		mirrorMessage("18a2", 3000, "INBOX"),
		mirrorMessage("0fff", 9000, "INBOX"),
		mirrorMessage("18c0", 1000, "INBOX"),
	})
	want := []string{"0fff", "18b0", "18a2", "18a1", "18a0", "18c0"}
	if diff := cmp.Diff(want, messageIDs(listMirror(t, s, "u1", store.MirrorQuery{}))); diff != "" {
		t.Errorf("ListMirror order (-want +got):\n%s", diff)
	}
	got := listMirror(t, s, "u1", store.MirrorQuery{Limit: 1})
	if len(got) != 1 {
		t.Fatalf("ListMirror(limit 1) = %d messages, want 1", len(got))
	}
	if diff := cmp.Diff(mirrorMessage("0fff", 9000, "INBOX"), got[0], cmpOpts...); diff != "" {
		t.Errorf("ListMirror returns the whole message (-want +got):\n%s", diff)
	}
}

// mirrorLabels are the labels of the random mailbox of testMirrorFilters.
var mirrorLabels = []string{"INBOX", "UNREAD", "STARRED", "SPAM", "TRASH", "Label_7"}

// reference is what a listing must return: msgs filtered by q, in order.
func reference(msgs []*store.MessageMeta, q store.MirrorQuery) []string {
	var keep []*store.MessageMeta
	for _, m := range msgs {
		if m.InternalDate < q.Since || q.Label != "" && !slices.Contains(m.LabelIDs, q.Label) ||
			q.ExcludeSpamTrash && store.InSpamOrTrash(m.LabelIDs) || q.After != nil && q.After.Passed(m) {
			continue
		}
		keep = append(keep, m)
	}
	slices.SortFunc(keep, func(a, b *store.MessageMeta) int {
		switch {
		case a.InternalDate != b.InternalDate:
			return int(b.InternalDate - a.InternalDate)
		case a.ID > b.ID:
			return -1
		case a.ID < b.ID:
			return 1
		}
		return 0
	})
	ids := messageIDs(keep)
	if q.Limit > 0 && len(ids) > q.Limit {
		ids = ids[:q.Limit]
	}
	return ids
}

func randomMirror(seed uint64, n int) []*store.MessageMeta {
	r := rand.New(rand.NewPCG(seed, 1))
	msgs := make([]*store.MessageMeta, n)
	for i := range msgs {
		var labels []string
		for _, l := range mirrorLabels {
			if r.IntN(3) == 0 {
				labels = append(labels, l)
			}
		}
		// Few distinct dates, so that ties are common.
		msgs[i] = mirrorMessage(fmt.Sprintf("%016x", r.Uint64()), 1_700_000_000_000+int64(r.IntN(12))*1000, labels...)
	}
	return msgs
}

func testMirrorFilters(t *testing.T, s store.Store) {
	msgs := randomMirror(7, 48)
	saveMessages(t, s, "u1", msgs)
	saveMessages(t, s, "u2", randomMirror(8, 10)) // another user's messages never show
	all := reference(msgs, store.MirrorQuery{})
	cursors := []*store.MirrorCursor{nil,
		{InternalDate: msgs[0].InternalDate, ID: msgs[0].ID},             // a stored message
		{InternalDate: 1_700_000_000_000 + 5000, ID: "8000000000000000"}, // a position between messages
		{InternalDate: 1_700_000_000_000 + 5000, ID: all[0]},             // an ID with another date
		{InternalDate: 1_800_000_000_000, ID: ""},                        // before everything
	}
	for _, label := range append([]string{""}, mirrorLabels...) {
		for _, exclude := range []bool{false, true} {
			for _, since := range []int64{0, 1_700_000_000_000 + 6000} {
				for _, after := range cursors {
					q := store.MirrorQuery{Label: label, ExcludeSpamTrash: exclude, Since: since, After: after}
					want := reference(msgs, q)
					if diff := cmp.Diff(want, messageIDs(listMirror(t, s, "u1", q)), cmpOpts...); diff != "" {
						t.Errorf("ListMirror(%+v %+v) (-want +got):\n%s", q, after, diff)
					}
					if got := countMirror(t, s, "u1", q); got != len(want) {
						t.Errorf("CountMirror(%+v %+v) = %d, want %d", q, after, got, len(want))
					}
					q.Limit = 3
					if diff := cmp.Diff(reference(msgs, q), messageIDs(listMirror(t, s, "u1", q)), cmpOpts...); diff != "" {
						t.Errorf("ListMirror(%+v %+v) (-want +got):\n%s", q, after, diff)
					}
					if got, want := countMirror(t, s, "u1", q), min(3, len(want)); got != want {
						t.Errorf("CountMirror(%+v %+v) = %d, want %d", q, after, got, want)
					}
				}
			}
		}
	}
}

func testMirrorPaging(t *testing.T, s store.Store) {
	msgs := randomMirror(9, 120)
	saveMessages(t, s, "u1", msgs)
	for _, q := range []store.MirrorQuery{{}, {Label: "INBOX", ExcludeSpamTrash: true}} {
		var got []string
		for page := 0; ; page++ {
			q.Limit = 7
			p := listMirror(t, s, "u1", q)
			got = append(got, messageIDs(p)...)
			if len(p) < q.Limit {
				break
			}
			last := p[len(p)-1]
			q.After = &store.MirrorCursor{InternalDate: last.InternalDate, ID: last.ID}
			if page > 100 {
				t.Fatal("paging does not end")
			}
		}
		q.After, q.Limit = nil, 0
		if diff := cmp.Diff(reference(msgs, q), got, cmpOpts...); diff != "" {
			t.Errorf("pages of 7 of %+v (-want +got):\n%s", q, diff)
		}
	}
}

func testMirrorAfterChanges(t *testing.T, s store.Store) {
	ctx := t.Context()
	saveMessages(t, s, "u1", []*store.MessageMeta{
		mirrorMessage("a", 3000, "INBOX", "UNREAD"),
		mirrorMessage("b", 2000, "INBOX"),
		mirrorMessage("c", 1000, "SPAM"),
	})
	visible := store.MirrorQuery{ExcludeSpamTrash: true}
	if diff := cmp.Diff([]string{"a", "b"}, messageIDs(listMirror(t, s, "u1", visible))); diff != "" {
		t.Errorf("before the changes (-want +got):\n%s", diff)
	}
	// a goes to the trash, c is not spam after all, b is deleted.
	err := s.SaveSync(ctx, "u1", nil, []*store.MessageMeta{mirrorMessage("a", 3000, "TRASH"), mirrorMessage("c", 1000, "INBOX")}, []string{"b"})
	if err != nil {
		t.Fatalf("SaveSync: %v", err)
	}
	if diff := cmp.Diff([]string{"c"}, messageIDs(listMirror(t, s, "u1", visible))); diff != "" {
		t.Errorf("after the changes, spam and trash left out (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "c"}, messageIDs(listMirror(t, s, "u1", store.MirrorQuery{}))); diff != "" {
		t.Errorf("after the changes, everything (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"c"}, messageIDs(listMirror(t, s, "u1", store.MirrorQuery{Label: "INBOX"}))); diff != "" {
		t.Errorf("after the changes, INBOX (-want +got):\n%s", diff)
	}
	if err := s.DeleteMailbox(ctx, "u1"); err != nil {
		t.Fatalf("DeleteMailbox: %v", err)
	}
	if got := listMirror(t, s, "u1", store.MirrorQuery{}); len(got) != 0 {
		t.Errorf("after DeleteMailbox: %d messages listed", len(got))
	}
}

func testMirrorUnknownUser(t *testing.T, s store.Store) {
	saveMessages(t, s, "u1", randomMirror(3, 3))
	for _, id := range []string{"u2", "", "a/b"} {
		if got := listMirror(t, s, id, store.MirrorQuery{}); len(got) != 0 {
			t.Errorf("ListMirror(%q) = %d messages, want 0", id, len(got))
		}
		if got := countMirror(t, s, id, store.MirrorQuery{}); got != 0 {
			t.Errorf("CountMirror(%q) = %d, want 0", id, got)
		}
	}
}

func testMirrorCopies(t *testing.T, s store.Store) {
	saveMessages(t, s, "u1", []*store.MessageMeta{mirrorMessage("a", 1000, "INBOX")})
	got := listMirror(t, s, "u1", store.MirrorQuery{})
	got[0].LabelIDs[0] = "CHANGED"
	got[0].Subject = "changed"
	again := listMirror(t, s, "u1", store.MirrorQuery{})
	if diff := cmp.Diff(mirrorMessage("a", 1000, "INBOX"), again[0], cmpOpts...); diff != "" {
		t.Errorf("a listed message changed by the caller changed the store (-want +got):\n%s", diff)
	}
}

func testMirrorCancelled(t *testing.T, s store.Store) {
	saveMessages(t, s, "u1", randomMirror(4, 3))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.ListMirror(ctx, "u1", store.MirrorQuery{}); !errors.Is(err, context.Canceled) {
		t.Errorf("ListMirror(cancelled context): got err %v, want context.Canceled", err)
	}
	if _, err := s.CountMirror(ctx, "u1", store.MirrorQuery{}); !errors.Is(err, context.Canceled) {
		t.Errorf("CountMirror(cancelled context): got err %v, want context.Canceled", err)
	}
}

func testMirrorHorizon(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, h := range []int64{1_773_497_366_535, store.HorizonAll, 0} {
		mb := &store.Mailbox{HistoryID: 42, LastSyncAt: base, MirrorHorizon: h}
		if err := s.SaveSync(ctx, "u1", mb, nil, nil); err != nil {
			t.Fatalf("SaveSync: %v", err)
		}
		got := mustGetMailbox(t, s, "u1")
		if got.MirrorHorizon != h {
			t.Errorf("MirrorHorizon = %d, want %d", got.MirrorHorizon, h)
		}
		if ready := got.MirrorReady(); ready != (h != 0) {
			t.Errorf("MirrorReady with horizon %d = %v, want %v", h, ready, h != 0)
		}
	}
	pending := &store.Mailbox{HistoryID: 42, PendingHistoryID: 50, MirrorHorizon: 1000}
	if pending.MirrorReady() {
		t.Errorf("a mirror with a full sync under way reports ready")
	}
	if (&store.Mailbox{MirrorHorizon: 1000}).MirrorReady() || (*store.Mailbox)(nil).MirrorReady() {
		t.Errorf("a mirror never synced reports ready")
	}
}
