// Package apperr holds the errors the functions answer with: a stable machine
// code from the HTTP contract, a message that is safe to show a person, and,
// where the fix is to go through consent again, the URL that does it.
//
// Domain packages (oauthflow, mailbox, syncer, ...) return *Error values and
// know nothing of HTTP. The HTTP layer (internal/httpx) holds the one table
// that maps each Code to a status and a default Retry-After. Callers inspect
// errors with CodeOf or errors.As, as with *oauth2.RetrieveError.
package apperr

import (
	"errors"
	"fmt"
	"time"
)

// Code is a stable machine code of the HTTP contract. The values are part of
// the public API: frontends switch on them.
type Code string

// The contract's codes. Every code here is documented in docs/openapi.yaml;
// internal/apidoc keeps the two lists equal.
const (
	// Request problems.
	InvalidRequest       Code = "invalid_request"        // a parameter is missing, repeated or malformed
	InvalidJSON          Code = "invalid_json"           // the body is not the expected JSON object
	UnsupportedMediaType Code = "unsupported_media_type" // the body is not application/json
	RequestTooLarge      Code = "request_too_large"      // the body is over the limit
	QueryTooLong         Code = "query_too_long"         // the query string is over the limit
	MethodNotAllowed     Code = "method_not_allowed"     // the method is not served on this path
	OriginNotAllowed     Code = "origin_not_allowed"     // a CORS preflight from an origin not allow-listed
	InvalidReturnTo      Code = "invalid_return_to"      // return_to is not an allow-listed URL
	InvalidPageToken     Code = "invalid_page_token"     // forged, altered, another user's or another listing's page token

	// The OAuth callback.
	InvalidState       Code = "invalid_state"       // unknown, malformed or already used state
	ExpiredState       Code = "expired_state"       // the authorization took longer than the state's lifetime
	MissingCode        Code = "missing_code"        // the callback carries no authorization code
	InvalidGrant       Code = "invalid_grant"       // the code was refused by the token endpoint
	InvalidIDToken     Code = "invalid_id_token"    // the ID token does not verify or does not match the authorization
	AccessDenied       Code = "access_denied"       // the user declined consent
	AuthorizationError Code = "authorization_error" // the provider answered another error=
	NoRefreshToken     Code = "no_refresh_token"    // no refresh token was returned and none is stored
	InsufficientScope  Code = "insufficient_scope"  // Gmail read access was not granted

	// Sessions and grants.
	MissingSession          Code = "missing_session"          // no Authorization: Bearer session
	InvalidSession          Code = "invalid_session"          // the session does not verify or has expired
	ReauthorizationRequired Code = "reauthorization_required" // the grant is gone or revoked: consent again

	// The scheduler.
	SchedulerDisabled Code = "scheduler_disabled" // scheduled sync is not configured
	MissingToken      Code = "missing_token"      // no OIDC token
	InvalidToken      Code = "invalid_token"      // the OIDC token does not verify
	Forbidden         Code = "forbidden"          // a valid token of another identity
	UnknownUser       Code = "unknown_user"       // no grant is stored for the user id

	// The mirror.
	MirrorNotReady Code = "mirror_not_ready" // source=mirror before the user's first sync completed

	// Capacity and dependencies.
	RateLimited         Code = "rate_limited"         // a quota or limit of this user or of the project is spent
	Unavailable         Code = "unavailable"          // storage or a secret could not be reached
	UpstreamUnavailable Code = "upstream_unavailable" // Google did not answer in time
	UpstreamError       Code = "upstream_error"       // Google answered with an error it should not have
	Misconfigured       Code = "misconfigured"        // the instance's configuration or secrets are wrong
	Internal            Code = "internal"             // a bug; nothing is said
)

// NoRetry as an Error's RetryAfter means: do not tell the caller to retry.
const NoRetry time.Duration = -1

// codes lists every Code above, for Codes.
var codes = []Code{
	InvalidRequest, InvalidJSON, UnsupportedMediaType, RequestTooLarge, QueryTooLong, MethodNotAllowed,
	OriginNotAllowed, InvalidReturnTo, InvalidPageToken,
	InvalidState, ExpiredState, MissingCode, InvalidGrant, InvalidIDToken, AccessDenied, AuthorizationError,
	NoRefreshToken, InsufficientScope,
	MissingSession, InvalidSession, ReauthorizationRequired,
	SchedulerDisabled, MissingToken, InvalidToken, Forbidden, UnknownUser,
	MirrorNotReady,
	RateLimited, Unavailable, UpstreamUnavailable, UpstreamError, Misconfigured, Internal,
}

// Codes returns every code of the contract.
func Codes() []Code { return append([]Code(nil), codes...) }

// Error is a failure with its code. Message is safe to show to a user;
// Cause is for logs only (the HTTP layer scrubs and logs it, never sends it).
type Error struct {
	Code    Code
	Message string
	// AuthorizationURL, when set, sends the user through consent again.
	AuthorizationURL string
	// RetryAfter, when positive, is how long the caller should wait before
	// trying again, when the domain knows (a quota budget, say); zero lets
	// the HTTP layer use the code's default; NoRetry says that repeating
	// the same request cannot succeed (the fix is to start again).
	RetryAfter time.Duration
	Cause      error
}

// Error returns the code and message, and the cause when there is one.
func (e *Error) Error() string {
	if e.Cause != nil {
		return string(e.Code) + ": " + e.Message + ": " + e.Cause.Error()
	}
	return string(e.Code) + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// New returns an *Error with code and message.
func New(code Code, message string) *Error { return &Error{Code: code, Message: message} }

// Errorf returns an *Error with code and a formatted message. Unlike
// fmt.Errorf it does not wrap: the message is shown to users.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with code and message whose cause is err.
func Wrap(code Code, message string, err error) *Error {
	return &Error{Code: code, Message: message, Cause: err}
}

// As returns the first *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// CodeOf returns the code of the first *Error in err's chain: "" for a nil
// error, Internal for an error that carries no code.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	if e := As(err); e != nil {
		return e.Code
	}
	return Internal
}

// Temporary reports whether err is worth trying again later: storage or
// Google did not answer, or a quota is spent for now.
func Temporary(err error) bool {
	switch CodeOf(err) {
	case Unavailable, UpstreamUnavailable, RateLimited:
		return true
	}
	return false
}

// Is reports whether err carries code.
func Is(err error, code Code) bool { return CodeOf(err) == code }
