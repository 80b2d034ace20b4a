package sandbox

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sync"
	"time"
)

// Push notifications (users.watch, users.stop), as Gmail sends them:
//
//   - POST /gmail/v1/users/{userId}/watch {"topicName", "labelIds",
//     "labelFilterBehavior"} answers {"historyId", "expiration"} (strings:
//     the mailbox's history id and the epoch milliseconds, 7 days on). A
//     second watch renews it. topicName must look like
//     projects/P/topics/T (else 400). labelIds are accepted and not
//     applied: every change notifies.
//   - POST /gmail/v1/users/{userId}/stop ends it (204).
//   - For every change to a watched mailbox (messages added or deleted,
//     labels changed; Config.Notify receives it) the sandbox sends
//     {"emailAddress", "historyId"} to the watch's topic, at most one per
//     second per user, as Gmail does: changes within a second of the last
//     notification are told by one more notification at the end of that
//     second, carrying the latest history id. Gmail drops notifications
//     above that rate instead; the PushFaults knobs drop some on purpose,
//     so tests can check that the sweep catches up.
//   - A revoked grant loses its watch, and an expired watch sends nothing.

// Notifier publishes one Gmail notification: data is the JSON of the
// Pub/Sub message's data, topic the watch's topic. It is called from a
// goroutine of its own, never with a lock held.
type Notifier func(topic string, data []byte) error

// WatchLifetime is how long a watch lasts without a renewal.
const WatchLifetime = 7 * 24 * time.Hour

// notifyInterval is Gmail's rate limit on one user's notifications.
const notifyInterval = time.Second

// PushFaults change how notifications are sent.
type PushFaults struct {
	// Delay holds every notification back this long.
	Delay time.Duration
	// DropNext drops the next N notifications (as Gmail may).
	DropNext int
	// DropAll drops every notification while set.
	DropAll bool
}

// WatchInfo is a user's watch, as GET /admin/users/{email} shows it.
type WatchInfo struct {
	Topic      string    `json:"topic"`
	LabelIDs   []string  `json:"label_ids,omitempty"`
	Expiration time.Time `json:"expiration"`
	Expired    bool      `json:"expired"`
}

type watchState struct {
	topic      string
	labelIDs   []string
	expiration time.Time   // on the sandbox's clock
	lastSent   time.Time   // wall clock
	timer      *time.Timer // a notification scheduled and not yet sent
}

// pushState is the sandbox's push part, guarded by its own mutex (taken
// after s.mu when both are needed, never the other way round).
type pushState struct {
	mu      sync.Mutex
	watches map[string]*watchState // by email
	faults  PushFaults
}

var topicNameRE = regexp.MustCompile(`^projects/[^/]+/topics/[^/]+$`)

// gmailWatch is users.watch.
func (s *Sandbox) gmailWatch(w http.ResponseWriter, r *http.Request, g *gmailReq) {
	var body struct {
		TopicName           string   `json:"topicName"`
		LabelIDs            []string `json:"labelIds"`
		LabelFilterBehavior string   `json:"labelFilterBehavior"`
		LabelFilterAction   string   `json:"labelFilterAction"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body); err != nil {
		gmailBadRequest(w, "Invalid JSON payload received.")
		return
	}
	if !topicNameRE.MatchString(body.TopicName) {
		gmailBadRequest(w, "Invalid topicName does not match projects/SOME_PROJECT/topics/SOME_TOPIC")
		return
	}
	exp := g.now.Add(WatchLifetime)
	s.push.mu.Lock()
	if s.push.watches == nil {
		s.push.watches = map[string]*watchState{}
	}
	ws := s.push.watches[g.email]
	if ws == nil {
		ws = &watchState{}
		s.push.watches[g.email] = ws
	}
	ws.topic, ws.labelIDs, ws.expiration = body.TopicName, append([]string(nil), body.LabelIDs...), exp
	s.push.mu.Unlock()
	g.mb.mu.Lock()
	hid := g.mb.historyID
	g.mb.mu.Unlock()
	s.log.Info("sandbox: mailbox watched", "email", g.email, "topic", body.TopicName)
	writeJSON(w, http.StatusOK, struct {
		HistoryID  uint64 `json:"historyId,string"`
		Expiration int64  `json:"expiration,string"`
	}{hid, exp.UnixMilli()})
}

// gmailStop is users.stop.
func (s *Sandbox) gmailStop(w http.ResponseWriter, r *http.Request, g *gmailReq) {
	s.stopWatch(g.email)
	w.WriteHeader(http.StatusNoContent)
}

// stopWatch ends email's watch and any notification it has scheduled.
func (s *Sandbox) stopWatch(email string) {
	s.push.mu.Lock()
	defer s.push.mu.Unlock()
	if ws := s.push.watches[normEmail(email)]; ws != nil {
		if ws.timer != nil {
			ws.timer.Stop()
		}
		delete(s.push.watches, normEmail(email))
	}
}

// mailboxChanged schedules a notification for a change to email's
// mailbox, unless one is scheduled already (it will carry the latest
// history id).
func (s *Sandbox) mailboxChanged(email string) {
	email = normEmail(email)
	now := s.now()
	s.push.mu.Lock()
	defer s.push.mu.Unlock()
	ws := s.push.watches[email]
	if ws == nil || !now.Before(ws.expiration) || ws.timer != nil {
		return
	}
	wait := max(0, time.Until(ws.lastSent.Add(notifyInterval))) + s.push.faults.Delay
	ws.timer = time.AfterFunc(wait, func() { s.sendNotification(email) })
}

// sendNotification sends email's scheduled notification.
func (s *Sandbox) sendNotification(email string) {
	s.push.mu.Lock()
	ws := s.push.watches[email]
	if ws == nil {
		s.push.mu.Unlock()
		return
	}
	ws.timer, ws.lastSent = nil, time.Now()
	topic := ws.topic
	drop := s.push.faults.DropAll || s.push.faults.DropNext > 0
	if s.push.faults.DropNext > 0 {
		s.push.faults.DropNext--
	}
	s.push.mu.Unlock()
	if drop {
		s.bumpStat(func(st *Stats) { st.NotificationsDropped++ })
		s.log.Info("sandbox: notification dropped (push faults)", "email", email)
		return
	}
	data, _ := json.Marshal(struct {
		EmailAddress string `json:"emailAddress"`
		HistoryID    uint64 `json:"historyId"`
	}{email, s.HistoryID(email)})
	if s.cfg.Notify == nil {
		return
	}
	if err := s.cfg.Notify(topic, data); err != nil {
		s.bumpStat(func(st *Stats) { st.NotificationFailures++ })
		s.log.Warn("sandbox: notification not published", "email", email, "error", err.Error())
		return
	}
	s.bumpStat(func(st *Stats) { st.Notifications++ })
}

// Watch returns email's watch, or nil.
func (s *Sandbox) Watch(email string) *WatchInfo {
	s.push.mu.Lock()
	defer s.push.mu.Unlock()
	ws := s.push.watches[normEmail(email)]
	if ws == nil {
		return nil
	}
	return &WatchInfo{Topic: ws.topic, LabelIDs: append([]string(nil), ws.labelIDs...), Expiration: ws.expiration.UTC(),
		Expired: !s.now().Before(ws.expiration)}
}

// SetPushFaults replaces the push fault settings.
func (s *Sandbox) SetPushFaults(f PushFaults) {
	s.push.mu.Lock()
	s.push.faults = f
	s.push.mu.Unlock()
}

// PushFaults returns the push fault settings.
func (s *Sandbox) PushFaults() PushFaults {
	s.push.mu.Lock()
	defer s.push.mu.Unlock()
	return s.push.faults
}

type pushFaultsJSON struct {
	Delay    duration `json:"delay"`
	DropNext int      `json:"drop_next"`
	DropAll  bool     `json:"drop_all"`
}

func (s *Sandbox) pushAdminRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /admin/push-faults", func(w http.ResponseWriter, r *http.Request) {
		f := s.PushFaults()
		writeJSON(w, http.StatusOK, pushFaultsJSON{duration(f.Delay), f.DropNext, f.DropAll})
	})
	for _, method := range []string{"PUT", "POST"} {
		m.HandleFunc(method+" /admin/push-faults", func(w http.ResponseWriter, r *http.Request) {
			var f pushFaultsJSON
			if !decode(w, r, &f) {
				return
			}
			if f.DropNext < 0 || f.Delay < 0 {
				adminError(w, http.StatusBadRequest, "delay and drop_next must not be negative")
				return
			}
			s.SetPushFaults(PushFaults{time.Duration(f.Delay), f.DropNext, f.DropAll})
			writeJSON(w, http.StatusOK, f)
		})
	}
}
