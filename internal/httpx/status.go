package httpx

import (
	"net/http"
	"time"

	"example.com/gmailoauth/internal/apperr"
)

// answer is how the contract answers one code.
type answer struct {
	status int
	// retryAfter is the Retry-After sent when the error does not carry its
	// own (0 = none).
	retryAfter time.Duration
}

// RetryUnavailable is the one Retry-After of every "try again shortly"
// answer: storage, secrets or Google did not answer in time.
const RetryUnavailable = 5 * time.Second

// statuses is the contract's one table from code to status (and default
// Retry-After). A code missing here is a provider's own error= code passed
// through by the callback, answered 400.
var statuses = map[apperr.Code]answer{
	apperr.InvalidRequest:       {status: http.StatusBadRequest},
	apperr.InvalidJSON:          {status: http.StatusBadRequest},
	apperr.UnsupportedMediaType: {status: http.StatusUnsupportedMediaType},
	apperr.RequestTooLarge:      {status: http.StatusRequestEntityTooLarge},
	apperr.QueryTooLong:         {status: http.StatusRequestURITooLong},
	apperr.MethodNotAllowed:     {status: http.StatusMethodNotAllowed},
	apperr.OriginNotAllowed:     {status: http.StatusForbidden},
	apperr.InvalidReturnTo:      {status: http.StatusBadRequest},
	apperr.InvalidPageToken:     {status: http.StatusBadRequest},

	apperr.InvalidState:       {status: http.StatusBadRequest},
	apperr.ExpiredState:       {status: http.StatusBadRequest},
	apperr.MissingCode:        {status: http.StatusBadRequest},
	apperr.InvalidGrant:       {status: http.StatusBadRequest},
	apperr.InvalidIDToken:     {status: http.StatusBadGateway},
	apperr.AccessDenied:       {status: http.StatusForbidden},
	apperr.AuthorizationError: {status: http.StatusBadRequest},
	apperr.NoRefreshToken:     {status: http.StatusConflict},
	apperr.InsufficientScope:  {status: http.StatusForbidden},

	apperr.MissingSession:          {status: http.StatusUnauthorized},
	apperr.InvalidSession:          {status: http.StatusUnauthorized},
	apperr.ReauthorizationRequired: {status: http.StatusUnauthorized},

	apperr.SchedulerDisabled: {status: http.StatusForbidden},
	apperr.MissingToken:      {status: http.StatusUnauthorized},
	apperr.InvalidToken:      {status: http.StatusUnauthorized},
	apperr.Forbidden:         {status: http.StatusForbidden},
	apperr.UnknownUser:       {status: http.StatusNotFound},

	apperr.MirrorNotReady: {status: http.StatusConflict},

	apperr.RateLimited:         {status: http.StatusTooManyRequests, retryAfter: 10 * time.Second},
	apperr.Unavailable:         {status: http.StatusServiceUnavailable, retryAfter: RetryUnavailable},
	apperr.UpstreamUnavailable: {status: http.StatusServiceUnavailable, retryAfter: RetryUnavailable},
	apperr.UpstreamError:       {status: http.StatusBadGateway},
	apperr.Misconfigured:       {status: http.StatusInternalServerError},
	apperr.Internal:            {status: http.StatusInternalServerError},
}

// Status returns the HTTP status of code and the Retry-After to send with it
// when the error carries none (0 = no header).
func Status(code apperr.Code) (int, time.Duration) {
	if a, ok := statuses[code]; ok {
		return a.status, a.retryAfter
	}
	return http.StatusBadRequest, 0
}
