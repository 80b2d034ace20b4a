package secrets_test

import (
	"context"
	"hash/crc32"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"example.com/gmailoauth/internal/secrets"
)

// fakeSecretManager is an in-process Secret Manager: it serves
// AccessSecretVersion from versions, resolving "latest" to the newest one,
// and counts calls per requested name.
type fakeSecretManager struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer

	mu sync.Mutex
	// versions maps "projects/P/secrets/S" to its payloads; version N is
	// versions[S][N-1].
	versions map[string][][]byte
	// fail maps a requested name to the error every call for it returns.
	fail map[string]error
	// failNext maps a requested name to errors returned (and consumed) one
	// per call before fail or versions are consulted.
	failNext map[string][]error
	// badCRC makes the checksum sent for a requested name wrong.
	badCRC map[string]bool
	// noCRC makes the fake omit data_crc32c.
	noCRC bool
	// onCall, if set, runs at the start of every call, outside mu.
	onCall func(ctx context.Context, name string)
	calls  map[string]int
}

func newFake() *fakeSecretManager {
	return &fakeSecretManager{
		versions: make(map[string][][]byte),
		fail:     make(map[string]error),
		failNext: make(map[string][]error),
		badCRC:   make(map[string]bool),
		calls:    make(map[string]int),
	}
}

// addVersion adds a version with payload to secret ("projects/P/secrets/S")
// and returns its version name.
func (f *fakeSecretManager) addVersion(secret, payload string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.versions[secret] = append(f.versions[secret], []byte(payload))
	return secret + "/versions/" + strconv.Itoa(len(f.versions[secret]))
}

func (f *fakeSecretManager) setFail(name string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[name] = err
}

func (f *fakeSecretManager) setFailNext(name string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[name] = errs
}

func (f *fakeSecretManager) setBadCRC(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.badCRC[name] = true
}

func (f *fakeSecretManager) setOnCall(fn func(ctx context.Context, name string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onCall = fn
}

// callCount returns the number of calls for name.
func (f *fakeSecretManager) callCount(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

// totalCalls returns the number of calls for any name.
func (f *fakeSecretManager) totalCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AccessSecretVersion answers from versions, fail and failNext. It resolves
// the answer first and then runs onCall, so a test that blocks in onCall
// holds an answer that is already decided.
func (f *fakeSecretManager) AccessSecretVersion(ctx context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	f.mu.Lock()
	f.calls[req.GetName()]++
	onCall := f.onCall
	resp, err := f.resolve(req.GetName())
	f.mu.Unlock()
	if onCall != nil {
		onCall(ctx, req.GetName())
	}
	return resp, err
}

// resolve computes the answer for name; f.mu must be held.
func (f *fakeSecretManager) resolve(name string) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	if q := f.failNext[name]; len(q) > 0 {
		f.failNext[name] = q[1:]
		return nil, q[0]
	}
	if err := f.fail[name]; err != nil {
		return nil, err
	}
	secret, version, ok := strings.Cut(name, "/versions/")
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "invalid resource field value in the request: name")
	}
	vs := f.versions[secret]
	if len(vs) == 0 {
		return nil, status.Errorf(codes.NotFound, "Secret [%s] not found or has no versions.", secret)
	}
	n := len(vs)
	if version != "latest" {
		var err error
		if n, err = strconv.Atoi(version); err != nil || n < 1 || n > len(vs) {
			return nil, status.Errorf(codes.NotFound, "Secret Version [%s] not found.", name)
		}
	}
	data := vs[n-1]
	payload := &secretmanagerpb.SecretPayload{Data: data}
	if !f.noCRC {
		crc := int64(crc32.Checksum(data, castagnoli))
		if f.badCRC[name] {
			crc++
		}
		payload.DataCrc32C = &crc
	}
	return &secretmanagerpb.AccessSecretVersionResponse{
		Name:    secret + "/versions/" + strconv.Itoa(n),
		Payload: payload,
	}, nil
}

// noRetry disables the client's retries, so a failing call returns at once
// instead of backing off for 2 s and more.
var noRetry = gax.WithRetry(func() gax.Retryer { return nil })

// setup starts a fake Secret Manager on a 127.0.0.1 gRPC listener and returns
// a SecretManagerSource whose real client talks to it, with retries disabled.
// Both are stopped when the test ends.
func setup(t *testing.T) (*secrets.SecretManagerSource, *fakeSecretManager) {
	t.Helper()
	fake := newFake()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer()
	secretmanagerpb.RegisterSecretManagerServiceServer(srv, fake)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	src := secrets.NewSecretManagerSource(
		option.WithEndpoint(lis.Addr().String()),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	).WithCallOptions(noRetry, gax.WithTimeout(10*time.Second))
	t.Cleanup(func() {
		if err := src.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return src, fake
}
