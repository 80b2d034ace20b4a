package fsstore

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/gmailoauth/internal/store"
)

// indexTable is terraform/firestore-indexes.json, which Terraform turns
// into google_firestore_index resources.
const indexTable = "../../../terraform/firestore-indexes.json"

// TestIndexesMatchQueries holds the composite indexes Terraform declares
// equal to the ones the mirror's queries need: the Firestore emulator
// serves any query without an index, so only this test notices a query
// that production would refuse (FAILED_PRECONDITION: the query requires an
// index), or an index nothing uses any more.
func TestIndexesMatchQueries(t *testing.T) {
	data, err := os.ReadFile(filepath.FromSlash(indexTable))
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		About   string `json:"about"`
		Indexes []struct {
			Collection string       `json:"collection"`
			Query      string       `json:"query"`
			Fields     []IndexField `json:"fields"`
		} `json:"indexes"`
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&table); err != nil {
		t.Fatalf("%s: %v", indexTable, err)
	}
	declared := map[string][]IndexField{}
	for _, ix := range table.Indexes {
		if ix.Collection != MessagesCollection || ix.Query == "" {
			t.Errorf("%s: index %v: want collection %q and a query description", indexTable, ix.Fields, MessagesCollection)
		}
		declared[key(ix.Fields)] = ix.Fields
	}
	if len(declared) != len(table.Indexes) {
		t.Errorf("%s declares an index twice", indexTable)
	}

	// Every shape of query ListMirror and CountMirror make.
	needed := map[string][]IndexField{}
	for _, label := range []string{"", "INBOX"} {
		for _, exclude := range []bool{false, true} {
			for _, since := range []int64{0, 1} {
				for _, after := range []*store.MirrorCursor{nil, {InternalDate: 1, ID: "m"}} {
					q := store.MirrorQuery{Label: label, ExcludeSpamTrash: exclude, Since: since, After: after, Limit: 10}
					if f := mirrorIndex(q); f != nil {
						needed[key(f)] = f
					}
				}
			}
		}
	}
	for k, f := range needed {
		if _, ok := declared[k]; !ok {
			t.Errorf("the query needs an index %s does not declare: %v", indexTable, f)
		}
	}
	for k, f := range declared {
		if _, ok := needed[k]; !ok {
			t.Errorf("%s declares an index no query uses: %v", indexTable, f)
		}
	}
	// The last field of each index is the order of the listing.
	for _, f := range needed {
		if diff := cmp.Diff(IndexField{FieldPath: fieldInternalDate, Order: "DESCENDING"}, f[len(f)-1]); diff != "" {
			t.Errorf("index %v does not end with the listing's order: %s", f, diff)
		}
	}
}

func key(fs []IndexField) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.FieldPath + ":" + f.Order + f.ArrayConfig
	}
	return strings.Join(parts, ",")
}

// TestMissingIndexIsUnavailable: while an index is missing or building,
// Firestore refuses the query with FAILED_PRECONDITION; the store answers
// ErrUnavailable (503, retry) rather than an internal error.
func TestMissingIndexIsUnavailable(t *testing.T) {
	err := mirrorErr(t.Context(), "list mirror", status.Error(codes.FailedPrecondition, "The query requires an index."))
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("got %v, want store.ErrUnavailable", err)
	}
	if err := mirrorErr(t.Context(), "list mirror", status.Error(codes.InvalidArgument, "bad")); errors.Is(err, store.ErrUnavailable) {
		t.Errorf("an invalid argument is not unavailable: %v", err)
	}
}
