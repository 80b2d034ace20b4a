package devserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/cloudevents/sdk-go/v2/event"

	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/local/devserver"
	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/store/memstore"
)

// devEvents reads GET /dev/events.
func devEvents(t *testing.T, s *devtest.Stack) []events.Event {
	t.Helper()
	r := s.Get(t, "/dev/events", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /dev/events: %d %s", r.Status, r.Body)
	}
	var out []events.Event
	r.JSON(t, &out)
	return out
}

// waitEvents polls /dev/events until ok holds, or fails t.
func waitEvents(t *testing.T, s *devtest.Stack, what string, ok func([]events.Event) bool) []events.Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := devEvents(t, s)
		if ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			var types []string
			for _, e := range got {
				types = append(types, e.Type)
			}
			t.Fatalf("waited 30s for %s; /dev/events has %v", what, types)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func added(evs []events.Event, userID string) []string {
	var ids []string
	for _, e := range evs {
		if e.Type == events.MessageAdded && e.UserID == userID {
			ids = append(ids, e.Message.ID)
		}
	}
	return ids
}

// TestPushInProcess is `make dev`'s push path, with no Java: the callback
// hands the new grant to GmailPush (watch, first sync, events), and new mail
// in the sandbox reaches the mirror and /dev/events through the sandbox's
// notification, delivered in process in Pub/Sub's push format.
func TestPushInProcess(t *testing.T) {
	st := memstore.New()
	s := devtest.Start(t, devtest.Options{Store: st})
	const email = "pat@example.com"
	s.Sandbox.SetMailboxSize(email, 12)
	session, userID := s.Connect(t, email)

	// First sync, off the callback's request path.
	// (12 seeded messages; the mirror keeps spam and trash too, for listings
	// that ask for them.)
	first := waitEvents(t, s, "the first sync's events", func(evs []events.Event) bool { return len(added(evs, userID)) == 12 })
	if first[0].Type != events.GrantConnected || first[0].UserID != userID || first[0].Email != email {
		t.Errorf("first event %+v; want grant.connected for %s", first[0], email)
	}
	if w := s.Sandbox.Watch(email); w == nil || w.Topic != s.Server.PushTopic {
		t.Fatalf("sandbox watch %+v; want one on %s", w, s.Server.PushTopic)
	}
	mb, err := st.GetMailbox(context.Background(), userID)
	if err != nil || mb.WatchExpiration.IsZero() || mb.WatchHistoryID == 0 || mb.HistoryID == 0 {
		t.Fatalf("mailbox %+v, %v; want the watch's expiration and history id kept, and the first sync done", mb, err)
	}

	// New mail: notification → GmailPush → incremental sync → event.
	ids := s.Sandbox.AddMessages(email, 1)
	got := waitEvents(t, s, "message.added for the new message", func(evs []events.Event) bool {
		return slices.Contains(added(evs, userID), ids[0])
	})
	for _, e := range got {
		if e.Type == events.MessageAdded && e.Message.ID == ids[0] && (e.Message.Subject == "" || e.Message.From == "") {
			t.Errorf("message.added without the metadata: %+v", e.Message)
		}
	}
	stored, err := st.GetMailboxMessages(context.Background(), userID, ids)
	if err != nil || len(stored) != 1 {
		t.Errorf("the new message in the mirror: %v, %v", stored, err)
	}
	if n := len(added(got, userID)); n != len(slices.Compact(slices.Sorted(slices.Values(added(got, userID))))) {
		t.Errorf("message.added listed %d times for fewer messages: duplicates", n)
	}

	// Disconnect: users.stop before the revocation, then grant.disconnected.
	if r := s.Do(t, http.MethodDelete, "/authorize", devtest.Bearer(session), ""); r.Status != http.StatusNoContent {
		t.Fatalf("DELETE /authorize: %d %s", r.Status, r.Body)
	}
	if w := s.Sandbox.Watch(email); w != nil {
		t.Errorf("watch after the disconnect: %+v", w)
	}
	if n := s.Sandbox.Stats().GmailCalls["stop"]; n != 1 {
		t.Errorf("users.stop calls = %d, want 1", n)
	}
	waitEvents(t, s, "grant.disconnected", func(evs []events.Event) bool {
		return evs[len(evs)-1].Type == events.GrantDisconnected
	})
}

// TestDevEventsCORS: the demo page reads /dev/events from its own origin.
func TestDevEventsCORS(t *testing.T) {
	s := devtest.Start(t, devtest.Options{Demo: true})
	r := s.Get(t, "/dev/events", http.Header{"Origin": {s.DemoURL}})
	if r.Status != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != s.DemoURL || string(bytes.TrimSpace(r.Body)) != "[]" {
		t.Errorf("GET /dev/events from the demo origin: %d, ACAO %q, body %s", r.Status, r.Header.Get("Access-Control-Allow-Origin"), r.Body)
	}
	r = s.Get(t, "/dev/events", http.Header{"Origin": {"https://evil.example"}})
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("another origin got ACAO %q", r.Header.Get("Access-Control-Allow-Origin"))
	}
}

var (
	frameworkOnce sync.Once
	frameworkURL  string
	frameworkGot  = make(chan event.Event, 1)
)

// framework serves a capturing CloudEvent function with the real
// functions-framework-go, once per test binary (its registry is global and
// its server cannot be stopped).
func framework(t *testing.T) string {
	t.Helper()
	frameworkOnce.Do(func() {
		if err := funcframework.RegisterCloudEventFunctionContext(context.Background(), "/capture/", func(_ context.Context, e event.Event) error {
			frameworkGot <- e
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		go func() { _ = funcframework.StartHostPort("127.0.0.1", port) }()
		frameworkURL = "http://127.0.0.1:" + port
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
				c.Close()
				return
			}
		}
	})
	return frameworkURL
}

// TestPushRequestLikeTheFramework: the local stack's push endpoint turns a
// raw Pub/Sub push request into the CloudEvent functions-framework-go makes
// of it (what GmailPush sees deployed), field for field.
func TestPushRequestLikeTheFramework(t *testing.T) {
	body := `{"subscription":"projects\/demo-test\/subscriptions\/push-1","message":{"publishTime":"2026-12-02T06:15:49.123Z",` +
		`"data":"eyJlbWFpbEFkZHJlc3MiOiJ1c2VyQGV4YW1wbGUuY29tIiwiaGlzdG9yeUlkIjo5ODc2NTQzMjEwfQ==",` +
		`"publish_time":"2026-12-02T06:15:49.123Z","messageId":"38","attributes":{"a":"1","b":"two"},"message_id":"38"}}`
	const path = "/projects/demo-test/topics/gmail-notifications"

	resp, err := http.Post(framework(t)+"/capture"+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("framework answered %s", resp.Status)
	}
	var want event.Event
	select {
	case want = <-frameworkGot:
	case <-time.After(10 * time.Second):
		t.Fatal("the framework did not call the function")
	}

	var got event.Event
	h := devserver.DevserverPushHandler(func(_ context.Context, e event.Event) error { got = e; return nil })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/gmail-push"+path, strings.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("local push endpoint answered %d", rec.Code)
	}
	for _, f := range []struct{ name, got, want string }{
		{"id", got.ID(), want.ID()}, {"type", got.Type(), want.Type()}, {"source", got.Source(), want.Source()},
		{"time", got.Time().UTC().String(), want.Time().UTC().String()}, {"datacontenttype", got.DataContentType(), want.DataContentType()},
	} {
		if f.got != f.want {
			t.Errorf("%s = %q, the framework's %q", f.name, f.got, f.want)
		}
	}
	var g, w map[string]any
	if err := json.Unmarshal(got.Data(), &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want.Data(), &w); err != nil {
		t.Fatal(err)
	}
	gm, wm := g["message"].(map[string]any), w["message"].(map[string]any)
	for _, k := range []string{"@type", "data", "messageId", "attributes"} {
		if gs, ws := jsonString(gm[k]), jsonString(wm[k]); gs != ws {
			t.Errorf("data.message.%s = %s, the framework's %s", k, gs, ws)
		}
	}
	gt, _ := time.Parse(time.RFC3339Nano, gm["publishTime"].(string))
	wt, _ := time.Parse(time.RFC3339Nano, wm["publishTime"].(string))
	if !gt.Equal(wt) {
		t.Errorf("data.message.publishTime = %v, the framework's %v", gm["publishTime"], wm["publishTime"])
	}
	if _, ok := w["subscription"]; ok {
		t.Log("note: the framework now keeps the subscription")
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
