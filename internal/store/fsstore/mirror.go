package fsstore

import (
	"context"
	"fmt"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/gmailoauth/internal/store"
)

// The fields of a message document the mirror's listings query.
const (
	fieldLabelIDs     = "label_ids"
	fieldSpamOrTrash  = "spam_or_trash"
	fieldInternalDate = "internal_date"
)

// filter is one equality or array-contains filter of a mirror query.
type filter struct {
	path  string
	op    string // "==" or "array-contains"
	value any
}

// mirrorFilters returns the filters of q other than the date range, in the
// order the query applies them and the composite index lists them.
func mirrorFilters(q store.MirrorQuery) []filter {
	var f []filter
	if q.Label != "" {
		f = append(f, filter{fieldLabelIDs, "array-contains", q.Label})
	}
	if q.ExcludeSpamTrash {
		f = append(f, filter{fieldSpamOrTrash, "==", false})
	}
	return f
}

// IndexField is one field of a composite index, as
// terraform/firestore-indexes.json declares it (the google_firestore_index
// resource's fields block).
type IndexField struct {
	FieldPath   string `json:"field_path"`
	Order       string `json:"order,omitempty"`        // ASCENDING or DESCENDING
	ArrayConfig string `json:"array_config,omitempty"` // CONTAINS
}

// mirrorIndex returns the fields of the composite index the messages
// collection needs for q, or nil when Firestore's automatic single-field
// index on internal_date serves it (a date range and an order on that
// field alone; the index ends with the document name in the same
// direction). It is derived from mirrorFilters, so the query and the index
// cannot drift apart.
func mirrorIndex(q store.MirrorQuery) []IndexField {
	fs := mirrorFilters(q)
	if len(fs) == 0 {
		return nil
	}
	out := make([]IndexField, 0, len(fs)+1)
	for _, f := range fs {
		if f.op == "array-contains" {
			out = append(out, IndexField{FieldPath: f.path, ArrayConfig: "CONTAINS"})
		} else {
			out = append(out, IndexField{FieldPath: f.path, Order: "ASCENDING"})
		}
	}
	return append(out, IndexField{FieldPath: fieldInternalDate, Order: "DESCENDING"})
}

// mirrorQuery builds q over userID's messages: the filters, the date
// range, Gmail's order (internal_date descending, then the document ID
// descending) and the cursor; no limit.
func (s *Store) mirrorQuery(userID string, q store.MirrorQuery) firestore.Query {
	fq := s.messagesCol(userID).Query
	for _, f := range mirrorFilters(q) {
		fq = fq.Where(f.path, f.op, f.value)
	}
	if q.Since != 0 {
		fq = fq.Where(fieldInternalDate, ">=", q.Since)
	}
	if q.After != nil && q.After.ID == "" {
		// After every message of that date: older ones only (a cursor
		// needs a value for each order, and no document ID is "").
		fq = fq.Where(fieldInternalDate, "<", q.After.InternalDate)
	}
	fq = fq.OrderBy(fieldInternalDate, firestore.Desc).OrderBy(firestore.DocumentID, firestore.Desc)
	if q.After != nil && q.After.ID != "" {
		fq = fq.StartAfter(q.After.InternalDate, q.After.ID)
	}
	return fq
}

// mirrorErr is mapErr for the mirror's queries, which also answer
// FAILED_PRECONDITION while a composite index they need is missing or still
// building (after a deploy): that is store.ErrUnavailable, a 503 to retry,
// and the cause (Firestore names the index) goes to the logs.
func mirrorErr(ctx context.Context, op string, err error) error {
	if status.Code(err) == codes.FailedPrecondition {
		return fmt.Errorf("fsstore: %s: a composite index is missing or still building (terraform/firestore-indexes.json): %w: %w",
			op, store.ErrUnavailable, err)
	}
	return mapErr(ctx, op, err)
}

// validCursor reports whether a cursor's ID is "" or could be a document
// ID: only such positions can be put to Firestore.
func validCursor(q store.MirrorQuery) bool {
	return q.After == nil || q.After.ID == "" || validID(q.After.ID)
}

// ListMirror implements store.Store: one query, q.Limit documents at most,
// each read once.
func (s *Store) ListMirror(ctx context.Context, userID string, q store.MirrorQuery) ([]*store.MessageMeta, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validID(userID) {
		return nil, nil // no such user can exist
	}
	if !validCursor(q) {
		return nil, fmt.Errorf("fsstore: list mirror: cursor: %w", errInvalidID)
	}
	fq := s.mirrorQuery(userID, q)
	if q.Limit > 0 {
		fq = fq.Limit(q.Limit)
	}
	snaps, err := fq.Documents(ctx).GetAll()
	if err != nil {
		return nil, mirrorErr(ctx, "list mirror", err)
	}
	return decodeAll(snaps, decodeMessage)
}

// CountMirror implements store.Store with a count aggregation over the
// same query (Firestore bills one read per batch of up to 1,000 matching
// index entries).
func (s *Store) CountMirror(ctx context.Context, userID string, q store.MirrorQuery) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if !validID(userID) {
		return 0, nil
	}
	if !validCursor(q) {
		return 0, fmt.Errorf("fsstore: count mirror: cursor: %w", errInvalidID)
	}
	fq := s.mirrorQuery(userID, q)
	if q.Limit > 0 {
		fq = fq.Limit(q.Limit)
	}
	res, err := fq.NewAggregationQuery().WithCount("n").Get(ctx)
	if err != nil {
		return 0, mirrorErr(ctx, "count mirror", err)
	}
	v, ok := res["n"].(*firestorepb.Value)
	if !ok {
		return 0, fmt.Errorf("fsstore: count mirror: unexpected result %T", res["n"])
	}
	return int(v.GetIntegerValue()), nil
}
