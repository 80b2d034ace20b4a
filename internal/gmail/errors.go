package gmail

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/api/googleapi"
)

// Kind sorts Gmail failures by what the caller should do about them.
type Kind int

// Kinds of *Error.
const (
	KindOther        Kind = iota
	KindUnauthorized      // 401: the access token is not accepted
	KindForbidden         // 403 insufficientPermissions: a scope is missing
	KindRateLimited       // 429, 403 rateLimitExceeded/userRateLimitExceeded, or a *BudgetError
	KindBadRequest        // 400: a bad q or page token
	KindNotFound          // 404
	KindUnavailable       // 5xx, timeouts, network
)

var kindNames = map[Kind]string{
	KindOther: "other", KindUnauthorized: "unauthorized", KindForbidden: "forbidden",
	KindRateLimited: "rate_limited", KindBadRequest: "bad_request", KindNotFound: "not_found",
	KindUnavailable: "unavailable",
}

// String returns the kind's name, such as "rate_limited".
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is a failed Gmail call. Its message names the status and reason,
// never the response body. Callers inspect it with errors.As or KindOf.
type Error struct {
	Kind   Kind
	Status int    // the HTTP status; 0 when no answer came
	Reason string // the first error reason Gmail gave, such as "rateLimitExceeded"
	// RetryAfter is the wait Gmail asked for (Retry-After), if any.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	switch {
	case e.Status == 0:
		return "gmail: " + e.Kind.String() + ": " + e.Err.Error()
	case e.Reason != "":
		return fmt.Sprintf("gmail %d %s (%s)", e.Status, e.Kind, e.Reason)
	}
	return fmt.Sprintf("gmail %d %s", e.Status, e.Kind)
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of a failed call: the *Error's, KindRateLimited
// for a *BudgetError (the call was not sent), KindUnavailable for an error
// without an answer from Gmail (network, timeout), KindOther for nil.
func KindOf(err error) Kind {
	if err == nil {
		return KindOther
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	var be *BudgetError
	if errors.As(err, &be) {
		return KindRateLimited
	}
	return KindUnavailable
}

// wrap turns an error of the Gmail client library into an *Error.
func wrap(err error, now time.Time) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var be *BudgetError
	if errors.As(err, &be) { // the transport did not send the call
		return &Error{Kind: KindRateLimited, RetryAfter: be.Wait, Err: be}
	}
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		return &Error{Kind: KindUnavailable, Err: err}
	}
	reasons := make([]string, 0, len(ge.Errors))
	for _, it := range ge.Errors {
		reasons = append(reasons, it.Reason)
	}
	out := &Error{Status: ge.Code, Err: err}
	if len(reasons) > 0 {
		out.Reason = reasons[0]
	}
	out.Kind = classifyStatus(ge.Code, reasons)
	if out.Kind == KindRateLimited || out.Kind == KindUnavailable {
		out.RetryAfter = ParseRetryAfter(ge.Header.Get("Retry-After"), now)
	}
	return out
}

// classifyStatus is the one classification of a Gmail answer, used for the
// client library's errors and for raw answers in the transport.
func classifyStatus(status int, reasons []string) Kind {
	switch {
	case status == http.StatusUnauthorized:
		return KindUnauthorized
	case isRateLimit(status, reasons):
		return KindRateLimited
	case status == http.StatusForbidden:
		return KindForbidden
	case status == http.StatusBadRequest:
		return KindBadRequest
	case status == http.StatusNotFound:
		return KindNotFound
	case status >= 500:
		return KindUnavailable
	}
	return KindOther
}

// isRateLimit reports whether an answer says a quota is spent: 429, or 403
// with reason rateLimitExceeded (the project's) or userRateLimitExceeded
// (the user's).
func isRateLimit(status int, reasons []string) bool {
	if status == http.StatusTooManyRequests {
		return true
	}
	if status != http.StatusForbidden {
		return false
	}
	for _, r := range reasons {
		if r == "rateLimitExceeded" || r == "userRateLimitExceeded" {
			return true
		}
	}
	return false
}

// maxRetryAfter caps a Retry-After, so a huge value cannot overflow a
// time.Duration or park a caller for days.
const maxRetryAfter = 24 * time.Hour

// ParseRetryAfter parses a Retry-After header (seconds, or an HTTP date
// read against now); it returns 0 for none or an unusable value, and caps
// the wait at a day.
func ParseRetryAfter(s string, now time.Time) time.Duration {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if at, err := http.ParseTime(s); err == nil {
		return min(max(0, at.Sub(now)), maxRetryAfter)
	}
	return 0
}
