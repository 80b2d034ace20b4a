package secrets

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
)

// errEmpty is the reason given for an empty file or payload.
var errEmpty = errors.New("the payload is empty")

// FileSource is a Source that reads local files; a reference is a file path.
// Each file is read once and cached until Refresh forgets it. The zero value
// is ready to use, and a FileSource is safe for concurrent use.
type FileSource struct {
	mu    sync.Mutex
	cache map[string][]byte
}

var _ Source = (*FileSource)(nil)

// NewFileSource returns an empty FileSource.
func NewFileSource() *FileSource { return &FileSource{} }

// Secret returns the contents of the file ref, reading it on the first call
// and from the cache afterwards. A missing file is an *Error of Kind
// NotFound, an unreadable one PermissionDenied, an empty one Invalid.
func (f *FileSource) Secret(ctx context.Context, ref string) ([]byte, error) {
	if ref == "" {
		return nil, &Error{Ref: ref, Kind: Invalid, Err: errors.New("the file path is empty")}
	}
	f.mu.Lock()
	b, ok := f.cache[ref]
	f.mu.Unlock()
	if ok {
		return bytes.Clone(b), nil
	}
	if err := ctx.Err(); err != nil {
		return nil, contextError(ref, err)
	}
	b, err := os.ReadFile(ref)
	if err != nil {
		return nil, fileError(ref, err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, &Error{Ref: ref, Kind: Invalid, Err: errEmpty}
	}
	f.mu.Lock()
	if f.cache == nil {
		f.cache = make(map[string][]byte)
	}
	f.cache[ref] = b
	f.mu.Unlock()
	return bytes.Clone(b), nil
}

// Refresh forgets the cached contents of ref, so the next Secret reads the
// file again.
func (f *FileSource) Refresh(ref string) {
	f.mu.Lock()
	delete(f.cache, ref)
	f.mu.Unlock()
}
