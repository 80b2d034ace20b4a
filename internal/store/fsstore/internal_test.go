package fsstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/gmailoauth/internal/store"
)

func TestMapErr(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name            string
		ctx             context.Context
		err             error
		wantUnavailable bool
		wantNotFound    bool
		wantAlso        error // must also be in the chain
	}{
		{"nil", context.Background(), nil, false, false, nil},
		{"Unavailable", context.Background(), status.Error(codes.Unavailable, "conn refused"), true, false, nil},
		{"DeadlineExceeded", context.Background(), status.Error(codes.DeadlineExceeded, "slow"), true, false, nil},
		{"Aborted", context.Background(), status.Error(codes.Aborted, "Transaction lock timeout."), true, false, nil},
		{"ResourceExhausted", context.Background(), status.Error(codes.ResourceExhausted, "quota"), true, false, nil},
		{"NotFound", context.Background(), status.Error(codes.NotFound, "no doc"), false, true, nil},
		{"PermissionDenied", context.Background(), status.Error(codes.PermissionDenied, "iam"), false, false, nil},
		{"InvalidArgument", context.Background(), status.Error(codes.InvalidArgument, "bad"), false, false, nil},
		{"raw context deadline", context.Background(), context.DeadlineExceeded, true, false, context.DeadlineExceeded},
		{"cancelled by caller", cancelled, status.Error(codes.Canceled, "context canceled"), false, false, context.Canceled},
		{"raw cancel", cancelled, context.Canceled, false, false, context.Canceled},
		{"plain error", context.Background(), errors.New("decode"), false, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mapErr(tt.ctx, "op", tt.err)
			if tt.err == nil {
				if got != nil {
					t.Fatalf("mapErr(nil) = %v, want nil", got)
				}
				return
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("mapErr(%v) = %v, does not wrap the original error", tt.err, got)
			}
			if g := errors.Is(got, store.ErrUnavailable); g != tt.wantUnavailable {
				t.Errorf("errors.Is(%v, ErrUnavailable) = %v, want %v", got, g, tt.wantUnavailable)
			}
			if g := errors.Is(got, store.ErrNotFound); g != tt.wantNotFound {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", got, g, tt.wantNotFound)
			}
			if tt.wantAlso != nil && !errors.Is(got, tt.wantAlso) {
				t.Errorf("errors.Is(%v, %v) = false, want true", got, tt.wantAlso)
			}
			if c := status.Code(got); c != status.Code(tt.err) {
				t.Errorf("status.Code(%v) = %v, want %v (kept)", got, c, status.Code(tt.err))
			}
		})
	}
}

func TestCheckID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"109876543210987654321", true},
		{"user@example.com", true},
		{"with space", true},
		{"__x", true},
		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"__reserved__", false},
		{strings.Repeat("a", 1500), true},
		{strings.Repeat("a", 1501), false},
		{"\xff", false},
	}
	for _, tt := range tests {
		err := checkID(tt.id)
		if got := err == nil; got != tt.want {
			t.Errorf("checkID(%.20q) = %v, want ok=%v", tt.id, err, tt.want)
		}
		if err != nil && len(tt.id) > 2 && strings.Contains(err.Error(), tt.id) {
			t.Errorf("checkID error %q contains the ID", err)
		}
	}
}

func TestKeyLocks(t *testing.T) {
	var l keyLocks
	unlock, err := l.lock(context.Background(), "a")
	if err != nil {
		t.Fatalf("lock(a): %v", err)
	}
	unlockB, err := l.lock(context.Background(), "b") // another key is independent
	if err != nil {
		t.Fatalf("lock(b): %v", err)
	}
	unlockB()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.lock(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("lock(a) while held, cancelled context: got err %v, want context.Canceled", err)
	}

	got := make(chan error, 1)
	go func() {
		u, err := l.lock(context.Background(), "a")
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	if err := <-got; err != nil {
		t.Errorf("lock(a) after unlock: %v", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.m); n != 0 {
		t.Errorf("%d lock entries left, want 0: %v", n, fmt.Sprint(l.m))
	}
}
