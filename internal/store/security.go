package store

import "errors"

// Errors of the store's security rules. Callers compare with errors.Is.
var (
	// ErrInvalidUserID means a write named no user. Every store refuses an
	// empty user id: a grant or mailbox stored under it would be shared by
	// every login the provider failed to name.
	ErrInvalidUserID = errors.New("store: empty user id")
	// ErrGrantGone means SaveSync wrote nothing because the grant the sync
	// runs for (Mailbox.Grant) is no longer stored: the user disconnected,
	// or disconnected and connected again, meanwhile.
	ErrGrantGone = errors.New("store: the grant this sync runs for is gone")
)
