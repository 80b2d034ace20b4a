package httpx

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/logging"
)

// maxLoggedPath caps the path a request line repeats: it comes from the
// client.
const maxLoggedPath = 256

// requestLog is what a request line says beyond the request itself: the
// failure the request ended in, if any.
type requestLog struct {
	code  apperr.Code
	cause string
	// refusedOrigin is an Origin header not allow-listed (see CORS): the
	// browser withholds the answer from that page, so the log says why.
	refusedOrigin string
}

type requestLogKey struct{}

// LogRequests wraps next so that every request ends in exactly one log line,
// the request line: method, path (never the query, which may carry a code,
// a state or a login hint), status, latency and response size, as Cloud
// Logging's httpRequest field, and, when the request failed, the error's
// code and scrubbed cause (see WriteError and NoteError). Its severity is
// the failure's (see Severity), so one failure is logged once, at one
// severity, whichever path answered it: JSON, a redirect to the frontend, or
// a panic.
//
// Latency is measured on the wall clock, like request deadlines, not on an
// injected test clock.
func LogRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rl := &requestLog{}
		r = r.WithContext(context.WithValue(r.Context(), requestLogKey{}, rl))
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			level := slog.LevelInfo
			attrs := []any{slog.Group("httpRequest",
				slog.String("requestMethod", r.Method),
				slog.String("requestUrl", loggedPath(r)),
				slog.Int("status", rec.statusCode()),
				slog.String("responseSize", strconv.FormatInt(rec.size, 10)),
				slog.String("latency", strconv.FormatFloat(time.Since(start).Seconds(), 'f', 6, 64)+"s"),
			)}
			msg := r.Method + " " + loggedPath(r) + " " + strconv.Itoa(rec.statusCode())
			if rl.refusedOrigin != "" {
				attrs = append(attrs, slog.String("refused_origin", rl.refusedOrigin))
			}
			if rl.code != "" {
				level = Severity(rl.code)
				msg += " " + string(rl.code)
				attrs = append(attrs, slog.String("code", string(rl.code)))
				if rl.cause != "" {
					attrs = append(attrs, slog.String("cause", rl.cause))
				}
			}
			log.Log(r.Context(), level, msg, attrs...)
		}()
		next.ServeHTTP(rec, r)
	})
}

// loggedPath is r's path as a request line shows it: no query, capped.
func loggedPath(r *http.Request) string {
	p := r.URL.Path
	if len(p) > maxLoggedPath {
		p = p[:maxLoggedPath] + "…"
	}
	return p
}

// Severity is the one rule for how loud a failure is logged: ERROR when the
// contract answers its code with a 5xx (the service or a dependency failed),
// INFO otherwise (the caller's request was refused, which is the service
// working).
func Severity(code apperr.Code) slog.Level {
	if status, _ := Status(code); status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}

// NoteError records err as the failure of r's request: the request line
// (LogRequests) logs its code and scrubbed cause at the code's severity. It
// returns err's coded form (an error without a code is internal). Handlers
// that answer a failure some other way than WriteError, such as the
// callback's redirect back to the frontend, call it so the failure is
// logged exactly as a JSON answer's would be. Outside LogRequests it logs
// the failure itself.
func NoteError(r *http.Request, log *slog.Logger, err error) *apperr.Error {
	e, cause := coded(err)
	rl, _ := r.Context().Value(requestLogKey{}).(*requestLog)
	if rl == nil {
		attrs := []any{slog.String("code", string(e.Code))}
		if cause != "" {
			attrs = append(attrs, slog.String("cause", cause))
		}
		log.Log(r.Context(), Severity(e.Code), "request failed", attrs...)
		return e
	}
	rl.code, rl.cause = e.Code, cause
	return e
}

// noteRefusedOrigin records, for the request line, that r's Origin is not
// allowed.
func noteRefusedOrigin(r *http.Request, origin string) {
	if rl, _ := r.Context().Value(requestLogKey{}).(*requestLog); rl != nil {
		rl.refusedOrigin = origin
	}
}

// coded returns err's *apperr.Error (internal when it carries none) and the
// scrubbed text of what caused it ("" when nothing did).
func coded(err error) (*apperr.Error, string) {
	e := apperr.As(err)
	switch {
	case e != nil:
	case isDeadline(err):
		e = apperr.Wrap(apperr.Unavailable, "the request took too long; try again shortly", err)
	default:
		e = apperr.Wrap(apperr.Internal, "internal error", err)
	}
	switch {
	case !sameError(err, e): // the coded error is inside another: log the whole chain
		return e, logging.Scrub(err.Error())
	case e.Cause != nil:
		return e, logging.Scrub(e.Cause.Error())
	}
	return e, ""
}

// statusRecorder remembers the status and the size of an answer.
type statusRecorder struct {
	http.ResponseWriter
	status int
	size   int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.size += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) statusCode() int {
	if s.status == 0 {
		return http.StatusOK // net/http's answer when the handler wrote nothing
	}
	return s.status
}
