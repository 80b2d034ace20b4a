package syncer

import (
	"context"
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

// StoreCursor keeps the cursor durably in the store's sweep state
// (sync_state/sweep in Firestore), so every function instance sees it. It is
// the Syncer's default.
type StoreCursor struct {
	Store store.Store
	// Now stamps the state's UpdatedAt; nil means time.Now.
	Now func() time.Time
}

// LoadCursor implements CursorStore. A missing state is the zero Cursor.
func (c *StoreCursor) LoadCursor(ctx context.Context) (Cursor, error) {
	st, err := c.Store.GetSweepState(ctx)
	if err != nil {
		return Cursor{}, err
	}
	return Cursor{After: st.After, RoundStart: st.RoundStart}, nil
}

// SaveCursor implements CursorStore.
func (c *StoreCursor) SaveCursor(ctx context.Context, cur Cursor) error {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	return c.Store.PutSweepState(ctx, store.SweepState{After: cur.After, RoundStart: cur.RoundStart, UpdatedAt: now()})
}
