// Package events is what the functions tell the app: every change they make
// to a user's mirror or grant becomes an event, written to the store's
// outbox together with the change itself and then published (Drain) to the
// app's topic, in order per user.
//
// Delivery is at least once and nothing is lost: an event is in the outbox
// as soon as its change is stored, and it leaves the outbox only after the
// topic accepted it. An event has a stable id: the same change always makes
// the same event_id (a sync that runs again after a failure writes the same
// events again), so the app drops duplicates by event_id.
//
// The JSON body (docs/integrating.md has the schema):
//
//	{"event_id": "…", "type": "message.added", "user_id": "…", "email": "…",
//	 "occurred_at": "2026-…Z", "message": {"id": "…", "thread_id": "…", …}}
//
// Published with the attributes type and user_id and the ordering key user_id.
package events

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"example.com/gmailoauth/internal/store"
)

// Event types.
const (
	// MessageAdded: a message entered the mirror (new mail, or the first
	// sync); "message" carries its metadata.
	MessageAdded = "message.added"
	// MessageDeleted: a message left the mirror (deleted at Gmail);
	// "message" carries its id.
	MessageDeleted = "message.deleted"
	// MessageLabelsChanged: a mirrored message's labels changed; "message"
	// carries its id and its labels after the change.
	MessageLabelsChanged = "message.labels_changed"
	// GrantConnected: the user granted access (again); "grant" carries the
	// scopes.
	GrantConnected = "grant.connected"
	// GrantRevoked: Google no longer accepts the grant (the user removed the
	// app, or the token expired); "grant" carries the reason. The user must
	// connect again.
	GrantRevoked = "grant.revoked"
	// GrantDisconnected: the user disconnected (DELETE /authorize); the grant
	// and the mirror are deleted.
	GrantDisconnected = "grant.disconnected"
	// SyncFailed: a sync of the user's mailbox failed and will be retried;
	// "error" says why. Sent once per run of failures.
	SyncFailed = "sync.failed"
)

// Types lists every event type.
var Types = []string{MessageAdded, MessageDeleted, MessageLabelsChanged, GrantConnected, GrantRevoked, GrantDisconnected, SyncFailed}

// Event is the JSON body of an event.
type Event struct {
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"`
	UserID     string    `json:"user_id"`
	Email      string    `json:"email"`
	OccurredAt time.Time `json:"occurred_at"`
	// Message is set for the message.* types.
	Message *Message `json:"message,omitempty"`
	// Grant is set for grant.connected (scopes) and grant.revoked (reason).
	Grant *Grant `json:"grant,omitempty"`
	// Error is set for sync.failed.
	Error *Failure `json:"error,omitempty"`
}

// Message is a message's metadata, with the field names of ListMessages'
// format=metadata answer. message.deleted carries only ID; labels_changed
// ID and LabelIDs.
type Message struct {
	ID       string   `json:"id"`
	ThreadID string   `json:"thread_id,omitempty"`
	LabelIDs []string `json:"label_ids,omitempty"`
	Subject  string   `json:"subject,omitempty"`
	From     string   `json:"from,omitempty"`
	Date     string   `json:"date,omitempty"`
	Snippet  string   `json:"snippet,omitempty"`
	// InternalDate is when Gmail received the message, in ms since the epoch.
	InternalDate int64 `json:"internal_date,omitempty"`
	// HistoryID is the message's last history id at Gmail, a decimal string.
	HistoryID uint64 `json:"history_id,omitempty,string"`
}

// Grant describes a grant change.
type Grant struct {
	Scopes []string `json:"scopes,omitempty"`
	Reason string   `json:"reason,omitempty"`
}

// Failure describes a failed sync: a contract error code and a message
// safe to show.
type Failure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// User is whom an event is about.
type User struct {
	ID    string
	Email string
}

// id derives an event id from what identifies a change: 32 hex digits of
// a SHA-256 over the length-prefixed parts.
func id(parts ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// stamp is the exact form of an instant in event ids.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// outbox encodes e as the outbox entry that publishes it.
func outbox(e *Event) *store.OutboxEvent {
	e.OccurredAt = e.OccurredAt.UTC()
	body, err := json.Marshal(e)
	if err != nil {
		panic("events: encoding an event: " + err.Error()) // plain data: cannot fail
	}
	return &store.OutboxEvent{ID: e.EventID, UserID: e.UserID, Type: e.Type, Body: body}
}

// FromMeta is the event form of a mirrored message.
func FromMeta(m *store.MessageMeta) Message {
	return Message{ID: m.ID, ThreadID: m.ThreadID, LabelIDs: append([]string(nil), m.LabelIDs...), Subject: m.Subject,
		From: m.From, Date: m.Date, Snippet: m.Snippet, InternalDate: m.InternalDate, HistoryID: m.HistoryID}
}

// Added is message.added for m. A message id is never reused, so its
// addition has one id however often a sync stores it again.
func Added(u User, at time.Time, m *store.MessageMeta) *store.OutboxEvent {
	msg := FromMeta(m)
	return outbox(&Event{EventID: id(u.ID, MessageAdded, m.ID), Type: MessageAdded, UserID: u.ID, Email: u.Email, OccurredAt: at, Message: &msg})
}

// Deleted is message.deleted for the message messageID.
func Deleted(u User, at time.Time, messageID string) *store.OutboxEvent {
	return outbox(&Event{EventID: id(u.ID, MessageDeleted, messageID), Type: MessageDeleted, UserID: u.ID, Email: u.Email, OccurredAt: at,
		Message: &Message{ID: messageID}})
}

// LabelsChanged is message.labels_changed: the message messageID has labels
// since the history record historyID (which identifies the change).
func LabelsChanged(u User, at time.Time, messageID string, labels []string, historyID uint64) *store.OutboxEvent {
	return outbox(&Event{EventID: id(u.ID, MessageLabelsChanged, messageID, strconv.FormatUint(historyID, 10)), Type: MessageLabelsChanged,
		UserID: u.ID, Email: u.Email, OccurredAt: at, Message: &Message{ID: messageID, LabelIDs: append([]string(nil), labels...), HistoryID: historyID}})
}

// Connected is grant.connected, made at at.
func Connected(u User, at time.Time, scopes []string) *store.OutboxEvent {
	return outbox(&Event{EventID: id(u.ID, GrantConnected, stamp(at)), Type: GrantConnected, UserID: u.ID, Email: u.Email, OccurredAt: at,
		Grant: &Grant{Scopes: append([]string(nil), scopes...)}})
}

// Revoked is grant.revoked, marked at at.
func Revoked(u User, at time.Time, reason string) *store.OutboxEvent {
	return outbox(&Event{EventID: id(u.ID, GrantRevoked, stamp(at)), Type: GrantRevoked, UserID: u.ID, Email: u.Email, OccurredAt: at,
		Grant: &Grant{Reason: reason}})
}

// Disconnected is grant.disconnected, at at.
func Disconnected(u User, at time.Time) *store.OutboxEvent {
	return outbox(&Event{EventID: id(u.ID, GrantDisconnected, stamp(at)), Type: GrantDisconnected, UserID: u.ID, Email: u.Email, OccurredAt: at})
}

// Failed is sync.failed: the sync from checkpoint failed at at with a
// contract code and a message safe to show.
func Failed(u User, at time.Time, checkpoint uint64, code, message string) *store.OutboxEvent {
	return outbox(&Event{EventID: id(u.ID, SyncFailed, strconv.FormatUint(checkpoint, 10), stamp(at)), Type: SyncFailed,
		UserID: u.ID, Email: u.Email, OccurredAt: at, Error: &Failure{Code: code, Message: message}})
}
