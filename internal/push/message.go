package push

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Message is one Pub/Sub message of the notification topic, as GmailPush
// receives it.
type Message struct {
	ID          string
	Data        []byte
	Attributes  map[string]string
	PublishTime time.Time
}

// envelope is the data of the CloudEvent Eventarc delivers for a Pub/Sub
// message (type google.cloud.pubsub.topic.v1.messagePublished); the
// functions framework turns a raw push request into the same shape, less
// "subscription" (so nothing here depends on it, nor on orderingKey, which
// the framework drops too).
type envelope struct {
	Message struct {
		Data        []byte            `json:"data"` // base64 in JSON
		Attributes  map[string]string `json:"attributes"`
		MessageID   string            `json:"messageId"`
		PublishTime time.Time         `json:"publishTime"`
	} `json:"message"`
	Subscription string `json:"subscription"`
}

// ParseEnvelope decodes the data of a messagePublished CloudEvent (or the
// body of a raw Pub/Sub push request, which has the same shape).
func ParseEnvelope(data []byte) (Message, error) {
	var e envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return Message{}, fmt.Errorf("push: not a Pub/Sub message: %w", err)
	}
	if e.Message.MessageID == "" && e.Message.Data == nil {
		return Message{}, errors.New("push: not a Pub/Sub message: no message")
	}
	return Message{ID: e.Message.MessageID, Data: e.Message.Data, Attributes: e.Message.Attributes, PublishTime: e.Message.PublishTime}, nil
}

// Notification is Gmail's push notification: the mailbox of EmailAddress
// changed, and its history id is now at least HistoryID.
type Notification struct {
	EmailAddress string     `json:"emailAddress"`
	HistoryID    FlexUint64 `json:"historyId"`
}

// FlexUint64 decodes a uint64 written as a JSON number or a decimal string:
// Google's guide shows historyId as a string, real notifications carry a
// number.
type FlexUint64 uint64

// UnmarshalJSON implements json.Unmarshaler.
func (f *FlexUint64) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not a history id: %.40s", b)
	}
	*f = FlexUint64(v)
	return nil
}

// Reason is why a Task hands a user to the push path.
type Reason string

// Task reasons.
const (
	// ReasonConnect: a new grant (the callback): watch the mailbox, run its
	// first sync, publish its events.
	ReasonConnect Reason = "connect"
	// ReasonRenew: the watch is due for renewal, lapsed or missing (the
	// sweep): watch again, and sync if Gmail's history moved past the mirror.
	ReasonRenew Reason = "renew"
	// ReasonResync: no sync for a while, or the last one failed (the sweep),
	// or a long sync stopped part-way: sync.
	ReasonResync Reason = "resync"
	// ReasonDrain: events wait in the outbox: publish them.
	ReasonDrain Reason = "drain"
)

// Task is work for one user, published to the notification topic by the
// callback and the sweep (attribute TaskAttribute), so GmailPush does it
// on whatever instance Eventarc picks.
type Task struct {
	UserID string `json:"user_id"`
	Reason Reason `json:"reason"`
}

// TaskAttribute marks the messages that carry a Task (its value is the
// reason); Gmail's notifications have no attributes.
const TaskAttribute = "gmailoauth_task"

// EncodeTask returns the message that carries t.
func EncodeTask(t Task) Message {
	data, _ := json.Marshal(t)
	return Message{Data: data, Attributes: map[string]string{TaskAttribute: string(t.Reason)}}
}

// maxUserID bounds the user ids a task may carry (Google's sub is 21 digits).
const maxUserID = 255

// decode tells a Gmail notification from a task.
func decode(m Message) (*Notification, *Task, error) {
	if _, ok := m.Attributes[TaskAttribute]; ok {
		var t Task
		if err := json.Unmarshal(m.Data, &t); err != nil {
			return nil, nil, fmt.Errorf("task: %w", err)
		}
		switch t.Reason {
		case ReasonConnect, ReasonRenew, ReasonResync, ReasonDrain:
		default:
			return nil, nil, fmt.Errorf("task: unknown reason %.40q", t.Reason)
		}
		if t.UserID == "" || len(t.UserID) > maxUserID {
			return nil, nil, errors.New("task: no valid user_id")
		}
		return nil, &t, nil
	}
	var n Notification
	if err := json.Unmarshal(m.Data, &n); err != nil {
		return nil, nil, fmt.Errorf("notification: %w", err)
	}
	if n.EmailAddress == "" || len(n.EmailAddress) > 320 || !strings.Contains(n.EmailAddress, "@") {
		return nil, nil, errors.New("notification: no valid emailAddress")
	}
	return &n, nil, nil
}
