package sandbox

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/api/gmail/v1"
)

type note struct {
	topic string
	data  struct {
		EmailAddress string `json:"emailAddress"`
		HistoryID    uint64 `json:"historyId"`
	}
}

// notes collects the notifications a sandbox sends.
type notes chan note

func (n notes) notify(topic string, data []byte) error {
	var x note
	x.topic = topic
	if err := json.Unmarshal(data, &x.data); err != nil {
		return err
	}
	n <- x
	return nil
}

func (n notes) next(t *testing.T) note {
	t.Helper()
	select {
	case x := <-n:
		return x
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10s")
	}
	return note{}
}

const topic = "projects/demo/topics/gmail-notifications"

func watchedHarness(t *testing.T, email string) (*harness, *gmail.Service, notes) {
	t.Helper()
	n := make(notes, 100)
	h := newHarness(t, func(c *Config) { c.Notify = n.notify })
	svc := h.gmail(t, h.connect(t, email))
	return h, svc, n
}

func TestWatchAndStop(t *testing.T) {
	const me = "watch@example.com"
	h, svc, _ := watchedHarness(t, me)
	if info := h.sb.UserInfo(me); info.Watch != nil {
		t.Fatalf("watch before users.watch: %+v", info.Watch)
	}
	if _, err := svc.Users.Watch("me", &gmail.WatchRequest{TopicName: "gmail-notifications"}).Do(); googleErr(t, err).Code != http.StatusBadRequest {
		t.Errorf("watch with a bare topic id: %v, want 400", err)
	}
	resp, err := svc.Users.Watch("me", &gmail.WatchRequest{TopicName: topic, LabelIds: []string{"INBOX"}}).Do()
	if err != nil {
		t.Fatal(err)
	}
	if want := h.sb.HistoryID(me); resp.HistoryId != want {
		t.Errorf("watch historyId = %d, want the mailbox's %d", resp.HistoryId, want)
	}
	if want := h.clk.Now().Add(WatchLifetime).UnixMilli(); resp.Expiration != want {
		t.Errorf("watch expiration = %d, want %d (7 days on, in ms)", resp.Expiration, want)
	}

	// The admin API shows it.
	r, err := http.Get(h.srv.URL + "/admin/users/" + me)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Watch *struct {
			Topic      string    `json:"topic"`
			Expiration time.Time `json:"expiration"`
		} `json:"watch"`
	}
	decodeJSON(t, r, &info)
	if info.Watch == nil || info.Watch.Topic != topic || !info.Watch.Expiration.Equal(time.UnixMilli(resp.Expiration)) {
		t.Errorf("GET /admin/users/%s watch = %+v", me, info.Watch)
	}

	if err := svc.Users.Stop("me").Do(); err != nil {
		t.Fatal(err)
	}
	if w := h.sb.Watch(me); w != nil {
		t.Errorf("watch after users.stop: %+v", w)
	}
	h.sb.AddMessages(me, 1)
	h.sb.push.mu.Lock()
	scheduled := len(h.sb.push.watches)
	h.sb.push.mu.Unlock()
	if scheduled != 0 {
		t.Error("a stopped watch still schedules notifications")
	}
	if st := h.sb.Stats(); st.GmailCalls["watch"] != 2 || st.GmailCalls["stop"] != 1 || st.QuotaUnits < 250 {
		t.Errorf("stats: %v calls, %d units; want watch and stop counted at 100 and 50 units", st.GmailCalls, st.QuotaUnits)
	}
}

func TestNotificationsAtMostOnePerSecond(t *testing.T) {
	const me = "notify@example.com"
	h, svc, n := watchedHarness(t, me)
	if _, err := svc.Users.Watch("me", &gmail.WatchRequest{TopicName: topic}).Do(); err != nil {
		t.Fatal(err)
	}
	h.sb.AddMessages(me, 1)
	first := n.next(t)
	if first.topic != topic || first.data.EmailAddress != me || first.data.HistoryID != h.sb.HistoryID(me) {
		t.Fatalf("notification %+v; want the watch's topic, the address and the mailbox's history id", first)
	}

	// A burst within the second after it: one more notification, with the
	// history id after the last change.
	for range 5 {
		h.sb.AddMessages(me, 1)
	}
	last := h.sb.HistoryID(me)
	got := n.next(t)
	if got.data.HistoryID != last {
		t.Errorf("notification after a burst carries history id %d; want the latest, %d", got.data.HistoryID, last)
	}
	select {
	case extra := <-n:
		t.Errorf("a third notification for one burst: %+v", extra)
	case <-time.After(1500 * time.Millisecond):
	}
	if st := h.sb.Stats(); st.Notifications != 2 {
		t.Errorf("stats: %d notifications, want 2", st.Notifications)
	}
}

func TestNotificationFaults(t *testing.T) {
	const me = "faults@example.com"
	h, svc, n := watchedHarness(t, me)
	if _, err := svc.Users.Watch("me", &gmail.WatchRequest{TopicName: topic}).Do(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(h.srv.URL+"/admin/push-faults", "application/json", strings.NewReader(`{"drop_next":1,"delay":"10ms"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT push-faults: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	h.sb.AddMessages(me, 1) // dropped
	for deadline := time.Now().Add(10 * time.Second); h.sb.Stats().NotificationsDropped == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the notification was not dropped within 10s")
		}
	}
	h.sb.AddMessages(me, 1)
	if got := n.next(t); got.data.HistoryID != h.sb.HistoryID(me) {
		t.Errorf("notification after the dropped one: %+v", got)
	}
	// The sandbox counts a notification once its publish returned, which
	// may be just after the subscriber has it.
	st := h.sb.Stats()
	for deadline := time.Now().Add(5 * time.Second); st.Notifications == 0 && time.Now().Before(deadline); st = h.sb.Stats() {
		time.Sleep(5 * time.Millisecond)
	}
	if st.Notifications != 1 || st.NotificationsDropped != 1 {
		t.Errorf("stats: %d sent, %d dropped; want 1 and 1", st.Notifications, st.NotificationsDropped)
	}
}

func TestNoNotificationsAfterRevocationOrExpiry(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(h *harness, email string)
	}{
		{"revoked", func(h *harness, email string) { h.sb.Revoke(email) }},
		{"expired", func(h *harness, email string) { h.clk.Advance(WatchLifetime) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const me = "ends@example.com"
			h, svc, _ := watchedHarness(t, me)
			if _, err := svc.Users.Watch("me", &gmail.WatchRequest{TopicName: topic}).Do(); err != nil {
				t.Fatal(err)
			}
			tc.end(h, me)
			h.sb.AddMessages(me, 1)
			h.sb.push.mu.Lock()
			ws := h.sb.push.watches[me]
			pending := ws != nil && ws.timer != nil
			h.sb.push.mu.Unlock()
			if pending {
				t.Error("a notification was scheduled")
			}
			if tc.name == "expired" {
				if w := h.sb.Watch(me); w == nil || !w.Expired {
					t.Errorf("Watch = %+v, want it shown as expired", w)
				}
			}
		})
	}
}
