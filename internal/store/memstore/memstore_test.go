package memstore_test

import (
	"testing"

	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/memstore"
	"example.com/gmailoauth/internal/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := memstore.New()
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
