// Package smtest provides an in-process fake Secret Manager for tests: a gRPC
// server that answers AccessSecretVersion from versions the test adds, can be
// told to fail, corrupt or omit checksums, or be switched off, and counts the
// calls it receives.
package smtest

import (
	"context"
	"hash/crc32"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Server is an in-process Secret Manager: it serves AccessSecretVersion from
// the versions added with AddVersion, resolving "latest" to the newest one,
// and counts calls per requested name. Create one with NewServer or Start;
// its methods are safe for concurrent use.
type Server struct {
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
	// noCRC makes the server omit data_crc32c.
	noCRC bool
	// down makes every call fail with Unavailable, before anything else is
	// consulted.
	down bool
	// onCall, if set, runs at the start of every call, outside mu.
	onCall func(ctx context.Context, name string)
	calls  map[string]int
}

// NewServer returns a Server with no secrets that is not yet registered on
// any gRPC server; most tests want Start instead.
func NewServer() *Server {
	return &Server{
		versions: make(map[string][][]byte),
		fail:     make(map[string]error),
		failNext: make(map[string][]error),
		badCRC:   make(map[string]bool),
		calls:    make(map[string]int),
	}
}

// Start starts a new Server on a 127.0.0.1 gRPC listener, stops it when the
// test ends, and returns it with the client options that connect a Secret
// Manager client to it (endpoint, no authentication, insecure transport).
func Start(t testing.TB) (*Server, []option.ClientOption) {
	t.Helper()
	s := NewServer()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer()
	secretmanagerpb.RegisterSecretManagerServiceServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return s, []option.ClientOption{
		option.WithEndpoint(lis.Addr().String()),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// AddVersion adds a version with payload to secret ("projects/P/secrets/S")
// and returns its version name.
func (s *Server) AddVersion(secret, payload string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.versions[secret] = append(s.versions[secret], []byte(payload))
	return secret + "/versions/" + strconv.Itoa(len(s.versions[secret]))
}

// SetFail makes every call for the requested name return err; a nil err
// clears it.
func (s *Server) SetFail(name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[name] = err
}

// SetFailNext makes the next len(errs) calls for the requested name return
// errs in order, before SetFail or the versions are consulted. It replaces
// any errors still queued for name.
func (s *Server) SetFailNext(name string, errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext[name] = errs
}

// SetBadCRC makes the checksum sent for the requested name wrong.
func (s *Server) SetBadCRC(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.badCRC[name] = true
}

// SetNoCRC makes the server omit data_crc32c from every payload while omit
// is true.
func (s *Server) SetNoCRC(omit bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noCRC = omit
}

// SetDown switches the server off (every call, for any name, fails with
// Unavailable) or back on. Calls are still counted while it is down.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// SetOnCall makes fn run at the start of every call, after its answer is
// decided and outside the server's lock; nil removes it.
func (s *Server) SetOnCall(fn func(ctx context.Context, name string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCall = fn
}

// Calls returns the number of calls for name.
func (s *Server) Calls(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[name]
}

// TotalCalls returns the number of calls for any name.
func (s *Server) TotalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AccessSecretVersion answers from the server's state. It resolves the answer
// first and then runs the SetOnCall function, so a test that blocks there
// holds an answer that is already decided.
func (s *Server) AccessSecretVersion(ctx context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	s.mu.Lock()
	s.calls[req.GetName()]++
	onCall := s.onCall
	resp, err := s.resolve(req.GetName())
	s.mu.Unlock()
	if onCall != nil {
		onCall(ctx, req.GetName())
	}
	return resp, err
}

// resolve computes the answer for name; s.mu must be held.
func (s *Server) resolve(name string) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	if s.down {
		return nil, status.Error(codes.Unavailable, "backend unavailable")
	}
	if q := s.failNext[name]; len(q) > 0 {
		s.failNext[name] = q[1:]
		return nil, q[0]
	}
	if err := s.fail[name]; err != nil {
		return nil, err
	}
	secret, version, ok := strings.Cut(name, "/versions/")
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "invalid resource field value in the request: name")
	}
	vs := s.versions[secret]
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
	if !s.noCRC {
		crc := int64(crc32.Checksum(data, castagnoli))
		if s.badCRC[name] {
			crc++
		}
		payload.DataCrc32C = &crc
	}
	return &secretmanagerpb.AccessSecretVersionResponse{
		Name:    secret + "/versions/" + strconv.Itoa(n),
		Payload: payload,
	}, nil
}
