package syncer

import (
	"context"
	"errors"
	"sync"
	"time"

	"example.com/gmailoauth/internal/store"
)

// Cursor is where a sweep round stands: every active user with an id up to
// After has been handled since RoundStart. The zero Cursor starts a round.
type Cursor struct {
	After      string
	RoundStart time.Time
}

// CursorStore keeps the sweep cursor between runs.
type CursorStore interface {
	LoadCursor(ctx context.Context) (Cursor, error)
	SaveCursor(ctx context.Context, c Cursor) error
}

// MemoryCursor keeps the cursor in the instance's memory: enough for tests
// and local runs, not across function instances.
type MemoryCursor struct {
	mu sync.Mutex
	c  Cursor
}

// LoadCursor implements CursorStore.
func (m *MemoryCursor) LoadCursor(context.Context) (Cursor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.c, nil
}

// SaveCursor implements CursorStore.
func (m *MemoryCursor) SaveCursor(_ context.Context, c Cursor) error {
	m.mu.Lock()
	m.c = c
	m.mu.Unlock()
	return nil
}

// DefaultCursorDoc is the reserved mailbox document MailboxCursor uses. User
// ids are Google "sub" values (digits only), so it cannot clash with a user.
const DefaultCursorDoc = "_sweep_cursor"

// MailboxCursor keeps the cursor durably in the store without a dedicated
// Store method: in the reserved mailbox document mailboxes/{Doc}, with the
// cursor in full_sync_page_token and the round start in last_sync_at. It is
// a stopgap until the Store has a method for the sweep's own state.
type MailboxCursor struct {
	Store store.Store
	Doc   string // "" = DefaultCursorDoc
}

func (m *MailboxCursor) doc() string {
	if m.Doc != "" {
		return m.Doc
	}
	return DefaultCursorDoc
}

// LoadCursor implements CursorStore.
func (m *MailboxCursor) LoadCursor(ctx context.Context) (Cursor, error) {
	mb, err := m.Store.GetMailbox(ctx, m.doc())
	if errors.Is(err, store.ErrNotFound) {
		return Cursor{}, nil
	}
	if err != nil {
		return Cursor{}, err
	}
	return Cursor{After: mb.FullSyncPageToken, RoundStart: mb.LastSyncAt}, nil
}

// SaveCursor implements CursorStore.
func (m *MailboxCursor) SaveCursor(ctx context.Context, c Cursor) error {
	return m.Store.SaveSync(ctx, m.doc(), &store.Mailbox{FullSyncPageToken: c.After, LastSyncAt: c.RoundStart}, nil, nil)
}
