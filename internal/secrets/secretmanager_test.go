package secrets_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"github.com/google/go-cmp/cmp"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/gmailoauth/internal/secrets"
	"example.com/gmailoauth/internal/secrets/smtest"
)

const (
	project = "projects/p"
	secretA = project + "/secrets/oauth-client"
	latestA = secretA + "/versions/latest"
	// payloadMarker is part of every payload the fake serves, so tests can
	// assert that no error message ever contains a payload.
	payloadMarker = "PAYLOAD-s3cr3t"
)

func payload(v string) string { return `{"marker":"` + payloadMarker + `-` + v + `"}` }

// asError returns err as a *secrets.Error or fails the test.
func asError(t *testing.T, err error) *secrets.Error {
	t.Helper()
	var se *secrets.Error
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *secrets.Error", err, err)
	}
	return se
}

func TestSecretManagerSourceVersions(t *testing.T) {
	src, fake := setup(t)
	v1 := fake.AddVersion(secretA, payload("v1"))
	v2 := fake.AddVersion(secretA, payload("v2"))

	tests := []struct {
		name string
		ref  string
		want string
	}{
		{"latest resolves to the newest version", latestA, payload("v2")},
		{"pinned version 1", v1, payload("v1")},
		{"pinned version 2", v2, payload("v2")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := src.Secret(t.Context(), tt.ref)
			if err != nil {
				t.Fatalf("Secret(%q): %v", tt.ref, err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("Secret(%q) payload mismatch (-want +got):\n%s", tt.ref, diff)
			}
			if got, want := fake.Calls(tt.ref), 1; got != want {
				t.Errorf("RPCs for %q = %d, want %d", tt.ref, got, want)
			}
		})
	}
}

func TestSecretManagerSourceErrors(t *testing.T) {
	tests := []struct {
		name     string
		ref      string
		prepare  func(f *smtest.Server, ref string)
		wantKind secrets.Kind
		wantMsg  []string // substrings of err.Error()
		wantRPCs int
	}{
		{
			name:     "secret does not exist",
			ref:      latestA,
			wantKind: secrets.NotFound,
			wantMsg:  []string{`secret "projects/p/secrets/oauth-client/versions/latest": not found (create a version with gcloud secrets versions add oauth-client --data-file=FILE)`},
			wantRPCs: 1,
		},
		{
			name:     "version does not exist",
			ref:      secretA + "/versions/9",
			prepare:  func(f *smtest.Server, _ string) { f.AddVersion(secretA, payload("v1")) },
			wantKind: secrets.NotFound,
			wantMsg:  []string{"versions/9", "not found"},
			wantRPCs: 1,
		},
		{
			name: "permission denied",
			ref:  latestA,
			prepare: func(f *smtest.Server, ref string) {
				f.AddVersion(secretA, payload("v1"))
				f.SetFail(ref, status.Error(codes.PermissionDenied, "Permission 'secretmanager.versions.access' denied"))
			},
			wantKind: secrets.PermissionDenied,
			wantMsg:  []string{"permission denied (the function's service account needs roles/secretmanager.secretAccessor on this secret)"},
			wantRPCs: 1,
		},
		{
			name: "unavailable",
			ref:  latestA,
			prepare: func(f *smtest.Server, ref string) {
				f.AddVersion(secretA, payload("v1"))
				f.SetFail(ref, status.Error(codes.Unavailable, "connection reset"))
			},
			wantKind: secrets.Unavailable,
			wantMsg:  []string{"unavailable (Secret Manager did not answer in time", "connection reset"},
			wantRPCs: 1,
		},
		{
			name: "deadline exceeded",
			ref:  latestA,
			prepare: func(f *smtest.Server, ref string) {
				f.SetFail(ref, status.Error(codes.DeadlineExceeded, "too slow"))
			},
			wantKind: secrets.Unavailable,
			wantMsg:  []string{"unavailable"},
			wantRPCs: 1,
		},
		{
			name: "server rejects the name",
			ref:  latestA,
			prepare: func(f *smtest.Server, ref string) {
				f.SetFail(ref, status.Error(codes.InvalidArgument, "bad name"))
			},
			wantKind: secrets.Invalid,
			wantMsg:  []string{"invalid", "bad name"},
			wantRPCs: 1,
		},
		{
			name: "other gRPC error",
			ref:  latestA,
			prepare: func(f *smtest.Server, ref string) {
				f.SetFail(ref, status.Error(codes.FailedPrecondition, "Secret Version is in DISABLED state"))
			},
			wantKind: secrets.Other,
			wantMsg:  []string{"could not be read", "DISABLED"},
			wantRPCs: 1,
		},
		{
			name: "CRC32C mismatch",
			ref:  latestA,
			prepare: func(f *smtest.Server, ref string) {
				f.AddVersion(secretA, payload("v1"))
				f.SetBadCRC(ref)
			},
			wantKind: secrets.Invalid,
			wantMsg:  []string{"invalid", "CRC32C checksum does not match"},
			wantRPCs: 1,
		},
		{
			name: "empty payload",
			ref:  latestA,
			prepare: func(f *smtest.Server, _ string) {
				f.AddVersion(secretA, "")
			},
			wantKind: secrets.Invalid,
			wantMsg:  []string{"payload is empty"},
			wantRPCs: 1,
		},
		{name: "empty ref", ref: "", wantKind: secrets.Invalid, wantMsg: []string{`secret "": invalid: the reference is empty`}},
		{name: "file path", ref: "/etc/oauth.json", wantKind: secrets.Invalid, wantMsg: []string{"not a Secret Manager version name", "projects/PROJECT/secrets/SECRET/versions/VERSION"}},
		{name: "no version", ref: secretA, wantKind: secrets.Invalid, wantMsg: []string{`append "/versions/latest"`}},
		{name: "version zero", ref: secretA + "/versions/0", wantKind: secrets.Invalid, wantMsg: []string{`a number (1, 2, ...) or "latest"`}},
		{name: "version alias", ref: secretA + "/versions/newest", wantKind: secrets.Invalid, wantMsg: []string{`a number (1, 2, ...) or "latest"`}},
		{name: "bad secret ID", ref: project + "/secrets/a.b/versions/1", wantKind: secrets.Invalid, wantMsg: []string{"secret ID"}},
		{name: "empty project", ref: "projects//secrets/s/versions/1", wantKind: secrets.Invalid, wantMsg: []string{"project"}},
		{name: "regional secret", ref: "projects/p/locations/europe-west1/secrets/s/versions/1", wantKind: secrets.Invalid, wantMsg: []string{"regional secrets"}},
		{name: "trailing slash", ref: latestA + "/", wantKind: secrets.Invalid, wantMsg: []string{"not a Secret Manager version name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, fake := setup(t)
			if tt.prepare != nil {
				tt.prepare(fake, tt.ref)
			}
			got, err := src.Secret(t.Context(), tt.ref)
			if err == nil {
				t.Fatalf("Secret(%q) = %q, want error", tt.ref, got)
			}
			se := asError(t, err)
			if se.Kind != tt.wantKind {
				t.Errorf("Kind = %v, want %v (error: %v)", se.Kind, tt.wantKind, err)
			}
			if se.Ref != tt.ref {
				t.Errorf("Ref = %q, want %q", se.Ref, tt.ref)
			}
			msg := err.Error()
			for _, want := range tt.wantMsg {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			if strings.Contains(msg, payloadMarker) {
				t.Errorf("error %q contains the payload", msg)
			}
			if got := fake.TotalCalls(); got != tt.wantRPCs {
				t.Errorf("RPCs = %d, want %d", got, tt.wantRPCs)
			}
		})
	}
}

func TestSecretManagerSourceErrorsAreNotCached(t *testing.T) {
	src, fake := setup(t)
	fake.AddVersion(secretA, payload("v1"))
	fake.SetFailNext(latestA, status.Error(codes.Unavailable, "blip"))

	if _, err := src.Secret(t.Context(), latestA); err == nil {
		t.Fatal("first Secret: got nil error, want Unavailable")
	}
	got, err := src.Secret(t.Context(), latestA)
	if err != nil {
		t.Fatalf("second Secret: %v", err)
	}
	if diff := cmp.Diff(payload("v1"), string(got)); diff != "" {
		t.Errorf("payload mismatch (-want +got):\n%s", diff)
	}
	if got, want := fake.Calls(latestA), 2; got != want {
		t.Errorf("RPCs = %d, want %d", got, want)
	}
}

// fastRetry retries Unavailable like the client's default, but with a 1 ms
// instead of a 2 s initial backoff.
var fastRetry = gax.WithRetry(func() gax.Retryer {
	return gax.OnCodes([]codes.Code{codes.Unavailable}, gax.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 2})
})

func TestSecretManagerSourceUnavailableRetries(t *testing.T) {
	tests := []struct {
		name     string
		failures int // Unavailable answers before the fake succeeds; -1 = always
		opts     []gax.CallOption
		wantErr  bool
		minRPCs  int
	}{
		{name: "transient failures are retried by the client", failures: 2, opts: []gax.CallOption{fastRetry}, minRPCs: 3},
		{name: "persistent failure ends at the call timeout", failures: -1, opts: []gax.CallOption{fastRetry, gax.WithTimeout(300 * time.Millisecond)}, wantErr: true, minRPCs: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, fake := setup(t)
			src.WithCallOptions(tt.opts...)
			fake.AddVersion(secretA, payload("v1"))
			unavailable := status.Error(codes.Unavailable, "try again")
			if tt.failures < 0 {
				fake.SetFail(latestA, unavailable)
			} else {
				errs := make([]error, tt.failures)
				for i := range errs {
					errs[i] = unavailable
				}
				fake.SetFailNext(latestA, errs...)
			}

			start := time.Now()
			got, err := src.Secret(t.Context(), latestA)
			elapsed := time.Since(start)

			if tt.wantErr {
				if err == nil {
					t.Fatalf("Secret = %q, want error", got)
				}
				if se := asError(t, err); se.Kind != secrets.Unavailable {
					t.Errorf("Kind = %v, want %v (error: %v)", se.Kind, secrets.Unavailable, err)
				}
			} else if err != nil {
				t.Fatalf("Secret: %v", err)
			}
			if got := fake.Calls(latestA); got < tt.minRPCs {
				t.Errorf("RPCs = %d, want at least %d", got, tt.minRPCs)
			}
			if elapsed > 2*time.Second {
				t.Errorf("Secret took %v; the call options did not replace the 2 s backoff", elapsed)
			}
		})
	}
}

func TestSecretManagerSourceCachesConcurrentAndSequentialReads(t *testing.T) {
	src, fake := setup(t)
	fake.AddVersion(secretA, payload("v1"))
	// Hold the one RPC long enough for all goroutines to be waiting on it.
	fake.SetOnCall(func(context.Context, string) { time.Sleep(100 * time.Millisecond) })

	const n = 100
	start := make(chan struct{})
	results := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			b, err := src.Secret(t.Context(), latestA)
			results[i], errs[i] = string(b), err
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("concurrent Secret #%d: %v", i, errs[i])
		}
		if results[i] != payload("v1") {
			t.Fatalf("concurrent Secret #%d = %q, want %q", i, results[i], payload("v1"))
		}
	}
	for i := range n {
		b, err := src.Secret(t.Context(), latestA)
		if err != nil {
			t.Fatalf("sequential Secret #%d: %v", i, err)
		}
		if diff := cmp.Diff(payload("v1"), string(b)); diff != "" {
			t.Fatalf("sequential Secret #%d mismatch (-want +got):\n%s", i, diff)
		}
	}
	if got, want := fake.Calls(latestA), 1; got != want {
		t.Errorf("RPCs for %d concurrent + %d sequential reads = %d, want %d", n, n, got, want)
	}
}

func TestSecretManagerSourceReturnsCopies(t *testing.T) {
	src, fake := setup(t)
	fake.AddVersion(secretA, payload("v1"))
	b, err := src.Secret(t.Context(), latestA)
	if err != nil {
		t.Fatalf("Secret: %v", err)
	}
	clear(b)
	b, err = src.Secret(t.Context(), latestA)
	if err != nil {
		t.Fatalf("Secret: %v", err)
	}
	if diff := cmp.Diff(payload("v1"), string(b)); diff != "" {
		t.Errorf("cached payload changed after the caller modified its copy (-want +got):\n%s", diff)
	}
}

func TestSecretManagerSourceWithoutChecksum(t *testing.T) {
	src, fake := setup(t)
	fake.SetNoCRC(true)
	fake.AddVersion(secretA, payload("v1"))
	b, err := src.Secret(t.Context(), latestA)
	if err != nil {
		t.Fatalf("Secret without data_crc32c: %v", err)
	}
	if diff := cmp.Diff(payload("v1"), string(b)); diff != "" {
		t.Errorf("payload mismatch (-want +got):\n%s", diff)
	}
}

func TestSecretManagerSourceRefresh(t *testing.T) {
	tests := []struct {
		name        string
		ref         string
		wantBefore  string
		wantAfter   string
		refreshRef  string
		wantRPCsEnd int
	}{
		{name: "latest picks up a new version", ref: latestA, wantBefore: payload("v1"), wantAfter: payload("v2"), refreshRef: latestA, wantRPCsEnd: 2},
		{name: "pinned version is read again", ref: secretA + "/versions/1", wantBefore: payload("v1"), wantAfter: payload("v1"), refreshRef: secretA + "/versions/1", wantRPCsEnd: 2},
		{name: "refreshing another ref keeps the cache", ref: latestA, wantBefore: payload("v1"), wantAfter: payload("v1"), refreshRef: secretA + "/versions/1", wantRPCsEnd: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, fake := setup(t)
			fake.AddVersion(secretA, payload("v1"))
			read := func(when string) string {
				t.Helper()
				b, err := src.Secret(t.Context(), tt.ref)
				if err != nil {
					t.Fatalf("Secret %s: %v", when, err)
				}
				return string(b)
			}
			if got := read("before rotation"); got != tt.wantBefore {
				t.Errorf("before rotation: got %q, want %q", got, tt.wantBefore)
			}
			fake.AddVersion(secretA, payload("v2"))
			if got := read("after rotation, before Refresh"); got != tt.wantBefore {
				t.Errorf("after rotation, before Refresh: got %q, want cached %q", got, tt.wantBefore)
			}
			src.Refresh(tt.refreshRef)
			if got := read("after Refresh"); got != tt.wantAfter {
				t.Errorf("after Refresh: got %q, want %q", got, tt.wantAfter)
			}
			read("again")
			if got := fake.Calls(tt.ref); got != tt.wantRPCsEnd {
				t.Errorf("RPCs = %d, want %d", got, tt.wantRPCsEnd)
			}
		})
	}
}

func TestSecretManagerSourceRefreshDuringRead(t *testing.T) {
	src, fake := setup(t)
	fake.AddVersion(secretA, payload("v1"))
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	fake.SetOnCall(func(ctx context.Context, _ string) {
		select {
		case started <- struct{}{}:
			<-release
		default:
		}
	})

	type result struct {
		b   []byte
		err error
	}
	first := make(chan result, 1)
	go func() {
		b, err := src.Secret(t.Context(), latestA)
		first <- result{b, err}
	}()
	<-started
	// The secret rotates and the caller refreshes while the first read is
	// still in flight: its (old) answer must not land in the cache.
	fake.AddVersion(secretA, payload("v2"))
	src.Refresh(latestA)
	close(release)
	r := <-first
	if r.err != nil {
		t.Fatalf("in-flight Secret: %v", r.err)
	}
	if got, want := string(r.b), payload("v1"); got != want {
		t.Errorf("in-flight Secret = %q, want %q", got, want)
	}
	b, err := src.Secret(t.Context(), latestA)
	if err != nil {
		t.Fatalf("Secret after Refresh: %v", err)
	}
	if got, want := string(b), payload("v2"); got != want {
		t.Errorf("Secret after Refresh = %q, want %q", got, want)
	}
	if got, want := fake.Calls(latestA), 2; got != want {
		t.Errorf("RPCs = %d, want %d", got, want)
	}
}

func TestSecretManagerSourceCallerContext(t *testing.T) {
	tests := []struct {
		name     string
		ctx      func(t *testing.T) (context.Context, context.CancelFunc)
		cancel   bool // cancel the context after the caller has joined the read
		wantKind secrets.Kind
		wantErr  error
	}{
		{
			name:     "canceled",
			ctx:      func(t *testing.T) (context.Context, context.CancelFunc) { return context.WithCancel(t.Context()) },
			cancel:   true,
			wantKind: secrets.Other,
			wantErr:  context.Canceled,
		},
		{
			name: "deadline exceeded",
			ctx: func(t *testing.T) (context.Context, context.CancelFunc) {
				return context.WithTimeout(t.Context(), 50*time.Millisecond)
			},
			wantKind: secrets.Unavailable,
			wantErr:  context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, fake := setup(t)
			fake.AddVersion(secretA, payload("v1"))
			started := make(chan struct{}, 1)
			release := make(chan struct{})
			fake.SetOnCall(func(context.Context, string) {
				started <- struct{}{}
				<-release
			})

			// A patient caller starts the read; an impatient one joins it
			// and gives up when its context ends.
			patient := make(chan error, 1)
			go func() {
				_, err := src.Secret(t.Context(), latestA)
				patient <- err
			}()
			<-started

			ctx, cancel := tt.ctx(t)
			defer cancel()
			impatient := make(chan error, 1)
			go func() {
				_, err := src.Secret(ctx, latestA)
				impatient <- err
			}()
			if tt.cancel {
				cancel()
			}
			var err error
			select {
			case err = <-impatient:
			case <-time.After(5 * time.Second):
				t.Fatal("impatient caller did not return after its context ended")
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("impatient caller error = %v, want %v", err, tt.wantErr)
			}
			if se := asError(t, err); se.Kind != tt.wantKind {
				t.Errorf("Kind = %v, want %v", se.Kind, tt.wantKind)
			}

			close(release)
			if err := <-patient; err != nil {
				t.Errorf("patient caller: %v, want the payload", err)
			}
			if got, want := fake.Calls(latestA), 1; got != want {
				t.Errorf("RPCs = %d, want %d", got, want)
			}
		})
	}
}

func TestSecretManagerSourceLazyClient(t *testing.T) {
	src, fake := setup(t)
	fake.AddVersion(secretA, payload("v1"))
	var creations atomic.Int32
	src.SetNewClient(func(ctx context.Context, opts ...option.ClientOption) (*secretmanager.Client, error) {
		if creations.Add(1) == 1 {
			return nil, errors.New("could not find default credentials")
		}
		return secretmanager.NewClient(ctx, opts...)
	})
	if got := creations.Load(); got != 0 {
		t.Fatalf("client created %d times before the first read, want 0", got)
	}

	_, err := src.Secret(t.Context(), latestA)
	if err == nil {
		t.Fatal("first Secret: got nil error, want the client creation failure")
	}
	if se := asError(t, err); se.Kind != secrets.Other {
		t.Errorf("Kind = %v, want %v", se.Kind, secrets.Other)
	}
	if want := "creating the Secret Manager client: could not find default credentials"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if got := fake.TotalCalls(); got != 0 {
		t.Errorf("RPCs after failed client creation = %d, want 0", got)
	}

	for i := range 3 {
		b, err := src.Secret(t.Context(), secretA+"/versions/1")
		if err != nil {
			t.Fatalf("Secret #%d after failed creation: %v", i, err)
		}
		if diff := cmp.Diff(payload("v1"), string(b)); diff != "" {
			t.Errorf("payload mismatch (-want +got):\n%s", diff)
		}
	}
	if got, want := creations.Load(), int32(2); got != want {
		t.Errorf("client creations = %d, want %d (one failure, then one success reused)", got, want)
	}
}

func TestNewSecretManagerSourceDoesNoIO(t *testing.T) {
	// No endpoint, no credentials: construction, Refresh and Close must not
	// look for either.
	src := secrets.NewSecretManagerSource()
	src.Refresh(latestA)
	if err := src.Close(); err != nil {
		t.Errorf("Close of an unused source: %v", err)
	}
}

func TestSecretManagerSourceClosed(t *testing.T) {
	src, fake := setup(t)
	fake.AddVersion(secretA, payload("v1"))
	if _, err := src.Secret(t.Context(), latestA); err != nil {
		t.Fatalf("Secret: %v", err)
	}
	if err := src.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := src.Secret(t.Context(), latestA); err != nil {
		t.Errorf("cached Secret after Close: %v", err)
	}
	_, err := src.Secret(t.Context(), secretA+"/versions/1")
	if err == nil {
		t.Fatal("uncached Secret after Close: got nil error")
	}
	if se := asError(t, err); se.Kind != secrets.Other || !strings.Contains(err.Error(), "closed") {
		t.Errorf("uncached Secret after Close: %v (Kind %v), want Kind Other mentioning closed", err, se.Kind)
	}
}
