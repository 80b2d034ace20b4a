package fsstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"cloud.google.com/go/firestore"

	"example.com/gmailoauth/internal/store"
)

// Collections of push and the events to the app.
//
// ListOutbox of one user filters on user_id and orders by seq, which needs
// the composite index (user_id ASC, seq ASC) declared in
// terraform/firestore.tf; every user's outbox orders by seq alone (an
// automatic single-field index).
const (
	EmailIndexCollection = "credential_emails"
	OutboxCollection     = "outbox"
	SyncLeaseCollection  = "sync_leases"
)

// emailIndexDoc is an email index entry, at credential_emails/{EmailKey}.
type emailIndexDoc struct {
	UserID string `firestore:"user_id"`
}

// outboxDoc is the stored form of store.OutboxEvent, at outbox/{ID}.
type outboxDoc struct {
	UserID    string    `firestore:"user_id"`
	Type      string    `firestore:"type"`
	Body      []byte    `firestore:"body"`
	Seq       int64     `firestore:"seq"`
	CreatedAt time.Time `firestore:"created_at"`
}

// leaseDoc is a user's sync lease, at sync_leases/{sub}.
type leaseDoc struct {
	Owner     string    `firestore:"owner"`
	Until     time.Time `firestore:"until"`
	Wanted    int64     `firestore:"wanted_history_id"`
	UpdatedAt time.Time `firestore:"updated_at"`
}

func (s *Store) emailRef(email string) *firestore.DocumentRef {
	return s.client.Collection(EmailIndexCollection).Doc(store.EmailKey(email))
}

func (s *Store) outboxRef(id string) *firestore.DocumentRef {
	return s.client.Collection(OutboxCollection).Doc(id)
}

func (s *Store) leaseRef(userID string) *firestore.DocumentRef {
	return s.client.Collection(SyncLeaseCollection).Doc(userID)
}

// lastSeq is the last outbox sequence number this process handed out.
var lastSeq atomic.Int64

// seqBatch reserves n consecutive outbox sequence numbers: the wall clock
// in microseconds times 1024, increasing within the process. A user's
// events are written one sync at a time (the sync lease), milliseconds
// apart at least, so their numbers increase across instances too unless
// the instances' clocks disagree by more than that.
func seqBatch(n int) int64 {
	for {
		last := lastSeq.Load()
		next := max(time.Now().UnixMicro()*1024, last+1)
		if lastSeq.CompareAndSwap(last, next+int64(n)-1) {
			return next
		}
	}
}

// outboxWrites returns the writes that append events to the outbox.
func (s *Store) outboxWrites(events []*store.OutboxEvent) ([]write, error) {
	if len(events) == 0 {
		return nil, nil
	}
	first, now := seqBatch(len(events)), time.Now().UTC()
	out := make([]write, 0, len(events))
	for i, e := range events {
		if err := checkID(e.ID); err != nil {
			return nil, fmt.Errorf("fsstore: outbox event: %w", err)
		}
		out = append(out, write{s.outboxRef(e.ID), &outboxDoc{UserID: e.UserID, Type: e.Type, Body: e.Body, Seq: first + int64(i), CreatedAt: now}})
	}
	return out, nil
}

// ChangeCredential implements store.Store. fn runs inside a Firestore
// transaction (pessimistic: the read locks the document until commit) and
// runs again when the transaction is retried. Calls for one user from this
// Store take turns, so fn must not call the Store itself.
func (s *Store) ChangeCredential(ctx context.Context, userID string, fn store.ChangeFunc) (*store.Credential, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	unlock, err := s.locks.lock(ctx, CredentialsCollection+"/"+userID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ref := s.credRef(userID)
	var (
		out   *store.Credential
		fnErr error
	)
	err = s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		out, fnErr = nil, nil
		cur, err := getCredentialTx(tx, ref)
		if err != nil {
			return err
		}
		ch, err := fn(cur.Clone())
		if err != nil {
			fnErr = err
			return err
		}
		if ch == nil {
			out = cur
			return nil
		}
		events, err := s.outboxWrites(ch.Events)
		if err != nil {
			return err
		}
		// Reads first (a transaction reads before it writes): does the
		// index entry of the current address point at this user?
		moved := cur != nil && cur.Email != "" &&
			(ch.Delete || ch.Credential != nil && store.EmailKey(ch.Credential.Email) != store.EmailKey(cur.Email))
		unindex := false
		if moved {
			if unindex, err = s.indexPointsAt(tx, cur.Email, userID); err != nil {
				return err
			}
		}
		if out, err = s.writeChange(tx, ref, userID, cur, ch, moved); err != nil {
			return err
		}
		if unindex {
			if err := tx.Delete(s.emailRef(cur.Email)); err != nil {
				return err
			}
		}
		for _, w := range events {
			if err := tx.Set(w.ref, w.data); err != nil {
				return err
			}
		}
		return nil
	}, firestore.MaxAttempts(txAttempts))
	if fnErr != nil {
		return nil, fnErr
	}
	if err != nil {
		return nil, mapErr(ctx, "change credential", err)
	}
	return out.Clone(), nil
}

// getCredentialTx reads the credential at ref in tx, or nil when there is none.
func getCredentialTx(tx *firestore.Transaction, ref *firestore.DocumentRef) (*store.Credential, error) {
	snap, err := tx.Get(ref)
	switch {
	case isNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return decodeCredential(snap)
}

// indexPointsAt reports whether the address index entry of email names userID.
func (s *Store) indexPointsAt(tx *firestore.Transaction, email, userID string) (bool, error) {
	snap, err := tx.Get(s.emailRef(email))
	switch {
	case isNotFound(err):
		return false, nil
	case err != nil:
		return false, err
	}
	var d emailIndexDoc
	return snap.DataTo(&d) == nil && d.UserID == userID, nil
}

// writeChange writes ch of the credential cur at ref in tx (the delete, or
// the new credential and its address index entry) and returns the
// credential that results. moved says the address changed or goes away.
func (s *Store) writeChange(tx *firestore.Transaction, ref *firestore.DocumentRef, userID string, cur *store.Credential, ch *store.CredentialChange, moved bool) (*store.Credential, error) {
	switch {
	case ch.Delete:
		if cur != nil {
			return nil, tx.Delete(ref)
		}
		return nil, nil
	case ch.Credential != nil:
		out := stored(ch.Credential, userID)
		if err := tx.Set(ref, out); err != nil {
			return nil, err
		}
		if out.Email != "" && (cur == nil || moved || ch.Reindex) {
			if err := tx.Set(s.emailRef(out.Email), &emailIndexDoc{UserID: userID}); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	if cur != nil && cur.Email != "" && ch.Reindex {
		if err := tx.Set(s.emailRef(cur.Email), &emailIndexDoc{UserID: userID}); err != nil {
			return nil, err
		}
	}
	return cur, nil
}

// UserIDByEmail implements store.Store.
func (s *Store) UserIDByEmail(ctx context.Context, email string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	snap, err := s.emailRef(email).Get(ctx)
	if err != nil {
		if isNotFound(err) {
			return "", store.ErrNotFound
		}
		return "", mapErr(ctx, "get email index", err)
	}
	var d emailIndexDoc
	if err := snap.DataTo(&d); err != nil {
		return "", fmt.Errorf("fsstore: decode email index: %w", err)
	}
	if d.UserID == "" {
		return "", store.ErrNotFound
	}
	return d.UserID, nil
}

// SaveSyncEvents implements store.Store: the messages, then the events,
// then the checkpoint, in commits of at most 500 writes (see SaveSync), so
// the events are committed with or before the checkpoint.
func (s *Store) SaveSyncEvents(ctx context.Context, userID string, mb *store.Mailbox, upserts []*store.MessageMeta, deletes []string, events []*store.OutboxEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ev, err := s.outboxWrites(events)
	if err != nil {
		return err
	}
	writes, err := s.syncWrites(userID, mb, upserts, deletes, ev)
	if err != nil {
		return err
	}
	return s.commitFor(ctx, "save sync", userID, mb, writes)
}

// ListOutbox implements store.Store.
func (s *Store) ListOutbox(ctx context.Context, userID string, limit int) ([]*store.OutboxEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q := s.client.Collection(OutboxCollection).Query
	if userID != "" {
		q = q.WhereEntity(firestore.PropertyFilter{Path: "user_id", Operator: "==", Value: userID})
	}
	q = q.OrderBy("seq", firestore.Asc)
	if limit > 0 {
		q = q.Limit(limit)
	}
	snaps, err := q.Documents(ctx).GetAll()
	if err != nil {
		return nil, mapErr(ctx, "list outbox", err)
	}
	out := make([]*store.OutboxEvent, 0, len(snaps))
	for _, snap := range snaps {
		var d outboxDoc
		if err := snap.DataTo(&d); err != nil {
			return nil, fmt.Errorf("fsstore: decode outbox event: %w", err)
		}
		out = append(out, &store.OutboxEvent{ID: snap.Ref.ID, UserID: d.UserID, Type: d.Type, Body: d.Body, Seq: d.Seq, CreatedAt: d.CreatedAt})
	}
	return out, nil
}

// DeleteOutbox implements store.Store.
func (s *Store) DeleteOutbox(ctx context.Context, ids []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	writes := make([]write, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if validID(id) && !seen[id] {
			seen[id] = true
			writes = append(writes, write{s.outboxRef(id), nil})
		}
	}
	return s.commit(ctx, "delete outbox", writes)
}

// leaseTx runs fn over userID's lease document in a transaction; fn returns
// the document to write, or nil for none.
func (s *Store) leaseTx(ctx context.Context, op, userID string, fn func(cur leaseDoc) (*leaseDoc, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	unlock, err := s.locks.lock(ctx, SyncLeaseCollection+"/"+userID)
	if err != nil {
		return err
	}
	defer unlock()
	ref := s.leaseRef(userID)
	var fnErr error
	err = s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		fnErr = nil
		var cur leaseDoc
		snap, err := tx.Get(ref)
		switch {
		case isNotFound(err):
		case err != nil:
			return err
		default:
			if err := snap.DataTo(&cur); err != nil {
				return fmt.Errorf("fsstore: decode sync lease: %w", err)
			}
		}
		next, err := fn(cur)
		if err != nil {
			fnErr = err
			return err
		}
		if next == nil {
			return nil
		}
		return tx.Set(ref, next)
	}, firestore.MaxAttempts(txAttempts))
	if fnErr != nil {
		return fnErr
	}
	return mapErr(ctx, op, err)
}

// ClaimSync implements store.Store.
func (s *Store) ClaimSync(ctx context.Context, userID, owner string, historyID uint64, now time.Time, ttl time.Duration) (bool, error) {
	claimed := false
	err := s.leaseTx(ctx, "claim sync lease", userID, func(cur leaseDoc) (*leaseDoc, error) {
		claimed = false
		next := cur
		next.Wanted = int64(max(uint64(cur.Wanted), historyID))
		next.UpdatedAt = now
		if cur.Owner != "" && cur.Owner != owner && now.Before(cur.Until) {
			if next.Wanted == cur.Wanted {
				return nil, nil // nothing to record
			}
			return &next, nil
		}
		next.Owner, next.Until = owner, now.Add(ttl)
		claimed = true
		return &next, nil
	})
	return claimed, err
}

// FinishSync implements store.Store.
func (s *Store) FinishSync(ctx context.Context, userID, owner string, synced uint64, now time.Time, ttl time.Duration) (bool, error) {
	again := false
	err := s.leaseTx(ctx, "finish sync lease", userID, func(cur leaseDoc) (*leaseDoc, error) {
		again = false
		if cur.Owner != owner {
			return nil, nil
		}
		next := cur
		next.UpdatedAt = now
		if uint64(cur.Wanted) > synced {
			next.Until = now.Add(ttl)
			again = true
			return &next, nil
		}
		next.Owner, next.Until, next.Wanted = "", time.Time{}, 0
		return &next, nil
	})
	return again, err
}
