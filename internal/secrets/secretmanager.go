package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"sync"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"github.com/googleapis/gax-go/v2"
	"golang.org/x/sync/singleflight"
	"google.golang.org/api/option"
)

// crc32c is the Castagnoli table Secret Manager uses for payload checksums.
var crc32c = crc32.MakeTable(crc32.Castagnoli)

var (
	errChecksum = errors.New("the payload's CRC32C checksum does not match (corrupted in transit; a later read will try again)")
	errClosed   = errors.New("the SecretManagerSource is closed")
)

// SecretManagerSource is a Source that reads secret versions from Google
// Secret Manager; a reference is a version name such as
// "projects/P/secrets/S/versions/3" or "projects/P/secrets/S/versions/latest".
//
// The client is created on the first read, never at construction, so a
// SecretManagerSource can be built in init or in a constructor without I/O;
// if creating it fails, the next read tries again. Each reference is read
// once and cached, "latest" included, until Refresh forgets it; concurrent
// first reads of one reference share a single AccessSecretVersion call. A
// SecretManagerSource is safe for concurrent use.
type SecretManagerSource struct {
	opts      []option.ClientOption
	newClient func(context.Context, ...option.ClientOption) (*secretmanager.Client, error)

	clientMu sync.Mutex // guards client, closed and callOpts
	client   *secretmanager.Client
	closed   bool
	callOpts []gax.CallOption

	mu    sync.Mutex // guards cache and gen
	cache map[string][]byte
	gen   map[string]uint64 // bumped by Refresh so in-flight reads do not refill the cache

	group singleflight.Group
}

var _ Source = (*SecretManagerSource)(nil)

// NewSecretManagerSource returns a SecretManagerSource whose client will be
// created with opts on the first read. It does no I/O.
func NewSecretManagerSource(opts ...option.ClientOption) *SecretManagerSource {
	return &SecretManagerSource{
		opts:      opts,
		newClient: secretmanager.NewClient,
		cache:     make(map[string][]byte),
		gen:       make(map[string]uint64),
	}
}

// WithCallOptions adds gax call options to every AccessSecretVersion call s
// makes and returns s. They are applied after the client's defaults, so
// gax.WithRetry or gax.WithTimeout here replace the default retry policy
// (Unavailable and ResourceExhausted, 2 s initial backoff) or the 60 s
// timeout; tests use it to avoid waiting for retries.
func (s *SecretManagerSource) WithCallOptions(opts ...gax.CallOption) *SecretManagerSource {
	s.clientMu.Lock()
	s.callOpts = append(s.callOpts, opts...)
	s.clientMu.Unlock()
	return s
}

// Secret returns the payload of the secret version ref. The first read of ref
// calls AccessSecretVersion and verifies the payload's CRC32C checksum when
// Secret Manager sends one; later reads are served from the cache until
// Refresh(ref). Failures are *Error values: a malformed ref or a bad payload
// is Invalid, and gRPC NotFound, PermissionDenied and Unavailable or
// DeadlineExceeded map to the kinds of the same name. If ctx ends first,
// Secret returns early while the shared read goes on for other callers.
func (s *SecretManagerSource) Secret(ctx context.Context, ref string) ([]byte, error) {
	if _, err := parseVersionName(ref); err != nil {
		return nil, &Error{Ref: ref, Kind: Invalid, Err: err}
	}
	s.mu.Lock()
	b, ok := s.cache[ref]
	s.mu.Unlock()
	if ok {
		return bytes.Clone(b), nil
	}
	// The read runs detached from this caller's cancellation, because other
	// callers may be waiting for the same result; the call options' timeout
	// (60 s by default) bounds it.
	fetchCtx := context.WithoutCancel(ctx)
	ch := s.group.DoChan(ref, func() (any, error) { return s.fetch(fetchCtx, ref) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return bytes.Clone(r.Val.([]byte)), nil
	case <-ctx.Done():
		return nil, contextError(ref, ctx.Err())
	}
}

// Refresh forgets the cached payload of ref, so the next Secret calls Secret
// Manager again (and, for "latest", picks up a rotated version). A read of ref
// already in flight completes for its callers but does not refill the cache.
func (s *SecretManagerSource) Refresh(ref string) {
	s.mu.Lock()
	delete(s.cache, ref)
	s.gen[ref]++
	s.mu.Unlock()
	s.group.Forget(ref)
}

// Close closes the client, if one was created. Reads after Close are served
// from the cache or fail with Kind Other.
func (s *SecretManagerSource) Close() error {
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	s.closed = true
	if s.client == nil {
		return nil
	}
	err := s.client.Close()
	s.client = nil
	return err
}

// fetch reads ref from Secret Manager and caches it unless Refresh(ref) was
// called meanwhile. It runs at most once at a time per ref.
func (s *SecretManagerSource) fetch(ctx context.Context, ref string) (any, error) {
	s.mu.Lock()
	if b, ok := s.cache[ref]; ok {
		// A flight that ended between the caller's cache check and
		// DoChan already stored it.
		s.mu.Unlock()
		return b, nil
	}
	gen := s.gen[ref]
	s.mu.Unlock()

	client, callOpts, err := s.getClient(ctx)
	if err != nil {
		return nil, &Error{Ref: ref, Kind: Other, Err: err}
	}
	resp, err := client.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: ref}, callOpts...)
	if err != nil {
		return nil, rpcError(ref, err)
	}
	payload := resp.GetPayload()
	data := payload.GetData()
	if want := payload.DataCrc32C; want != nil && int64(crc32.Checksum(data, crc32c)) != *want {
		return nil, &Error{Ref: ref, Kind: Invalid, Err: errChecksum}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &Error{Ref: ref, Kind: Invalid, Err: errEmpty}
	}

	s.mu.Lock()
	if s.gen[ref] == gen {
		s.cache[ref] = data
	}
	s.mu.Unlock()
	return data, nil
}

// getClient returns the client, creating it on first use, and a copy of the
// call options. A failed creation is not remembered, so the next call tries
// again.
func (s *SecretManagerSource) getClient(ctx context.Context) (*secretmanager.Client, []gax.CallOption, error) {
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	if s.closed {
		return nil, nil, errClosed
	}
	if s.client == nil {
		c, err := s.newClient(ctx, s.opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("creating the Secret Manager client: %w", err)
		}
		s.client = c
	}
	return s.client, append([]gax.CallOption(nil), s.callOpts...), nil
}

// parseVersionName checks that ref is a global Secret Manager version name,
// "projects/PROJECT/secrets/SECRET/versions/VERSION" with VERSION a number or
// "latest", and returns SECRET.
func parseVersionName(ref string) (secretID string, err error) {
	const want = `want "projects/PROJECT/secrets/SECRET/versions/VERSION" with VERSION a number or "latest"`
	if ref == "" {
		return "", errors.New("the reference is empty; " + want)
	}
	parts := strings.Split(ref, "/")
	if len(parts) == 4 && parts[0] == "projects" && parts[2] == "secrets" {
		return "", errors.New(`the reference names a secret but no version; append "/versions/latest" or a version number`)
	}
	if len(parts) >= 4 && parts[0] == "projects" && parts[2] == "locations" {
		return "", errors.New("regional secrets (projects/P/locations/L/...) are not supported; " + want)
	}
	if len(parts) != 6 || parts[0] != "projects" || parts[2] != "secrets" || parts[4] != "versions" {
		return "", errors.New("the reference is not a Secret Manager version name; " + want)
	}
	project, secret, version := parts[1], parts[3], parts[5]
	if !validProject(project) {
		return "", errors.New("the project must be a project ID or number; " + want)
	}
	if !validSecretID(secret) {
		return "", errors.New("the secret ID must be 1 to 255 letters, digits, '-' or '_'; " + want)
	}
	if version != "latest" && !validVersionNumber(version) {
		return "", errors.New("the version must be a number (1, 2, ...) or \"latest\"; " + want)
	}
	return secret, nil
}

// validProject reports whether p looks like a project ID (lower-case letters,
// digits, hyphens, and for legacy domain-scoped projects '.' and ':') or a
// project number.
func validProject(p string) bool {
	if p == "" {
		return false
	}
	for _, r := range p {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.', r == ':':
		default:
			return false
		}
	}
	return true
}

// validSecretID reports whether s is a valid secret ID.
func validSecretID(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

// validVersionNumber reports whether v is a positive decimal number without
// leading zeros.
func validVersionNumber(v string) bool {
	if v == "" || v[0] == '0' {
		return false
	}
	for _, r := range v {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
