// Package store defines where the functions keep their state: users' grants
// (credentials) and the index from their addresses, pending authorizations
// (states), synced mailboxes and their sync leases, the outbox of events to
// the app, the scheduler sweep's resume point (sweep state) and the
// project's daily Gmail quota usage. Two
// implementations exist: memstore, the embedded default for local runs, and
// fsstore, Cloud Firestore in Native mode. Both pass the contract suite in
// storetest, so the embedded default cannot drift from production.
//
// The store never sees a token in clear: refresh and access tokens arrive
// sealed (see Sealed) and leave sealed.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"time"

	"example.com/gmailoauth/internal/apperr"
)

// Errors returned by every Store implementation. Callers compare with errors.Is.
var (
	// ErrNotFound means the document does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrStateExpired means an authorization state existed but had expired. It
	// has been deleted all the same: a state is single use whatever happens.
	ErrStateExpired = errors.New("store: state expired")
	// ErrUnavailable wraps failures of the backing service (timeouts, network,
	// aborted transactions after retries). It is an *apperr.Error with code
	// Unavailable, so every path answers a storage outage the same way.
	ErrUnavailable error = &apperr.Error{Code: apperr.Unavailable, Message: "storage is unavailable; try again shortly"}
)

// Credential status values.
const (
	StatusActive  = "active"
	StatusRevoked = "revoked"
)

// Sealed is a ciphertext as the keyset package makes it (keyset.Sealed has
// the same fields): AES-256-GCM with the user id as associated data. KeyID
// names the key that sealed it, so old keys keep opening old documents after
// a rotation.
type Sealed struct {
	KeyID      string `firestore:"key_id"`
	Ciphertext []byte `firestore:"ciphertext"`
}

// IsZero reports whether s holds no ciphertext.
func (s Sealed) IsZero() bool { return len(s.Ciphertext) == 0 }

// Credential is one user's grant, stored at credentials/{UserID}. UserID is
// the ID token's "sub": emails change, "sub" does not.
type Credential struct {
	UserID            string    `firestore:"-"`
	Email             string    `firestore:"email"`
	RefreshToken      Sealed    `firestore:"refresh_token"`
	AccessToken       Sealed    `firestore:"access_token"`
	AccessTokenExpiry time.Time `firestore:"access_token_expiry"`
	Scopes            []string  `firestore:"scopes"`
	Status            string    `firestore:"status"`
	CreatedAt         time.Time `firestore:"created_at"`
	UpdatedAt         time.Time `firestore:"updated_at"`
	LastRefreshAt     time.Time `firestore:"last_refresh_at"`
	RevokedAt         time.Time `firestore:"revoked_at"`
	RevokedReason     string    `firestore:"revoked_reason"`
	// RefreshLeaseOwner and RefreshLeaseUntil implement single-flight refresh
	// across instances: whoever holds an unexpired lease is the only caller of
	// the token endpoint for this user.
	RefreshLeaseOwner string    `firestore:"refresh_lease_owner"`
	RefreshLeaseUntil time.Time `firestore:"refresh_lease_until"`
	// Grant names this grant: a random id given when the user connects (or
	// connects again after the grant was revoked), carried in every session
	// issued for it and in the sync's writes, so neither outlives it.
	Grant string `firestore:"grant"`
}

// Clone returns a deep copy of c.
func (c *Credential) Clone() *Credential {
	if c == nil {
		return nil
	}
	d := *c
	d.Scopes = append([]string(nil), c.Scopes...)
	d.RefreshToken.Ciphertext = append([]byte(nil), c.RefreshToken.Ciphertext...)
	d.AccessToken.Ciphertext = append([]byte(nil), c.AccessToken.Ciphertext...)
	return &d
}

// AuthState is a pending authorization, stored at oauth_states/{sha256(state)}
// between Authorize and OAuthCallback. It is single use and expires.
type AuthState struct {
	Verifier    string    `firestore:"verifier"`     // PKCE code_verifier
	Nonce       string    `firestore:"nonce"`        // OIDC nonce, checked in the ID token
	ReturnTo    string    `firestore:"return_to"`    // where the browser goes afterwards ("" = JSON answer)
	ClientState string    `firestore:"client_state"` // the frontend's own state, echoed back untouched
	LoginHint   string    `firestore:"login_hint"`
	Scopes      []string  `firestore:"scopes"`
	CreatedAt   time.Time `firestore:"created_at"`
	ExpiresAt   time.Time `firestore:"expires_at"` // also the Firestore TTL field
}

// Mailbox is the sync checkpoint of one user, stored at mailboxes/{UserID}.
type Mailbox struct {
	UserID      string
	HistoryID   uint64
	LastSyncAt  time.Time
	LastError   string
	LastErrorAt time.Time
	// FullSyncPageToken is set while a first (full) sync is part-way through,
	// so the next run resumes the listing instead of starting again.
	FullSyncPageToken string
	// PendingHistoryID is the mailbox historyId recorded when a full sync
	// started; it becomes HistoryID when the listing completes.
	PendingHistoryID uint64
	MessageCount     int
	// Grant, when set, is the credential's Grant the sync is writing for:
	// SaveSync then writes nothing unless that grant is still stored
	// (ErrGrantGone), so a sync never outlives a disconnect.
	Grant string
	// The mailbox's Gmail watch (users.watch): when it was made or last
	// renewed, when Gmail stops sending notifications unless it is renewed,
	// and the mailbox historyId Gmail answered. Zero when there is none.
	WatchedAt       time.Time
	WatchExpiration time.Time
	WatchHistoryID  uint64
	// MirrorHorizon is the internal date (ms since the epoch) from which on
	// the mirror holds every message of the mailbox, spam and trash
	// included: the oldest message the last full sync listed (or the time it
	// started, when it listed none). HorizonAll means the full sync listed
	// every message. 0 means unknown: the mirror cannot answer a listing
	// (see Mailbox.MirrorReady). A full sync lowers it page by page.
	MirrorHorizon int64
}

// HorizonAll as a MirrorHorizon means the mirror holds every message: the
// full sync listed the whole mailbox.
const HorizonAll int64 = math.MinInt64

// MirrorReady reports whether the mirror can answer listings: the first
// full sync has completed (a history checkpoint, no full sync under way)
// and it recorded the mirror's horizon.
func (mb *Mailbox) MirrorReady() bool {
	return mb != nil && mb.HistoryID != 0 && mb.PendingHistoryID == 0 && mb.MirrorHorizon != 0
}

// MessageMeta is the synced metadata of one message, stored at
// mailboxes/{UserID}/messages/{ID}.
type MessageMeta struct {
	ID           string
	ThreadID     string
	Subject      string
	From         string
	Date         string
	Snippet      string
	LabelIDs     []string
	InternalDate int64
	HistoryID    uint64
}

// SweepState is where the scheduler's sweep stands, stored at
// sync_state/sweep: every active user with an id up to After has been handled
// since RoundStart, so the next run continues after After. The zero
// SweepState (After "") starts a new round.
type SweepState struct {
	// After is the user id after which the current round continues; "" means
	// from the first user.
	After string `firestore:"after"`
	// RoundStart is when the current round started: a user whose mailbox was
	// synced after it is not synced again in this round.
	RoundStart time.Time `firestore:"round_start"`
	// UpdatedAt is when the state was written (for operators; the sweep does
	// not read it).
	UpdatedAt time.Time `firestore:"updated_at"`
	// OrphansCheckedAt is when a sweep last looked at every mailbox for
	// ones without a credential (and removed them); zero = never.
	OrphansCheckedAt time.Time `firestore:"orphans_checked_at"`
}

// UpdateFunc receives the current credential (a copy, or nil when none is
// stored) and returns the credential to write, or nil to write nothing. It may
// run more than once (transactions retry), so it must not have side effects.
type UpdateFunc func(cur *Credential) (*Credential, error)

// Store is everything the functions persist. Implementations are safe for
// concurrent use.
type Store interface {
	// GetCredential returns the credential of userID, or ErrNotFound.
	GetCredential(ctx context.Context, userID string) (*Credential, error)
	// UpdateCredential runs fn in a transaction over credentials/{userID} and
	// returns what is stored afterwards (nil when nothing is). An error from fn
	// aborts the transaction and is returned unchanged. An empty userID is
	// ErrInvalidUserID.
	UpdateCredential(ctx context.Context, userID string, fn UpdateFunc) (*Credential, error)
	// DeleteCredential deletes the credential; deleting a missing one is not an error.
	DeleteCredential(ctx context.Context, userID string) error
	// ListCredentials returns up to limit credentials with the given status
	// (all when status is ""), ordered by UserID, starting after the UserID
	// `after` ("" = from the start). It is the sweep's cursor.
	ListCredentials(ctx context.Context, status, after string, limit int) ([]*Credential, error)

	// PutState stores a pending authorization under key (sha256 of the state).
	PutState(ctx context.Context, key string, st *AuthState) error
	// ConsumeState atomically reads and deletes the state under key. It returns
	// ErrNotFound when there is none (unknown or already used) and
	// ErrStateExpired when it had expired at now. Of two concurrent calls for
	// one key, exactly one succeeds.
	ConsumeState(ctx context.Context, key string, now time.Time) (*AuthState, error)

	// GetMailbox returns the sync checkpoint of userID, or ErrNotFound.
	GetMailbox(ctx context.Context, userID string) (*Mailbox, error)
	// SaveSync writes upserted messages, deletes removed ones, then writes the
	// checkpoint mb. Writes are idempotent, so a sync interrupted part-way can
	// simply run again from the previous checkpoint. When mb.Grant is set,
	// each write is made only while credentials/{userID} holds that grant,
	// checked in the same transaction; otherwise SaveSync stops with
	// ErrGrantGone. An empty userID is ErrInvalidUserID.
	SaveSync(ctx context.Context, userID string, mb *Mailbox, upserts []*MessageMeta, deletes []string) error
	// ListMailboxMessages returns up to limit synced messages of userID ordered
	// by ID, starting after the ID `after`.
	ListMailboxMessages(ctx context.Context, userID, after string, limit int) ([]*MessageMeta, error)
	// GetMailboxMessages returns the stored messages of userID among ids, in
	// the order of ids. Missing ones are left out, and an id given more than
	// once yields its message once, at its first place. No ids (or no stored
	// one) give an empty result, not an error.
	GetMailboxMessages(ctx context.Context, userID string, ids []string) ([]*MessageMeta, error)
	// DeleteMailbox deletes the checkpoint and every synced message of userID.
	DeleteMailbox(ctx context.Context, userID string) error

	// GetSweepState returns the scheduler sweep's resume point
	// (sync_state/sweep). A missing document is the zero SweepState, not an
	// error.
	GetSweepState(ctx context.Context) (SweepState, error)
	// PutSweepState writes the sweep's resume point, replacing the previous one.
	PutSweepState(ctx context.Context, st SweepState) error

	// Close releases the store's connections.
	Close() error

	// --- Gmail quota usage: the project's daily tally (gmail.Budget) ---

	// AddQuotaUsage adds units (>= 0) to the project's Gmail quota usage of
	// day, a UTC date written YYYY-MM-DD (quota_usage/{day}), and returns
	// the day's total, this addition included. Additions from many
	// instances at once are never lost.
	AddQuotaUsage(ctx context.Context, day string, units int64) (int64, error)
	// QuotaUsage returns the day's total; a day without usage is 0, not an
	// error.
	QuotaUsage(ctx context.Context, day string) (int64, error)

	// --- Security: keeping a user's data within their grant ---

	// ListMailboxIDs returns up to limit user ids that have a stored mailbox
	// checkpoint, ordered, starting after `after` ("" = from the start). The
	// sweep uses it to find mailboxes whose credential is gone.
	ListMailboxIDs(ctx context.Context, after string, limit int) ([]string, error)

	// ---- Push and events to the app (push.go in each implementation) ----

	// ChangeCredential runs fn in a transaction over credentials/{userID}
	// like UpdateCredential, and applies the change fn returns in that same
	// transaction: the credential written or deleted, the email index kept in
	// step with it, events appended to the outbox. It returns what is stored
	// afterwards (nil when nothing is). A nil change writes nothing. An error
	// from fn aborts the transaction and is returned unchanged.
	// UpdateCredential and DeleteCredential are ChangeCredential without
	// events.
	ChangeCredential(ctx context.Context, userID string, fn ChangeFunc) (*Credential, error)
	// UserIDByEmail returns the user whose credential has email (compared
	// without case), through the index kept with the credentials, or
	// ErrNotFound.
	UserIDByEmail(ctx context.Context, email string) (string, error)
	// SaveSyncEvents is SaveSync that also appends events to the outbox. The
	// events are committed no later than the checkpoint, so a checkpoint is
	// never saved without the events of the changes it covers; a sync
	// interrupted before the checkpoint runs again from the previous one and
	// writes the same events again (same ids, so each is stored once).
	SaveSyncEvents(ctx context.Context, userID string, mb *Mailbox, upserts []*MessageMeta, deletes []string, events []*OutboxEvent) error
	// ListOutbox returns up to limit events not yet published, oldest first
	// (by Seq): userID's, or every user's when userID is "". A limit <= 0
	// means no limit.
	ListOutbox(ctx context.Context, userID string, limit int) ([]*OutboxEvent, error)
	// DeleteOutbox deletes published events by id; unknown ids are ignored.
	DeleteOutbox(ctx context.Context, ids []string) error
	// ClaimSync takes userID's sync lease for owner until now+ttl, unless
	// another owner holds an unexpired one. Either way historyID (a mailbox
	// history id some caller wants synced; 0 = none) is recorded in the
	// lease, so the holder syncs again when it finishes (see FinishSync). It
	// reports whether owner now holds the lease.
	ClaimSync(ctx context.Context, userID, owner string, historyID uint64, now time.Time, ttl time.Duration) (bool, error)
	// FinishSync ends owner's round of syncing userID, which brought the
	// mirror to history id synced. When a caller meanwhile wanted a later
	// history id, owner keeps the lease until now+ttl and FinishSync reports
	// true: sync again. Otherwise the lease is released and the wanted
	// history id cleared (synced covers it). A lease owner no longer holds is
	// left alone (false).
	FinishSync(ctx context.Context, userID, owner string, synced uint64, now time.Time, ttl time.Duration) (bool, error)
	// --- The mirror: the read path over the synced messages (see MirrorQuery) ---

	// ListMirror returns up to q.Limit synced messages of userID that match
	// q, in Gmail's listing order: newest InternalDate first, and for equal
	// dates the greater ID first. It reads only what it returns (plus
	// nothing when it returns nothing): a caller pays for the documents it
	// gets. A limit <= 0 means no limit.
	ListMirror(ctx context.Context, userID string, q MirrorQuery) ([]*MessageMeta, error)
	// CountMirror returns how many synced messages of userID match q
	// (q.After included), counting at most q.Limit of them (a limit <= 0
	// means no limit).
	CountMirror(ctx context.Context, userID string, q MirrorQuery) (int, error)
}

// ErrInvalidDay is returned for a quota usage day that is not a date
// written YYYY-MM-DD, and for negative units.
var ErrInvalidDay = errors.New("store: quota usage day must be a date YYYY-MM-DD and units must not be negative")

// CheckQuotaUsage validates the arguments of AddQuotaUsage and QuotaUsage.
func CheckQuotaUsage(day string, units int64) error {
	if _, err := time.Parse(time.DateOnly, day); err != nil || len(day) != len(time.DateOnly) || units < 0 {
		return ErrInvalidDay
	}
	return nil
}

// CredentialChange is what a ChangeFunc decides: the credential to write
// (nil = keep the current one) or Delete, and events to append to the
// outbox in the same transaction.
type CredentialChange struct {
	Credential *Credential
	// Delete deletes the credential and its email index entry.
	Delete bool
	// Events are appended to the outbox with the change.
	Events []*OutboxEvent
	// Reindex writes the email index entry of the stored credential even
	// when its email did not change (credentials stored before the index
	// existed).
	Reindex bool
}

// ChangeFunc receives the current credential (a copy, or nil when none is
// stored) and returns the change to make, or nil for none. It may run more
// than once (transactions retry), so it must not have side effects.
type ChangeFunc func(cur *Credential) (*CredentialChange, error)

// OutboxEvent is an event to the app waiting to be published, stored at
// outbox/{ID} (its event id, so writing one again stores it once).
type OutboxEvent struct {
	ID     string
	UserID string
	Type   string
	// Body is the JSON published.
	Body []byte
	// Seq orders the outbox: it is assigned by the store when the event is
	// written, increasing with every write, so a user's events (written one
	// sync at a time) are drained in the order they happened.
	Seq       int64
	CreatedAt time.Time
}

// Clone returns a deep copy of e.
func (e *OutboxEvent) Clone() *OutboxEvent {
	if e == nil {
		return nil
	}
	d := *e
	d.Body = append([]byte(nil), e.Body...)
	return &d
}

// EmailKey is the email index's key of an address: the SHA-256 (hex) of the
// address trimmed and lower-cased, so the index holds no address in clear.
func EmailKey(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:])
}

// MirrorQuery selects synced messages for a listing. The filters are the
// ones a store can serve from an index: one label, the spam and trash
// exclusion, a lower bound on the date and a cursor; further labels are
// the caller's to filter.
type MirrorQuery struct {
	// Label, when set, keeps only messages carrying this label id.
	Label string
	// ExcludeSpamTrash leaves out messages labelled SPAM or TRASH.
	ExcludeSpamTrash bool
	// Since keeps only messages whose InternalDate is at or after it (ms);
	// 0 keeps every message (internal dates are positive).
	Since int64
	// After, when set, starts the listing strictly after this position.
	After *MirrorCursor
	// Limit bounds the messages returned (or counted); <= 0 means no limit.
	Limit int
}

// MirrorCursor is a position in the mirror's listing order: where the
// message with this InternalDate and ID is (or would be). ID "" is the
// position after every message of that date.
type MirrorCursor struct {
	InternalDate int64
	ID           string
}

// Passed reports whether a listing that has reached c has already passed
// m: in listing order (newest first, then greater ID first) m is at c or
// before it.
func (c MirrorCursor) Passed(m *MessageMeta) bool {
	return m.InternalDate > c.InternalDate || m.InternalDate == c.InternalDate && m.ID >= c.ID
}

// InSpamOrTrash reports whether labels include SPAM or TRASH: such messages
// are left out of a listing unless it asks for them.
func InSpamOrTrash(labels []string) bool {
	for _, l := range labels {
		if l == LabelSpam || l == LabelTrash {
			return true
		}
	}
	return false
}

// The labels Gmail keeps out of a listing by default.
const (
	LabelSpam  = "SPAM"
	LabelTrash = "TRASH"
)
