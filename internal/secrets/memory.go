package secrets

import (
	"bytes"
	"context"
	"errors"
)

// Memory is a Source serving payloads held in memory, keyed by reference:
// the local runner's generated sandbox client, and tests. A missing
// reference is an *Error of Kind NotFound.
type Memory map[string][]byte

var _ Source = Memory(nil)

// Secret implements Source.
func (m Memory) Secret(ctx context.Context, ref string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, contextError(ref, err)
	}
	b, ok := m[ref]
	if !ok {
		return nil, &Error{Ref: ref, Kind: NotFound, Err: errors.New("not in memory")}
	}
	return bytes.Clone(b), nil
}

// Refresh implements Source; a Memory has nothing cached.
func (m Memory) Refresh(string) {}
