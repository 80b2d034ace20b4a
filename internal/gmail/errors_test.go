package gmail

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"google.golang.org/api/googleapi"
)

// gerr returns a googleapi.Error as the Gmail client returns it.
func gerr(code int, reason string, header http.Header) error {
	e := &googleapi.Error{Code: code, Message: "m", Header: header}
	if reason != "" {
		e.Errors = []googleapi.ErrorItem{{Reason: reason, Message: "m"}}
	}
	return fmt.Errorf("gmail: %w", e)
}

func TestWrapClassifies(t *testing.T) {
	now := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	ra := func(v string) http.Header { return http.Header{"Retry-After": {v}} }
	tests := []struct {
		name      string
		err       error
		wantKind  Kind
		wantAfter time.Duration
	}{
		{"401", gerr(401, "authError", nil), KindUnauthorized, 0},
		{"401 ignores Retry-After", gerr(401, "", ra("5")), KindUnauthorized, 0},
		{"403 insufficientPermissions", gerr(403, "insufficientPermissions", nil), KindForbidden, 0},
		{"403 no reason", gerr(403, "", nil), KindForbidden, 0},
		{"403 rateLimitExceeded", gerr(403, "rateLimitExceeded", nil), KindRateLimited, 0},
		{"403 userRateLimitExceeded with Retry-After", gerr(403, "userRateLimitExceeded", ra("7")), KindRateLimited, 7 * time.Second},
		{"429 with Retry-After", gerr(429, "rateLimitExceeded", ra("30")), KindRateLimited, 30 * time.Second},
		{"429 with padded Retry-After", gerr(429, "", ra(" 3 ")), KindRateLimited, 3 * time.Second},
		{"429 without Retry-After", gerr(429, "", nil), KindRateLimited, 0},
		{"429 with past date", gerr(429, "", ra("Mon, 02 Jan 2006 15:04:05 GMT")), KindRateLimited, 0},
		{"429 with a date an hour ahead", gerr(429, "", ra(now.Add(time.Hour).Format(http.TimeFormat))), KindRateLimited, time.Hour},
		{"429 with a date a year ahead", gerr(429, "", ra(now.AddDate(1, 0, 0).Format(http.TimeFormat))), KindRateLimited, 24 * time.Hour},
		{"429 with garbage", gerr(429, "", ra("soon")), KindRateLimited, 0},
		{"429 with negative", gerr(429, "", ra("-5")), KindRateLimited, 0},
		{"429 with overflowing seconds", gerr(429, "", ra("99999999999")), KindRateLimited, 24 * time.Hour},
		{"400", gerr(400, "invalidArgument", nil), KindBadRequest, 0},
		{"404", gerr(404, "notFound", nil), KindNotFound, 0},
		{"500", gerr(500, "backendError", nil), KindUnavailable, 0},
		{"503 with Retry-After", gerr(503, "", ra("2")), KindUnavailable, 2 * time.Second},
		{"409", gerr(409, "", nil), KindOther, 0},
		{"network error", errors.New("dial tcp: connection refused"), KindUnavailable, 0},
		{"deadline", context.DeadlineExceeded, KindUnavailable, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := wrap(tt.err, now)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("wrap: got %T, want *Error", err)
			}
			if e.Kind != tt.wantKind || e.RetryAfter != tt.wantAfter || KindOf(err) != tt.wantKind {
				t.Errorf("wrap: got %s %v, want %s %v", e.Kind, e.RetryAfter, tt.wantKind, tt.wantAfter)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("wrap: the original error is not in the chain")
			}
		})
	}
}

// TestErrorMessageHasNoBody: the message names status and reason only.
func TestErrorMessageHasNoBody(t *testing.T) {
	ge := &googleapi.Error{Code: 403, Message: "token ya29.secret", Body: `{"error":"ya29.secret"}`,
		Errors: []googleapi.ErrorItem{{Reason: "insufficientPermissions"}}}
	got := wrap(ge, time.Now()).Error()
	if want := "gmail 403 forbidden (insufficientPermissions)"; got != want {
		t.Errorf("Error(): got %q, want %q", got, want)
	}
}
