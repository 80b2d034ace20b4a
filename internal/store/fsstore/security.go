package fsstore

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/firestore"

	"example.com/gmailoauth/internal/store"
)

// checkUserID is checkID for a user id a write names: an empty one is
// store.ErrInvalidUserID (every store refuses it), any other unusable one
// errInvalidID.
func checkUserID(id string) error {
	if id == "" {
		return fmt.Errorf("fsstore: %w", store.ErrInvalidUserID)
	}
	return checkID(id)
}

// errGrantGone ends a guarded commit's transaction when the grant is gone.
var errGrantGone = errors.New("fsstore: grant gone")

// commitFor applies a SaveSync's writes: as commit does when mb names no
// grant, else each commit in a transaction that first reads
// credentials/{userID} and writes nothing unless it still holds mb.Grant.
// The read joins the transaction, so a disconnect (which deletes the
// credential, then the mailbox) is ordered after or before each commit as
// a whole: what a commit wrote before the delete, the mailbox deletion that
// follows it removes; after it, nothing is written.
func (s *Store) commitFor(ctx context.Context, op, userID string, mb *store.Mailbox, writes []write) error {
	if mb == nil || mb.Grant == "" {
		return s.commit(ctx, op, writes)
	}
	ref := s.credRef(userID)
	for len(writes) > 0 {
		n := min(len(writes), maxWritesPerCommit)
		chunk := writes[:n]
		writes = writes[n:]
		err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			snap, err := tx.Get(ref)
			switch {
			case isNotFound(err):
				return errGrantGone
			case err != nil:
				return err
			}
			if g, _ := snap.DataAt("grant"); g != mb.Grant {
				return errGrantGone
			}
			return applyWrites(tx, chunk)
		}, firestore.MaxAttempts(txAttempts))
		switch {
		case errors.Is(err, errGrantGone):
			return fmt.Errorf("fsstore: %s: %w", op, store.ErrGrantGone)
		case err != nil:
			return mapErr(ctx, op, err)
		}
	}
	return nil
}

// ListMailboxIDs implements store.Store. It reads the checkpoint documents
// without their fields.
func (s *Store) ListMailboxIDs(ctx context.Context, after string, limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q := s.client.Collection(MailboxesCollection).Select().OrderBy(firestore.DocumentID, firestore.Asc)
	if after != "" {
		if checkID(after) != nil {
			return nil, fmt.Errorf("fsstore: list mailboxes: %w", errInvalidID)
		}
		q = q.StartAfter(after)
	}
	if limit > 0 {
		q = q.Limit(limit)
	}
	snaps, err := q.Documents(ctx).GetAll()
	if err != nil {
		return nil, mapErr(ctx, "list mailboxes", err)
	}
	ids := make([]string, len(snaps))
	for i, snap := range snaps {
		ids[i] = snap.Ref.ID
	}
	return ids, nil
}
