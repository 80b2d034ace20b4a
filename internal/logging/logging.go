// Package logging writes log/slog records as Cloud Logging structured JSON
// (severity, message, time, and the request's trace), and scrubs anything
// that looks like a credential from every string it writes, as a last line of
// defence behind the rule that no token, code, state, session or secret is
// ever logged.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Cloud Logging field names.
const (
	traceKey = "logging.googleapis.com/trace"
	spanKey  = "logging.googleapis.com/spanId"
)

type ctxKey struct{}

type traceInfo struct{ trace, span string }

// New returns a logger writing Cloud Logging JSON to w. project, when set,
// qualifies trace ids as Cloud Logging expects (projects/P/traces/T).
func New(w io.Writer, project string, level slog.Level) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level:       level,
		ReplaceAttr: replaceAttr,
	})
	return slog.New(&handler{Handler: h, base: h, project: project})
}

func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 {
		switch a.Key {
		case slog.LevelKey:
			return slog.String("severity", severity(a.Value.Any().(slog.Level)))
		case slog.MessageKey:
			return slog.String("message", Scrub(a.Value.String()))
		}
	}
	switch a.Value.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Scrub(a.Value.String()))
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			return slog.String(a.Key, Scrub(err.Error()))
		}
	}
	return a
}

func severity(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	default:
		return "DEBUG"
	}
}

// handler adds the trace of the request carried by the context. The trace
// fields must stay top-level: once a group is open, Handle rebuilds the
// handler from base (before the first group) with the trace attached, then
// replays the later WithAttrs/WithGroup calls.
type handler struct {
	slog.Handler // base with every WithAttrs/WithGroup applied
	base         slog.Handler
	after        []func(slog.Handler) slog.Handler
	project      string
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if t, ok := ctx.Value(ctxKey{}).(traceInfo); ok {
		trace := t.trace
		if h.project != "" {
			trace = "projects/" + h.project + "/traces/" + t.trace
		}
		attrs := []slog.Attr{slog.String(traceKey, trace)}
		if t.span != "" {
			attrs = append(attrs, slog.String(spanKey, t.span))
		}
		if len(h.after) == 0 {
			r.AddAttrs(attrs...)
			return h.Handler.Handle(ctx, r)
		}
		hh := h.base.WithAttrs(attrs)
		for _, op := range h.after {
			hh = op(hh)
		}
		return hh.Handle(ctx, r)
	}
	return h.Handler.Handle(ctx, r)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(h.after) == 0 {
		b := h.base.WithAttrs(as)
		return &handler{Handler: b, base: b, project: h.project}
	}
	return h.with(func(x slog.Handler) slog.Handler { return x.WithAttrs(as) })
}

func (h *handler) WithGroup(name string) slog.Handler {
	return h.with(func(x slog.Handler) slog.Handler { return x.WithGroup(name) })
}

func (h *handler) with(op func(slog.Handler) slog.Handler) *handler {
	after := append(h.after[:len(h.after):len(h.after)], op)
	return &handler{Handler: op(h.Handler), base: h.base, after: after, project: h.project}
}

var (
	traceRE       = regexp.MustCompile(`^([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?`)
	traceparentRE = regexp.MustCompile(`^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$`)
)

// WithRequestTrace returns ctx carrying the trace of r's
// X-Cloud-Trace-Context header ("TRACE_ID/SPAN_ID;o=1"), or else of its W3C
// traceparent header, if it is well formed. Cloud Logging wants the span id
// as 16 hex digits; X-Cloud-Trace-Context carries it in decimal.
func WithRequestTrace(ctx context.Context, r *http.Request) context.Context {
	m := traceRE.FindStringSubmatch(r.Header.Get("X-Cloud-Trace-Context"))
	if m == nil {
		// W3C traceparent: 00-<32 hex trace>-<16 hex span>-<flags>
		if tm := traceparentRE.FindStringSubmatch(r.Header.Get("Traceparent")); tm != nil {
			return context.WithValue(ctx, ctxKey{}, traceInfo{trace: tm[1], span: tm[2]})
		}
		return ctx
	}
	span := ""
	if n, err := strconv.ParseUint(m[2], 10, 64); err == nil && n != 0 {
		span = fmt.Sprintf("%016x", n)
	}
	return context.WithValue(ctx, ctxKey{}, traceInfo{trace: strings.ToLower(m[1]), span: span})
}

// scrubbers match credential-shaped substrings: OAuth parameters and JSON
// fields that carry secrets, bearer headers, JWTs, and Google's token formats.
//
// The first one takes a secret's name followed by = or :, and the value after
// it, but only where the name is a name: not the last segment of a URL path
// (`Post "https://oauth2.googleapis.com/token": dial tcp` names an endpoint,
// and the next word is the error, not a token), and a quoted name only with a
// quoted value, as JSON writes strings (`"code": 400` is a number).
var scrubbers = []*regexp.Regexp{
	regexp.MustCompile(`(?i)((?:^|[^/])(?:access_token|refresh_token|id_token|client_secret|verifier|code|state|session|token|assertion|password)` +
		`(?:(?:\\?["']|%22)\s*(?:[:=]|%3[ad])\s*(?:\\?["']|%22)|\s*(?:[:=]|%3[ad])\s*(?:\\?["']|%22)?))[^"'&\s,}\\]+`),
	regexp.MustCompile(`(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+`),
	regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`),
	regexp.MustCompile(`ya29\.[A-Za-z0-9._-]+|1//0[A-Za-z0-9._-]+|GOCSPX-[A-Za-z0-9._-]+|4/0[A-Za-z0-9._-]+`),
}

// Scrub replaces credential-shaped substrings of s with "[REDACTED]".
func Scrub(s string) string {
	for i, re := range scrubbers {
		if i < 2 {
			s = re.ReplaceAllString(s, "${1}[REDACTED]")
		} else {
			s = re.ReplaceAllString(s, "[REDACTED]")
		}
	}
	return s
}
